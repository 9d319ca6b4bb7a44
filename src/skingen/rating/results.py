"""The statistics of a rating study (``skingen rate report``; :mod:`skingen.rating.report` writes them).

Measures (``measure`` column of the summary):

- ``single`` (*real or synthetic?*, balanced 50/50 by design): ``accuracy`` over all answers (set ``all``,
  chance 50%); per set ``judged_real``: the share of its images answered *real* -- for a synthetic set the
  *fooling rate*, for ``real`` the real images' own hit rate. ``p_vs_real`` compares a set's judged-real
  share with the real images' (Fisher's exact test): indistinguishable images are judged real as often as
  real ones whatever a rater's bias towards answering *real*, which the 50% test cannot separate.
- ``pair`` (*which one is real?*, two-alternative forced choice): ``accuracy`` = share of pairs in which the
  real image was picked, per set and ``all``; chance is 50% whatever a rater's bias.
- ``likert`` (*how realistic?* 1-5): ``mean_rating`` per set and for ``real``; ``p_vs_real``: Mann-Whitney U
  of the set's ratings against the real ones.

Proportions get a Wilson 95% interval (:func:`skingen.stats.wilson_interval`) and, for
``accuracy`` and ``judged_real``, a two-sided exact binomial test against 50% (``scipy.stats.binomtest``).
Likert means get a t-interval over the answers (:func:`mean_interval`; why not a bootstrap over raters:
there). All of these treat answers as independent, which they are not: answers are clustered by rater
(some raters say *real* more often, or rate more leniently) and by image (several raters see the same
one). Intervals and p-values are therefore too narrow when raters differ. Every summary row therefore
also has a crossed rater x image bootstrap interval (``cluster_low``/``cluster_high``,
:func:`skingen.stats.cluster_interval`; needs 2 raters): the interval to quote.
How often each interval covers the truth when raters and images differ: ``bench/rate_stats.py``, results in
``docs/rating.md``. The per-rater table shows how much raters differ.

Agreement between raters: Krippendorff's alpha (:func:`skingen.stats.krippendorff_alpha`), which allows raters who
answered different subsets (stopped early = missing values): nominal on the answer *real*/*synthetic*
(``single``), nominal on *picked the real one* (``pair``: not left/right, since each rater sees its own
sides), ordinal on the 1-5 rating (``likert``). 1 = perfect agreement, 0 = chance level, < 0 = systematic
disagreement; reported only where two raters answered the same question.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skingen.errors import SkingenError
from skingen.stats import cluster_interval, krippendorff_alpha, mean_interval, proportion
from skingen.rating.store import MODES, answer_rows, connect, read_definition

REAL = "real"
ALL = "all"
LIKERT = (1.0, 5.0)  #: the rating scale
MIN_ANSWERS = 5  #: answers a rater needs to count (fewer: a tab left open, a probe, a script)
SUMMARY_COLUMNS = ("mode", "source", "measure", "n", "k", "value", "ci_low", "ci_high", "cluster_low", "cluster_high",
                   "p_value", "p_vs_real", "mean_confidence", "raters")
MEASURE_NAMES = {"accuracy": "accuracy", "judged_real": "judged real", "mean_rating": "mean rating 1-5"}
MODE_TITLES = {"single": "Real or synthetic? (one image)", "pair": "Which one is real? (pairs)",
               "likert": "How realistic? (1-5)"}
MISTAKE_KINDS = {  # kind -> (mode, caption)
    "synthetic_judged_real": ("single", "synthetic images most often judged real"),
    "real_judged_synthetic": ("single", "real images most often judged synthetic"),
    "synthetic_picked_as_real": ("pair", "synthetic images most often picked as the real one of a pair"),
}


@dataclass
class RatingReport:
    """Everything the report shows; ``write_report`` turns it into files. Missing numbers are ``None``."""

    study: Path
    definition: dict
    raters: list[dict]  #: one row per rater with at least one answer: questions, answered, finished
    answers: list[dict]  #: ``answer_rows`` plus ``image_path``/``partner_path`` (the original files)
    summary: list[dict]  #: rows with :data:`SUMMARY_COLUMNS`
    agreement: list[dict]  #: one row per mode: alpha, level, raters, items, note
    per_rater: list[dict]
    per_tone: list[dict]  #: empty when no image has a known ITA category (``tone_note`` says so)
    tone_note: str
    mistaken: list[dict]  #: the ``top`` most mistaken images of each :data:`MISTAKE_KINDS`
    notes: list[str] = field(default_factory=list)
    created: str = ""


# --------------------------------------------------------------------------- building the report

def _rater_rows(study: Path) -> list[dict]:
    sql = """SELECT printf('rater-%02d', r.number) AS rater,
                    (SELECT COUNT(*) FROM schedule s WHERE s.rater = r.id) AS questions,
                    (SELECT COUNT(*) FROM answers a WHERE a.rater = r.id) AS answered
             FROM raters r ORDER BY r.number"""
    with connect(study) as con:
        rows = [dict(r) for r in con.execute(sql)]
    for r in rows:
        r["finished"] = r["answered"] == r["questions"]
    return rows


def image_table(study: str | Path) -> dict[str, dict]:
    """token -> ``{truth, source, image_id, path, ita_category, file}`` from the study's ``images`` table
    (``path``: the original file; ``file``: the served copy, relative to the study folder)."""
    with connect(study) as con:
        return {r["token"]: dict(r) for r in con.execute("SELECT * FROM images")}


def _summary(answers: list[dict], modes: list[str], sources: list[str]) -> list[dict]:
    from scipy.stats import fisher_exact, mannwhitneyu

    fakes = [s for s in sources if s != REAL]
    out = []

    def row(mode: str, source: str, measure: str, sel: list[dict], stats: dict, **extra) -> None:
        conf = [a["confidence"] for a in sel if a["confidence"] is not None]
        per_answer = {"accuracy": lambda a: a["correct"], "judged_real": lambda a: a["answer"] == "real",
                      "mean_rating": lambda a: int(a["answer"])}[measure]
        low, high = cluster_interval([per_answer(a) for a in sel], [a["rater"] for a in sel], [a["item"] for a in sel])
        out.append({"mode": mode, "source": source, "measure": measure, "k": None, "p_value": None,
                    "p_vs_real": None, **stats, "cluster_low": low, "cluster_high": high,
                    "mean_confidence": float(np.mean(conf)) if conf else None,
                    "raters": len({a["rater"] for a in sel}), **extra})

    by = defaultdict(list)
    for a in answers:
        by[a["mode"], a["source"]].append(a)
    if "single" in modes:
        sel = [a for a in answers if a["mode"] == "single"]
        row("single", ALL, "accuracy", sel, proportion(sum(a["correct"] for a in sel), len(sel)))
        real = by["single", REAL]
        k_real = sum(a["answer"] == "real" for a in real)
        row("single", REAL, "judged_real", real, proportion(k_real, len(real)))
        for s in fakes:
            sel = by["single", s]
            k = sum(a["answer"] == "real" for a in sel)
            p = fisher_exact([[k, len(sel) - k], [k_real, len(real) - k_real]]).pvalue if sel and real else None
            row("single", s, "judged_real", sel, proportion(k, len(sel)), p_vs_real=None if p is None else float(p))
    if "pair" in modes:
        sel = [a for a in answers if a["mode"] == "pair"]
        row("pair", ALL, "accuracy", sel, proportion(sum(a["correct"] for a in sel), len(sel)))
        for s in fakes:
            sel = by["pair", s]
            row("pair", s, "accuracy", sel, proportion(sum(a["correct"] for a in sel), len(sel)))
    if "likert" in modes:
        real = [int(a["answer"]) for a in by["likert", REAL]]
        row("likert", REAL, "mean_rating", by["likert", REAL], mean_interval(real, bounds=LIKERT))
        for s in fakes:
            ratings = [int(a["answer"]) for a in by["likert", s]]
            p = mannwhitneyu(ratings, real).pvalue if ratings and real else None
            row("likert", s, "mean_rating", by["likert", s], mean_interval(ratings, bounds=LIKERT),
                p_vs_real=None if p is None or math.isnan(p) else float(p))
    return [{c: r.get(c) for c in SUMMARY_COLUMNS} for r in out]


def _agreement(answers: list[dict], modes: list[str]) -> list[dict]:
    """One row per mode: what each rater said per question (see the module docstring for the coding)."""
    code = {"single": (lambda a: float(a["answer"] == "real"), "nominal", "answered real"),
            "pair": (lambda a: float(a["correct"]), "nominal", "picked the real image"),
            "likert": (lambda a: float(a["answer"]), "ordinal", "rating 1-5")}
    out = []
    for mode in modes:
        value, level, what = code[mode]
        units: dict[int, dict[str, float]] = defaultdict(dict)
        for a in answers:
            if a["mode"] == mode:
                units[a["item"]][a["rater"]] = value(a)
        alpha, note = krippendorff_alpha(units, level)
        out.append({"mode": mode, "coded_as": what, "level": level, "alpha": alpha,
                    "raters": len({r for u in units.values() for r in u}),
                    "shared_items": sum(len(u) >= 2 for u in units.values()), "items": len(units), "note": note})
    return out


def _per_rater(answers: list[dict], raters: list[dict]) -> list[dict]:
    out = []
    for r in raters:
        mine = [a for a in answers if a["rater"] == r["rater"]]
        row = {**r}
        for mode in ("single", "pair"):
            sel = [a["correct"] for a in mine if a["mode"] == mode]
            row[f"{mode}_n"] = len(sel)
            row[f"{mode}_accuracy"] = sum(sel) / len(sel) if sel else None
        said = [a["answer"] == "real" for a in mine if a["mode"] == "single"]
        row["single_said_real"] = sum(said) / len(said) if said else None  # response bias (0.5 = none)
        for truth in ("real", "synthetic"):
            sel = [int(a["answer"]) for a in mine if a["mode"] == "likert" and a["truth"] == truth]
            row[f"likert_mean_{truth}"] = float(np.mean(sel)) if sel else None
        row["median_rt_s"] = float(np.median([a["rt_ms"] for a in mine])) / 1000 if mine else None
        out.append(row)
    return out


def _tone_order() -> list[str]:
    from skingen.data.skintone import ITA_CATEGORIES, UNKNOWN

    return [c[1] for c in ITA_CATEGORIES] + [UNKNOWN]


def _per_tone(answers: list[dict], sources: list[str]) -> tuple[list[dict], str]:
    """Rows per ITA category x set: single ``judged_real`` (and ``accuracy`` over all sets), pair ``accuracy``
    by the *synthetic* image's category, likert ``mean_rating``; empty when every category is unknown."""
    from skingen.data.skintone import UNKNOWN

    def tone(a: dict) -> str:
        return (a["partner_ita_category"] if a["mode"] == "pair" else a["ita_category"]) or UNKNOWN

    if all(tone(a) == UNKNOWN for a in answers):
        return [], ("No shown image has a known skin-tone category (ITA): run `skingen analyze` on the real data "
                    "(adds ita_category to its manifest) and sample mask-conditioned models with --ita, before "
                    "creating the study.")
    out = []
    for t in _tone_order():
        mine = [a for a in answers if tone(a) == t]
        for mode in MODES:
            sel = [a for a in mine if a["mode"] == mode]
            if not sel:
                continue
            if mode != "likert":
                out.append({"ita_category": t, "mode": mode, "source": ALL, "measure": "accuracy",
                            **proportion(sum(a["correct"] for a in sel), len(sel), test=False)})
            for s in sources:
                part = [a for a in sel if a["source"] == s]
                if not part:
                    continue
                if mode == "single":
                    stats = proportion(sum(a["answer"] == "real" for a in part), len(part), test=False)
                    measure = "judged_real"
                elif mode == "pair":
                    stats, measure = proportion(sum(a["correct"] for a in part), len(part), test=False), "accuracy"
                else:
                    stats, measure = mean_interval([int(a["answer"]) for a in part], bounds=LIKERT), "mean_rating"
                out.append({"ita_category": t, "mode": mode, "source": s, "measure": measure, **stats})
    for r in out:
        r.pop("p_value", None)
    note = ("Single and likert answers grouped by the shown image's ITA category; pairs by the synthetic "
            "image's. Real images carry the category `skingen analyze` measured; synthetic ones the category "
            "they were painted for (condition_ita) or measured (ita_category).")
    return out, note


