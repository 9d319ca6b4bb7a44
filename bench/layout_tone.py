"""Does a mask-conditioned run paint the skin tone its layouts ask for? Painted vs asked ITA over guidance scales.

Usage: python bench/layout_tone.py RUN [--guidance 1,2,4] [--n 64] [--ita=-60..40] [--out DIR]
Paints ``n`` synthesised layouts (seeds 0..n-1, so the same layouts at every guidance scale) with ``skingen sample``'s
own code, measures each output's healthy-skin ITA as ``analyze`` does (skin detection minus the lesion mask) and
prints, per guidance scale w: the slope of painted on asked ITA (1 = follows the layout), the share within ±8°, and
the median painted ITA for dark (< 10°) and light asked tones; above the table, the range of the run's training
masks' tones (``sample`` warns beyond it). ``dermgan`` takes no guidance: give ``--guidance none``.
docs/tone.md has the numbers of the two 64 px DermDiff runs it was written for (stop 39).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def _median(values, where) -> str:
    import numpy as np

    return f"{np.median(values[where]):.1f}" if where.any() else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--guidance", default="1,2,4", help="comma-separated scales, or 'none' (models without guidance)")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--ita", default="-60..40")
    ap.add_argument("--out", type=Path, default=None, help="keep the painted folders here (default: a temp dir)")
    args = ap.parse_args()
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from skingen.data.layouts import LayoutParams
    from skingen.data.manifest import read_manifest
    from skingen.data.skintone import ita_range, measure_skin_tone
    from skingen.errors import SkingenError
    from skingen.generation.sample_folder import SampleConfig, sample_to_folder, training_data, training_tones
    from skingen.imageio import read_image, read_mask
    from skingen.registry import load_model

    console = Console()
    _, ckpt = load_model(args.run, device="cpu")
    try:
        tones = training_tones(training_data(ckpt))
    except SkingenError:  # the run's training data is gone: no range to print
        pass
    else:
        console.print(f"training masks' healthy-skin ITA: {np.nanmin(tones):.0f}..{np.nanmax(tones):.0f} degrees, "
                      f"{np.mean(tones < 10):.0%} below 10 (N = {len(tones)})")
    layouts = LayoutParams(ita=tuple(ita_range(args.ita)))
    scales = [None] if args.guidance == "none" else [float(w) for w in args.guidance.split(",")]
    table = Table(title=f"{args.run.name}: {args.n} layouts, asked ITA {args.ita} degrees")
    # slope of painted on asked ITA; medians (degrees) over the dark (< 10) and the light asked tones
    for col in ("w", "slope", "±8°", "dark: asked", "painted", "light: asked", "painted"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        for w in scales:
            out = root / f"paint-w{w if w is not None else 'none'}"
            options = {} if w is None else {"guidance": w}
            sample_to_folder(args.run, out, list(range(args.n)), SampleConfig(layouts=layouts, **options), device="cpu")
            rows = read_manifest(out, required=("id", "image", "lesion", "condition_ita"))
            asked = np.array([float(r["condition_ita"]) for r in rows])
            painted = np.array([measure_skin_tone(read_image(out / r["image"]), read_mask(out / r["lesion"])).ita
                                for r in rows])
            ok = np.isfinite(painted)
            slope = np.polyfit(asked[ok], painted[ok], 1)[0] if ok.sum() > 1 else float("nan")
            dark, light = ok & (asked < 10), ok & (asked >= 10)
            table.add_row("-" if w is None else f"{w:g}", f"{slope:.2f}", f"{np.mean(np.abs(painted[ok] - asked[ok]) <= 8):.0%}",
                          _median(asked, dark), _median(painted, dark), _median(asked, light), _median(painted, light))
    console.print(table)


if __name__ == "__main__":
    main()
