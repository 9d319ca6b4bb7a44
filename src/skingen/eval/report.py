"""Evaluation report: ``metrics.json`` (every value with its N, extractor, mode, manifest hashes and
checkpoints), ``report.md`` and ``report.html`` (the comparison table, one row per synthetic set, plus
per-feature-space and per-level tables), and ``memorisation/<set>.png`` (closest pairs)."""

from __future__ import annotations

import html
import re
from pathlib import Path

from skingen.runs import atomic_write_text, check_new_folder, environment_info, staged_dir, write_csv, write_json


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _kid_text(kid: dict) -> str:
    return f"{kid['value'] * 1e3:.3g} ± {kid['std'] * 1e3:#.2g}" if kid else "n/a"


def _floor_text(entry: dict, scale: float = 1.0, spec: str = ".4g") -> str:
    """A floor as ``value`` or ``value ± spread (N=n)`` when drawn several times or at another N."""
    floor = entry.get("floor") if entry else None
    if not floor:
        return "n/a"
    text = format(floor["value"] * scale, spec)
    if floor["draws"] > 1:
        text += f" ± {floor['std'] * scale:#.2g}"
    return text + (f" (N={floor['n']})" if floor["n"] != entry.get("n_fake") else "")


# What each feature space cannot see (measured on the measles crops: docs/evaluation.md)
BLIND_SPOTS = {
    "inception": "ImageNet object features at 299 px; sees blur, texture and a change of source; FID is biased upwards "
                 "at small N (read it against the floor)",
    "efficientnet-lite0": "ImageNet features at 224 px, a second opinion on Inception; same small-N bias of FID",
    "colour": "per-image colour statistics only: blind to blur, texture, sharpness, shape and layout",
    "pixels": "a few area-averaged pixels: blind to everything finer than one cell (blur, texture, JPEG)",
    "classifier": "what the skin classifier learned to separate; blind to what it did not need",
}


def blind_spot(name: str) -> str:
    kind = "pixels" if name.startswith("pixels") else name
    return BLIND_SPOTS.get(kind, "")


def _get(metrics: dict, key: str) -> dict:
    entry = metrics.get(key) or {}
    return {} if "error" in entry else entry


def primary_extractor(record: dict) -> str | None:
    """The feature space of the main table: the first of ``config.features`` that was available."""
    names = list(record["extractors"])
    return next((n for n in names if n != "memorisation"), None)


