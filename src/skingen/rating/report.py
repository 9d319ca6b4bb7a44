"""``skingen rate report``: a rating study's answers -> accuracy, agreement and per-skin-tone tables.

Input: a study folder (:mod:`skingen.rating.study`; answers from :func:`skingen.rating.store.answer_rows`).
Output (``REPORT/``, a new or empty folder, built under a staging name and renamed at the end):
``report.html`` (self-contained, thumbnails embedded), ``summary.csv`` (one row per mode x set x measure),
``answers.csv`` (every answer, with the original image paths), ``per_rater.csv``, ``agreement.csv``,
``per_skin_tone.csv`` (when the images carry ITA categories), ``mistaken.csv`` and ``report.json``.

The statistics are :mod:`skingen.rating.results`' (:func:`~skingen.rating.results.build_report`); this module
writes them.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path



from skingen.rating.results import MEASURE_NAMES, MISTAKE_KINDS, MODE_TITLES, SUMMARY_COLUMNS, RatingReport


def _cell(v: object, digits: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _p(v: float | None) -> str:
    return "" if v is None else (f"{v:.2g}" if v < 0.001 else f"{v:.3f}")


def _interval(r: dict) -> str:
    if r.get("value") is None:
        return ""
    ci = f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if r.get("ci_low") is not None else ""
    return f"{r['value']:.3f}{ci}"


def _cluster(r: dict) -> str:
    return "" if r.get("cluster_low") is None else f"[{r['cluster_low']:.3f}, {r['cluster_high']:.3f}]"


def console_rows(report: RatingReport) -> tuple[list[str], list[list[str]]]:
    """The summary as text rows (mode, set, measure, n, value [95% CI], raters x images 95% CI, p vs 50%,
    p vs real) for the CLI."""
    header = ["mode", "set", "measure", "n", "value [95% CI]", "raters x images CI", "p vs 50%", "p vs real"]
    return header, [[r["mode"], r["source"], MEASURE_NAMES[r["measure"]], str(r["n"]), _interval(r), _cluster(r),
                     _p(r["p_value"]), _p(r["p_vs_real"])] for r in report.summary]


def write_report(report: RatingReport, out: str | Path) -> Path:
    """Write the report folder (module docstring) at once (staged, then renamed); ``out`` must not exist or
    be empty. Returns the path of ``report.html``."""
    from skingen.runs import staged_dir

    with staged_dir(out, "rating report") as tmp:
        _write_files(report, tmp)
    return Path(out) / "report.html"


ANSWER_COLUMNS = ("rater", "position", "mode", "source", "truth", "answer", "correct", "confidence", "rt_ms", "ts",
                  "real_right", "item", "image", "image_id", "ita_category", "image_path", "partner", "partner_id",
                  "partner_ita_category", "partner_path")


def _write_files(report: RatingReport, out: Path) -> None:
    from skingen.runs import environment_info, write_csv, write_json

    write_csv(out / "summary.csv", report.summary, SUMMARY_COLUMNS)
    write_csv(out / "answers.csv", report.answers, ANSWER_COLUMNS)
    write_csv(out / "per_rater.csv", report.per_rater, ("rater", "questions", "answered", "finished"))
    write_csv(out / "agreement.csv", report.agreement, ("mode", "coded_as", "level", "alpha"))
    write_csv(out / "mistaken.csv", report.mistaken, ("kind", "source", "image_id", "mistaken", "shown", "share"))
    if report.per_tone:
        write_csv(out / "per_skin_tone.csv", report.per_tone, ("ita_category", "mode", "source", "measure"))
    data = asdict(report)
    data.pop("answers")
    write_json(out / "report.json", {**data, "study": str(report.study.resolve()), "answers": len(report.answers),
                                     "env": environment_info()})
    _write_html(report, out / "report.html")


def _write_html(report: RatingReport, path: Path) -> None:
    from skingen.viz import html_table, write_html

    d = report.definition
    started, finished = len(report.raters), sum(r["finished"] for r in report.raters)
    counts = "; ".join(f"{m}: " + ", ".join(f"{s} {k}" for s, k in c.items()) for m, c in d["counts"].items())
    setup = (f"Study {d['name']} created {d['created']}; images shown at {d['display_size']} px; sets: "
             f"{', '.join(s['name'] + ' (' + s['spec'] + ')' for s in d['sources'])}. Questions per rater — {counts}. "
             f"{started} rater(s) started, {finished} finished, {len(report.answers)} answers. Report made "
             f"{report.created}.")
    caveat = ("Quote the '95% CI, raters x images' column: a crossed bootstrap that resamples raters and images "
              "(2000 resamples; needs 2 raters, better 5 or more), so it allows for some raters being better judges "
              "and some images being harder. The 'value [95% CI]' intervals (Wilson for proportions, Student-t for "
              "mean ratings) and the p-values (exact binomial against 50%, chance = the raters cannot tell; Fisher's "
              "exact test or Mann-Whitney U against the real images) treat every answer as independent: in "
              "simulation (bench/rate_stats.py) with moderate differences between raters and images the Wilson "
              "interval covered the true accuracy in only 70-77% of studies and the binomial test called "
              "indistinguishable images distinguishable 25-30% of the time instead of 5%; the crossed interval "
              "covered it in 93-98% (86% with only 3 raters who differ strongly). Read everything next to the "
              "per-rater table.")
    sections: list[tuple[str, str, object]] = [("Study", setup, None)]
    sections += [("Note", n, None) for n in report.notes]
    if report.summary:
        sections.append(("How to read", caveat, None))
    for mode in d["config"]["modes"]:
        rows = [r for r in report.summary if r["mode"] == mode]
        if not rows:
            continue
        cols = ["set", "measure", "n", "k", "value [95% CI]", "95% CI, raters x images", "p vs 50%", "p vs real",
                "raters"]
        body = [[r["source"], MEASURE_NAMES[r["measure"]], r["n"], _cell(r["k"]), _interval(r), _cluster(r),
                 _p(r["p_value"]), _p(r["p_vs_real"]), r["raters"]] for r in rows]
        if mode == "single":
            cols.append("mean confidence 1-5")
            for b, r in zip(body, rows):
                b.append(_cell(r["mean_confidence"], 2))
        keep = [j for j in range(len(cols)) if any(b[j] != "" for b in body)]  # e.g. no "p vs real" for pairs
        cols, body = [cols[j] for j in keep], [[b[j] for j in keep] for b in body]
        caption = {"single": "accuracy: share of all answers right (chance 50%). judged real: share of the set's "
                             "images answered real — for a synthetic set the fooling rate (1 − it = accuracy on "
                             "that set); p vs real compares it with the real images' share.",
                   "pair": "accuracy: share of pairs in which the real image was picked (chance 50%).",
                   "likert": "Mean realism rating; p vs real: Mann-Whitney U against the real images' ratings."}
        sections.append((MODE_TITLES[mode], caption[mode], html_table(cols, body)))
    if report.agreement:
        sections.append(("Agreement between raters", "Krippendorff's alpha: 1 = perfect, 0 = chance, < 0 = "
                         "systematic disagreement; raters who stopped early count as missing values.",
                         html_table(["mode", "coded as", "level", "alpha", "raters", "shared questions", "note"],
                                    [[r["mode"], r["coded_as"], r["level"], _cell(r["alpha"]), r["raters"],
                                      r["shared_items"], r["note"]] for r in report.agreement])))
    if report.per_rater:
        cols = list(report.per_rater[0])
        sections.append(("Per rater", "Each rater's own accuracy and mean ratings (raters differ: the clustering "
                         "the intervals above ignore).",
                         html_table(cols, [[_cell(r[c]) for c in cols] for r in report.per_rater])))
    if report.per_tone:
        sections.append(("Per skin tone", report.tone_note + " Wilson / t 95% intervals.", html_table(
            ["ITA category", "mode", "set", "measure", "n", "value [95% CI]"],
            [[r["ita_category"], r["mode"], r["source"], MEASURE_NAMES[r["measure"]], r["n"], _interval(r)]
             for r in report.per_tone])))
    elif report.answers:
        sections.append(("Per skin tone", report.tone_note, None))
    sections += _mistaken_sections(report)
    write_html(path, f"skingen rating study {d['name']}", sections)


def _mistaken_sections(report: RatingReport) -> list[tuple[str, str, object]]:
    from skingen.imageio import read_image
    from skingen.viz import contact_sheet, html_table, img_tag

    out = []
    for kind, (mode, caption) in MISTAKE_KINDS.items():
        rows = [m for m in report.mistaken if m["kind"] == kind]
        if not rows:
            continue
        sheet = contact_sheet([read_image(report.study / m["file"]) for m in rows],
                              [f"{m['source']}\n{m['mistaken']}/{m['shown']}" for m in rows], columns=min(8, len(rows)), cell=128)
        table = html_table(["set", "image id", "mistaken", "shown", "original file"],
                           [[m["source"], m["image_id"], m["mistaken"], m["shown"], m["path"]] for m in rows])
        out.append((f"Most mistaken: {caption}", f"{mode} mode; caption: set, times mistaken / times shown.",
                    img_tag(sheet, caption) + table))
    return out
