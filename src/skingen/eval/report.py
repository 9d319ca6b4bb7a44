"""Evaluation report: ``metrics.json`` (every value with its N, extractor, mode, manifest hashes and
checkpoints), ``report.md`` and ``report.html`` (the comparison table, one row per synthetic set, plus
per-feature-space and per-level tables), and ``memorisation/<set>.png`` (closest pairs)."""

from __future__ import annotations

import html
import re
from pathlib import Path

from skingen.errors import SkingenError
from skingen.runs import atomic_write_text, environment_info, write_json


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _kid_text(kid: dict) -> str:
    return f"{kid['value'] * 1e3:.3g} ± {kid['std'] * 1e3:#.2g}" if kid else "n/a"


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
    header = ["set", "N", "FID", "KID×10³", "precision", "recall", "density", "coverage", "SWD×10³", "memorised",
              "MS-SSIM", "s/image"]
    rows = []
    for s in record["sets"]:
        m = s["metrics"]
        fid, kid, prdc = _get(m, f"fid/{ex}"), _get(m, f"kid/{ex}"), _get(m, f"prdc/{ex}")
        memo, div, speed = _get(m, "memorisation"), _get(m, "diversity"), m.get("speed", {})
        rows.append([
            s["name"], str(s["n"]), _fmt(fid.get("value"), ".4g"),
            _kid_text(kid),
            *(_fmt(prdc.get(k), ".3f") for k in ("precision", "recall", "density", "coverage")),
            _fmt(_get(m, "swd").get("mean"), ".2f"),
            f"{memo['fraction']:.1%} ({memo['flagged']}/{s['n']})" if memo else "n/a",
            _fmt(div.get("ms_ssim"), ".3f"), _fmt(speed.get("seconds_per_image"), ".3g"),
        ])
    return header, rows


def summary_caption(record: dict) -> str:
    """What the main table's columns are measured against and in."""
    real = record["real"]
    div = real.get("diversity", {}).get("ms_ssim")
    return (f"real: {real['path']} (N={real['n']}) at {record['size']} px; FID, KID and precision/recall/density/"
            f"coverage in {primary_extractor(record) or 'no'} features; real MS-SSIM {_fmt(div, '.3f')}")


def feature_table(record: dict) -> tuple[list[str], list[list[str]]]:
    """FID, KID and precision/recall/density/coverage in every feature space."""
    header = ["set", "features", "FID", "KID×10³", "precision", "recall", "density", "coverage"]
    rows = []
    for s in record["sets"]:
        for ex in (n for n in record["extractors"] if n != "memorisation"):
            m = s["metrics"]
            fid, kid, prdc = _get(m, f"fid/{ex}"), _get(m, f"kid/{ex}"), _get(m, f"prdc/{ex}")
            rows.append([s["name"], ex, _fmt(fid.get("value"), ".4g"),
                         _kid_text(kid),
                         *(_fmt(prdc.get(k), ".3f") for k in ("precision", "recall", "density", "coverage"))])
    return header, rows


def swd_table(record: dict) -> tuple[list[str], list[list[str]]]:
    levels = sorted({int(r) for s in record["sets"] for r in _get(s["metrics"], "swd").get("levels", {})}, reverse=True)
    header = ["set"] + [f"SWD×10³ {r} px" for r in levels] + ["mean"]
    rows = []
    for s in record["sets"]:
        sw = _get(s["metrics"], "swd")
        lv = {int(k): v for k, v in sw.get("levels", {}).items()}
        rows.append([s["name"]] + [_fmt(lv.get(r), ".2f") for r in levels] + [_fmt(sw.get("mean"), ".2f")])
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
    for name, d in record["extractors"].items():
        lines.append(f"features {name}: " + ", ".join(f"{k}={v}" for k, v in d.items() if k != "name"))
    return "\n".join(f"- {line}" for line in lines)


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "set"


def check_out_dir(out: str | Path) -> Path:
    """A report folder must be new or empty: an earlier report is never overwritten."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SkingenError(f"{out} already exists and is not empty; choose a new --out for the report")
    return out


def write_report(evaluation, out: str | Path) -> Path:
    """Write the report files into ``out`` (new or empty); returns the path of ``report.html``."""
    from skingen.imageio import write_image
    from skingen.viz import html_table, write_html

    out = check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    record = evaluation.record
    write_json(out / "metrics.json", {**record, "env": environment_info()})
    tables = [("Comparison", summary_table(record)), ("By feature space", feature_table(record)),
              ("SWD per pyramid level", swd_table(record))]
    captions = {"Comparison": summary_caption(record)}
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
    return out / "report.html"