def summary_table(record: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the main comparison table (one row per synthetic set)."""
    ex = primary_extractor(record)
    header = ["set", "N", "FID", "FID floor", "KID×10³", "KID floor ×10³", "precision", "recall", "density", "coverage",
              "SWD worst level", "memorised", "MS-SSIM", "s/image"]
    rows = []
    for s in record["sets"]:
        m = s["metrics"]
        fid, kid, prdc = _get(m, f"fid/{ex}"), _get(m, f"kid/{ex}"), _get(m, f"prdc/{ex}")
        memo, div, speed = _get(m, "memorisation"), _get(m, "diversity"), m.get("speed", {})
        sw = _get(m, "swd")
        rows.append([
            s["name"], str(s["n"]), _fmt(fid.get("value"), ".4g"), _floor_text(fid),
            _kid_text(kid), _floor_text(kid, 1e3, ".3g"),
            *(_fmt(prdc.get(k), ".3f") for k in ("precision", "recall", "density", "coverage")),
            _swd_summary(sw),
            f"{memo['fraction']:.1%} ({memo['flagged']}/{s['n']})" if memo else "n/a",
            _fmt(div.get("ms_ssim"), ".3f") + (f" (same crop {div['ms_ssim_same_parent']:.3f})"
                                                  if "ms_ssim_same_parent" in div else ""),
            _fmt(speed.get("seconds_per_image"), ".3g"),
        ])
    return header, rows


def _swd_summary(sw: dict) -> str:
    """The worst level relative to the floor (``3.1× floor (256 px)``), else the raw worst level ×10³."""
    if not sw:
        return "n/a"
    if "worst_vs_floor" in sw:
        return f"{sw['worst_vs_floor']:.2g}× floor ({sw['worst_vs_floor_level']} px)"
    return f"{sw['worst']:.0f}×10⁻³ ({sw['worst_level']} px)"


def summary_caption(record: dict) -> str:
    """What the main table's columns are measured against and in."""
    real = record["real"]
    div = real.get("diversity", {}).get("ms_ssim")
    floor = record.get("floor")
    floor_text = (f"floor = {floor['path']} (real images, N={floor['n']}) against the real set at the row's N, mean ± "
                  f"spread over {floor['draws']} draws: FID is biased upwards at small N, so read each FID against its "
                  "floor, never against a number measured at another N" if floor else
                  "no real-vs-real floor (see notes): FID is biased upwards at small N, compare only at equal N")
    return (f"real: {real['path']} (N={real['n']}) at {record['size']} px; FID, KID and precision/recall/density/"
            f"coverage in {primary_extractor(record) or 'no'} features; {floor_text}; SWD: the pyramid level furthest "
            f"above the floor's same level (see the SWD table); real MS-SSIM {_fmt(div, '.3f')}")


def feature_table(record: dict) -> tuple[list[str], list[list[str]]]:
    """FID, KID and precision/recall/density/coverage in every feature space."""
    header = ["set", "features", "FID", "FID floor", "KID×10³", "KID floor ×10³", "precision", "recall", "density",
              "coverage"]
    rows = []
    for s in record["sets"]:
        for ex in (n for n in record["extractors"] if n != "memorisation"):
            m = s["metrics"]
            fid, kid, prdc = _get(m, f"fid/{ex}"), _get(m, f"kid/{ex}"), _get(m, f"prdc/{ex}")
            rows.append([s["name"], ex, _fmt(fid.get("value"), ".4g"), _floor_text(fid),
                         _kid_text(kid), _floor_text(kid, 1e3, ".3g"),
                         *(_fmt(prdc.get(k), ".3f") for k in ("precision", "recall", "density", "coverage"))])
    return header, rows


def swd_table(record: dict) -> tuple[list[str], list[list[str]]]:
    levels = sorted({int(r) for s in record["sets"] for r in _get(s["metrics"], "swd").get("levels", {})}, reverse=True)
    header = ["set", "N"] + [f"SWD×10³ {r} px" for r in levels] + ["worst level", "mean", "worst ÷ floor"]
    floor = record.get("floor") or {}
    named = [(s["name"], s["n"], _get(s["metrics"], "swd")) for s in record["sets"]]
    if floor.get("swd"):
        named.append((f"floor: {floor['path']}", floor["n"], floor["swd"]))
    rows = []
    for name, n, sw in named:
        lv = {int(k): v for k, v in sw.get("levels", {}).items()}
        rows.append([name, str(n)] + [_fmt(lv.get(r), ".1f") for r in levels]
                    + [f"{sw['worst']:.1f} ({sw['worst_level']} px)" if sw else "n/a", _fmt(sw.get("mean"), ".1f"),
                       f"{sw['worst_vs_floor']:.2f} ({sw['worst_vs_floor_level']} px)" if "worst_vs_floor" in sw else "n/a"])
    return header, rows


def c2st_table(record: dict) -> tuple[list[str], list[list[str]]]:
    """The critic (classifier two-sample test) of every set next to its real-vs-real floor at the same N."""
    header = ["set", "features", "N synthetic", "N real", "AUROC [95% CI]", "balanced accuracy [95% CI]",
              "floor AUROC (real vs real, same N)", "photo groups"]
    rows = []
    for s in record["sets"]:
        c = _get(s["metrics"], "c2st")
        if not c:
            continue
        floor = c.get("floor") or {}
        rows.append([s["name"], c["extractor"], str(c["n_fake"]), str(c["n_real"]),
                     f"{c['auroc']:.3f} [{c['auroc_ci'][0]:.3f}, {c['auroc_ci'][1]:.3f}]",
                     f"{c['accuracy']:.3f} [{c['accuracy_ci'][0]:.3f}, {c['accuracy_ci'][1]:.3f}]",
                     f"{floor['auroc']:.3f} [{floor['auroc_ci'][0]:.3f}, {floor['auroc_ci'][1]:.3f}] (N={floor['n']})"
                     if floor else "n/a", str(c["groups"])])
    return header, rows


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _context(record: dict) -> str:
    real = record["real"]
    train = record.get("train") or {}
    lines = [f"real: {real['path']} (N={real['n']}, manifest sha256 {str(real['manifest_sha256'])[:12]}); "
             f"evaluated at {record['size']} px"]
    if train:
        lines.append(f"memorisation reference (training images): {train['path']} (N={train['n']})")
    if record.get("floor"):
        lines.append(f"real-vs-real floor: {record['floor']['path']} (N={record['floor']['n']}), N images of it against "
                     "the real set at each synthetic set's N")
    for name, d in record["extractors"].items():
        lines.append(f"features {name}: " + ", ".join(f"{k}={v}" for k, v in d.items() if k != "name"))
    return "\n".join(f"- {line}" for line in lines)


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "set"


def write_report(evaluation, out: str | Path) -> Path:
    """Write the report files into ``out`` (new or empty; built under a staging name, so an interrupted report
    leaves nothing that looks finished); returns the path of ``report.html``."""
    out = check_new_folder(out, hint="choose a new --out for the report")
    with staged_dir(out, "report") as staging:
        _write_files(evaluation, staging)
    return out / "report.html"


def _write_files(evaluation, out: Path) -> None:
    from skingen.imageio import write_image
    from skingen.viz import html_table, write_html

    record = evaluation.record
    write_json(out / "metrics.json", {**record, "env": environment_info()})
    tables = [("Comparison", summary_table(record)), ("By feature space", feature_table(record)),
              ("SWD per pyramid level", swd_table(record))]
    if any(_get(s["metrics"], "c2st") for s in record["sets"]):
        tables.append(("Critic (C2ST)", c2st_table(record)))
    for name, rows in getattr(evaluation, "tables", {}).items():
        write_csv(out / name, rows)
    spaces = [n for n in record["extractors"] if n != "memorisation"]
    captions = {"Comparison": summary_caption(record),
                "By feature space": "What each space is blind to: " + "; ".join(
                    f"{n}: {blind_spot(n)}" for n in spaces if blind_spot(n)) + ".",
                "SWD per pyramid level": "Laplacian-pyramid levels, finest first. Sets are ranked by the level furthest "
                                         "above the real-vs-real floor's same level (worst ÷ floor): a mean can trade a "
                                         "worse level for a better one, and a raw maximum is the 16 px residual level "
                                         "for every set, real ones included.",
                "Critic (C2ST)": "Logistic regression telling the set from the real images, grouped folds (no photo or "
                                 "parent on both sides), out-of-fold AUROC (0.5 = cannot tell); read it against the "
                                 "floor, real images of another split at the same N. Scores: c2st_scores.csv."}
    notes = "\n".join(f"- {n}" for n in record["notes"]) or "- none"
    md = [f"# skingen evaluate\n\n{_context(record)}\n"]
    md += [f"## {title}\n\n" + (f"{captions[title]}\n\n" if title in captions else "") + f"{_markdown(*t)}\n"
           for title, t in tables]
    md.append(f"## Notes\n\n{notes}\n")
    sections = [(title, captions.get(title, ""), html_table(*t)) for title, t in tables]
    for name, sheet in evaluation.sheets.items():
        path = out / "memorisation" / f"{safe_name(name)}.png"
        write_image(path, sheet)
        md.append(f"![closest pairs {name}](memorisation/{path.name})\n")
        sections.append((f"Memorisation: {name}", "each synthetic image next to its nearest training image, "
                         "closest first (COPY: distance < ratio × distance to the nearest other photo)", sheet))
    sections.append(("Notes", "", "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in record["notes"]) + "</ul>"))
    atomic_write_text(out / "report.md", "\n".join(md))
    write_html(out / "report.html", "skingen evaluate", [("Data", "", "<pre>" + html.escape(_context(record)) + "</pre>")]
               + sections)
