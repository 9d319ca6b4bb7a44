"""``DATASHEET.md``: what a synthetic image set is, where it came from and what it is for.

Written beside the images by ``skingen sample``, ``inpaint`` and ``augment`` (after Gebru et al.,
"Datasheets for datasets"): the generator and its checkpoint (sha256 of the checkpoint's files), the
training data (manifest sha256, split, size), the conditions used, counts, the memorisation share, the
skin-tone (ITA category) spread of the output next to the real training set's, the intended use, and
the command that made it. Everything is read from the set's own manifest and the runs' provenance.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

from skingen.runs import atomic_write_text, file_sha256

NAME = "DATASHEET.md"
MAX_ITA_IMAGES = 2000  # images measured per set for the skin-tone spread (an even subsample above this)
INTENDED_USE = (
    "Research: augmenting small clinical training sets and studying generative models of skin disease. "
    "**Not for diagnosis**, not as evidence about any patient, and not to train a diagnostic tool without "
    "testing it on real, held-out photos. The images are synthetic: present them as such. A generator can "
    "reproduce its training photos; see the memorisation line below before sharing the set.")


def checkpoint_sha256(checkpoint: str | Path) -> str:
    """One sha256 over the sorted (name, sha256) of every file in a checkpoint folder (``''`` when it is gone)."""
    folder = Path(checkpoint)
    if not folder.is_dir():
        return ""
    parts = [f"{p.name}:{file_sha256(p)}" for p in sorted(folder.iterdir()) if p.is_file()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def ita_spread(paths: list[Path], lesions: list[Path | None] | None = None) -> Counter:
    """ITA categories (:mod:`skingen.data.skintone`) of up to ``MAX_ITA_IMAGES`` images (healthy skin:
    skin detection minus the lesion mask when given)."""
    from skingen.data.skintone import measure_skin_tone
    from skingen.imageio import read_image, read_mask

    step = max(1, -(-len(paths) // MAX_ITA_IMAGES))
    lesions = lesions or [None] * len(paths)
    out: Counter = Counter()
    for p, m in list(zip(paths, lesions))[::step]:
        mask = read_mask(m) if m is not None and Path(m).is_file() else None
        image = read_image(p)
        if mask is not None and mask.shape != image.shape[:2]:
            mask = None
        out[measure_skin_tone(image, mask).category] += 1
    return out


def _training_spread(data: Path, split: str | None) -> tuple[Counter, str]:
    """ITA categories of a real training set: its manifest's ``ita_category`` column (``skingen analyze``)
    when every row has one, else measured here."""
    from skingen.data.provenance import rows_of

    rows = rows_of(data, split)
    if rows and all(r.get("ita_category") for r in rows):
        return Counter(r["ita_category"] for r in rows), "manifest ita_category (skingen analyze)"
    lesions = [data / r["lesion"] if r.get("lesion") else None for r in rows]
    return ita_spread([data / r["image"] for r in rows], lesions), "measured here"


def _spread_table(columns: dict[str, Counter]) -> list[str]:
    from skingen.data.skintone import ITA_CATEGORIES, UNKNOWN

    cats = [c[1] for c in ITA_CATEGORIES] + [UNKNOWN]
    lines = ["| ITA category | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for cat in cats:
        cells = []
        for counts in columns.values():
            n = sum(counts.values())
            cells.append(f"{counts.get(cat, 0)} ({100 * counts.get(cat, 0) / n:.0f}%)" if n else "-")
        lines.append(f"| {cat} | " + " | ".join(cells) + " |")
    return lines


def _argv() -> list[str]:
    """This process's command line, with ``skingen`` for the CLI however it was started."""
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return ["skingen" if prog in ("skingen", "cli.py", "__main__.py") else prog, *sys.argv[1:]]