def _mistaken(answers: list[dict], top: int) -> list[dict]:
    """The ``top`` images of each :data:`MISTAKE_KINDS` with the most mistakes (then highest share)."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # (kind, token) -> [mistaken, shown]
    for a in answers:
        if a["mode"] == "single":
            kind = "synthetic_judged_real" if a["truth"] == "synthetic" else "real_judged_synthetic"
            c = counts[kind, a["image"]]
            c[0] += a["correct"] == 0
            c[1] += 1
        elif a["mode"] == "pair":
            c = counts["synthetic_picked_as_real", a["partner"]]
            c[0] += a["correct"] == 0
            c[1] += 1
    out = []
    for kind in MISTAKE_KINDS:
        rows = [(token, m, n) for (k, token), (m, n) in counts.items() if k == kind and m > 0]
        rows.sort(key=lambda t: (-t[1], -t[1] / t[2], t[0]))
        out += [{"kind": kind, "token": token, "mistaken": m, "shown": n, "share": m / n} for token, m, n in rows[:top]]
    return out


def build_report(study: str | Path, top: int = 8, min_answers: int = MIN_ANSWERS) -> RatingReport:
    """Read the study's answers and compute every table (module docstring); a study without answers gives
    a report that says so. A rater counts from ``min_answers`` answers on (a session that answered once or
    twice is a tab left open or a probe, not a rater; the notes say how many were left out). Raises
    :class:`~skingen.errors.SkingenError` when ``study`` is not a study."""
    if min_answers < 1:
        raise SkingenError(f"--min-answers must be at least 1, got {min_answers}")
    study = Path(study)
    definition = read_definition(study)
    images = image_table(study)
    sessions = _rater_rows(study)
    counted = {r["rater"] for r in sessions if r["answered"] >= min_answers}
    all_answers = answer_rows(study)
    answers = [a for a in all_answers if a["rater"] in counted]
    for a in answers:
        a["image_path"] = images[a["image"]]["path"]
        a["partner_path"] = images[a["partner"]]["path"] if a["partner"] else None
    modes = list(definition["config"]["modes"])
    sources = [s["name"] for s in definition["sources"]]
    raters = [r for r in sessions if r["rater"] in counted]
    few = [r for r in sessions if 0 < r["answered"] < min_answers]
    notes = []
    if few:
        notes.append(f"{len(few)} rater(s) with fewer than {min_answers} answers ({sum(r['answered'] for r in few)} "
                     f"answers in all) left out of every table (rate report --min-answers sets the minimum).")
    if not answers:
        notes.append(f"No {'answers' if not all_answers else f'rater with {min_answers} answers'} yet ({len(sessions)} "
                     f"rater(s) started): nothing to report. Share the study's address with raters (`skingen rate "
                     f"serve`) and run the report again.")
    if any(not r["answered"] for r in sessions):
        notes.append(f"{sum(not r['answered'] for r in sessions)} rater session(s) without an answer left out of "
                     f"every table.")
    mistaken = _mistaken(answers, top)
    for m in mistaken:
        info = images[m["token"]]
        m.update(source=info["source"], image_id=info["image_id"], path=info["path"], file=info["file"])
    per_tone, tone_note = _per_tone(answers, sources) if answers else ([], "No answers.")
    return RatingReport(
        study=study, definition=definition, raters=raters, answers=answers,
        summary=_summary(answers, modes, sources) if answers else [],
        agreement=_agreement(answers, modes) if answers else [], per_rater=_per_rater(answers, raters),
        per_tone=per_tone, tone_note=tone_note, mistaken=mistaken, notes=notes,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


# --------------------------------------------------------------------------- writing it