def write_datasheet(folder: str | Path, rows: list[dict], kind: str, conditions: dict | None = None,
                    memorisation: str = "", counts: dict | None = None, command: list[str] | None = None) -> Path:
    """Write ``folder/DATASHEET.md`` for the synthetic ``rows`` (manifest rows, paths relative to ``folder``)
    made by ``skingen <kind>``. ``conditions``: what the images were conditioned on; ``memorisation``: the
    measured share and how (empty: not measured by this command); ``counts``: extra counts to list."""
    from skingen import __version__
    from skingen.data.manifest import manifest_sha256
    from skingen.data.provenance import rows_of, run_training_data

    folder = Path(folder)
    synth = [r for r in rows if (r.get("origin") or "synthetic") == "synthetic"]
    name = re.sub(r"^\.(.+)\.partial-\d+$", r"\1", folder.name)  # written in runs.staged_dir's staging folder
    lines = [f"# Data sheet: {name}", "",
             f"Synthetic skin images made by `skingen {kind}` (skingen {__version__}) on "
             f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}.", "",
             "## Intended use", "", INTENDED_USE, "",
             "## Command", "", "```", shlex.join(command if command is not None else _argv()), "```", "",
             "## Generator", ""]
    training: list[tuple[Path, str | None]] = []
    for ckpt in sorted({r.get("checkpoint", "") for r in synth} - {""}):
        n = sum(r.get("checkpoint") == ckpt for r in synth)
        models = ", ".join(sorted({r.get("model", "") for r in synth if r.get("checkpoint") == ckpt} - {""})) or "?"
        sha = checkpoint_sha256(ckpt)
        lines.append(f"- `{models}` checkpoint `{ckpt}` (sha256 of its files: `{sha or 'checkpoint not found'}`), "
                     f"{n} image(s)")
        data, split, why = run_training_data(ckpt)
        if data is None:
            lines.append(f"  - training data: unknown ({why})")
        else:
            size = len(rows_of(data, split))
            lines.append(f"  - training data: `{data}` split `{split or 'all'}`, {size} crops, manifest sha256 "
                         f"`{manifest_sha256(data)}`")
            training.append((data, split))
    if not any(r.get("checkpoint") for r in synth):
        models = ", ".join(f"`{m}`" for m in sorted({r.get("model", "") for r in synth} - {""}))
        lines.append(f"- no checkpoint recorded ({'model: ' + models if models else 'images from elsewhere'})")
    lines += ["", "## Conditions", ""]
    for k, v in (conditions or {}).items():
        if v not in (None, "", [], {}):
            lines.append(f"- {k}: `{v}`")
    cond_kinds = Counter(r.get("condition") or "none" for r in synth)
    lines += [f"- per image: {', '.join(f'{k} {v}' for k, v in sorted(cond_kinds.items()))} "
              "(condition column: data = a real crop's masks, layout = synthesised, none = unconditional)",
              "", "## Counts", "", f"- synthetic images: {len(synth)}"]
    labels = Counter(r.get("label") or "(no label)" for r in synth)
    lines.append(f"- per label: {', '.join(f'{k} {v}' for k, v in sorted(labels.items()))}")
    lines += [f"- {k}: {v}" for k, v in (counts or {}).items()]
    lines += ["", "## Memorisation", "", memorisation or (
        "Not measured by this command. `skingen augment` gates every set before it joins training data "
        "(near-copies of training images dropped, of val/test images refused); `skingen evaluate --metrics "
        "memorisation` measures the share."), "", "## Skin tone (ITA category)", ""]
    columns = {"synthetic": ita_spread([folder / r["image"] for r in synth],
                                       [folder / r["lesion"] if r.get("lesion") else None for r in synth])}
    sources = []
    for data, split in dict.fromkeys(training):
        columns[f"training {data.name}"], how = _training_spread(data, split)
        sources.append(f"`{data}` ({how})")
    lines += _spread_table(columns)
    lines += ["", "Healthy-skin ITA (skin detection minus the lesion mask), categories of "
              "`skingen.data.skintone`; a spread, not per-image truth (docs/data.md, `skingen analyze`). "
              + (f"Training set: {', '.join(sources)}." if sources else "No training set found to compare with.")
              + (f" At most {MAX_ITA_IMAGES} images per column are measured." if len(synth) > MAX_ITA_IMAGES else "")]
    path = folder / NAME
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path

