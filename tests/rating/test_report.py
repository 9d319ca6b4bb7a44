"""The rating report against hand-computed numbers: raters with planted answer rules fill a small study."""

import csv
import json
import math
from collections import Counter

import pytest
from typer.testing import CliRunner

from skingen.cli import app
from skingen.errors import SkingenError
from skingen.rating.report import write_report
from skingen.rating.results import build_report
from skingen.stats import krippendorff_alpha
from skingen.rating.store import connect
from tests.rating.conftest import answer_as, correct_rule

runner = CliRunner()


def _row(report, mode, source, measure=None):
    rows = [r for r in report.summary if r["mode"] == mode and r["source"] == source
            and (measure is None or r["measure"] == measure)]
    assert len(rows) == 1, rows
    return rows[0]


def _binom_two_sided(k: int, n: int) -> float:
    """Exact two-sided binomial p against 1/2 by hand: the distribution is symmetric, so twice the tail."""
    tail = sum(math.comb(n, i) for i in range(max(k, n - k), n + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def _fisher_two_sided(a: int, b: int, c: int, d: int) -> float:
    """Fisher's exact test of [[a, b], [c, d]] by hand: the hypergeometric probabilities of every table with
    the same margins that are no more likely than the observed one."""
    row1, col1, total = a + b, a + c, a + b + c + d

    def prob(x):
        return math.comb(col1, x) * math.comb(total - col1, row1 - x) / math.comb(total, row1)

    observed = prob(a)
    support = range(max(0, row1 + col1 - total), min(row1, col1) + 1)
    return sum(prob(x) for x in support if prob(x) <= observed * (1 + 1e-7))


def _alpha_nominal_by_hand(units: list[list[float]]) -> float:
    """Krippendorff's nominal alpha from the coincidence matrix: o_ck = sum over units of (ordered pairs of
    values c, k from different raters) / (m_u - 1); alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k."""
    values = sorted({v for u in units for v in u})
    o = {(c, k): 0.0 for c in values for k in values}
    for u in units:
        if len(u) < 2:
            continue
        for i, c in enumerate(u):
            for j, k in enumerate(u):
                if i != j:
                    o[c, k] += 1 / (len(u) - 1)
    n_c = {c: sum(o[c, k] for k in values) for c in values}
    n = sum(n_c.values())
    observed = sum(v for (c, k), v in o.items() if c != k)
    expected = sum(n_c[c] * n_c[k] for c in values for k in values if c != k) / (n - 1)
    return 1 - observed / expected


def test_single_mode_counts_intervals_and_tests_match_hand_computation(make_study):
    study = make_study(modes=("single",))  # per rater: 6 real, 3 dcgan, 3 fake_b images
    answer_as(study, correct_rule)  # rater-01: 12 of 12 right, confidence 5
    answer_as(study, lambda q, t: ("real", 2))  # rater-02: always "real": 6 of 12
    # rater-03: "synthetic" except for dcgan images (fooled by them): right only on fake_b, 3 of 12
    answer_as(study, lambda q, t: ("real" if q["source"] == "dcgan" else "synthetic", 4))
    rep = build_report(study)

    acc = _row(rep, "single", "all", "accuracy")
    assert (acc["k"], acc["n"], acc["raters"]) == (21, 36, 3)
    assert acc["value"] == pytest.approx(21 / 36)
    # Wilson by hand: centre (p + z²/2n)/(1 + z²/n), half z/(1 + z²/n)·sqrt(p(1-p)/n + z²/4n²), z = 1.96
    assert (acc["ci_low"], acc["ci_high"]) == pytest.approx((0.422003, 0.728594), abs=1e-6)
    assert acc["p_value"] == pytest.approx(_binom_two_sided(21, 36), rel=1e-9)
    # the raters x images interval: raters right 12, 6, 3 of 12 differ, so it is wider than Wilson's
    assert acc["cluster_low"] < acc["ci_low"] and acc["cluster_high"] > acc["ci_high"]
    assert acc["cluster_low"] <= acc["value"] <= acc["cluster_high"]

    real = _row(rep, "single", "real")
    assert (real["k"], real["n"]) == (12, 18)  # judged real by rater-01 and rater-02
    assert (real["ci_low"], real["ci_high"]) == pytest.approx((0.437495, 0.837212), abs=1e-6)
    assert real["p_value"] == pytest.approx(0.237884521484375, rel=1e-9)  # 2·sum_{i>=12} C(18,i)/2^18
    assert real["mean_confidence"] == pytest.approx((6 * 5 + 6 * 2 + 6 * 4) / 18)

    dcgan, fake_b = _row(rep, "single", "dcgan"), _row(rep, "single", "fake_b")
    assert (dcgan["k"], dcgan["n"], fake_b["k"], fake_b["n"]) == (6, 9, 3, 9)
    assert (dcgan["ci_low"], dcgan["ci_high"]) == pytest.approx((0.354202, 0.879416), abs=1e-6)
    assert (fake_b["ci_low"], fake_b["ci_high"]) == pytest.approx((0.120584, 0.645798), abs=1e-6)
    assert dcgan["p_vs_real"] == pytest.approx(1.0)  # judged real exactly as often as the real images (2/3)
    assert fake_b["p_vs_real"] == pytest.approx(_fisher_two_sided(3, 6, 12, 6), rel=1e-9)
    assert fake_b["p_vs_real"] < 0.5

    per_rater = {r["rater"]: r for r in rep.per_rater}
    assert [per_rater[f"rater-0{i}"]["single_accuracy"] for i in (1, 2, 3)] == [1.0, 0.5, 0.25]
    assert [per_rater[f"rater-0{i}"]["single_said_real"] for i in (1, 2, 3)] == [0.5, 1.0, 0.25]
    assert all(r["finished"] and r["single_n"] == 12 for r in rep.per_rater)

    # Agreement on "answered real", 12 questions x 3 raters: real images (1,1,0) x6, dcgan (0,1,1) x3,
    # fake_b (0,1,0) x3. Coincidences: o11 = 9, o00 = 3, o01 = o10 = 12; n1 = 21, n0 = 15, n = 36.
    # alpha = 1 - (n-1)(o01+o10) / (2 n1 n0) = 1 - 35·24 / 630 = -1/3.
    (agree,) = rep.agreement
    assert agree["alpha"] == pytest.approx(-1 / 3, abs=1e-12)
    assert (agree["raters"], agree["shared_items"], agree["level"]) == (3, 12, "nominal")


def test_pair_mode_accuracy_and_agreement(make_study):
    study = make_study(modes=("pair",))  # 3 pairs per set (dcgan, fake_b); sides drawn per rater
    answer_as(study, correct_rule)  # 6 of 6
    answer_as(study, lambda q, t: ("left", None))  # right exactly where its real image is on the left
    answer_as(study, lambda q, t: ("right" if q["real_side"] == "left" else "left", None))  # always wrong
    rep = build_report(study)
    left = {s: sum(a["real_right"] == 0 for a in rep.answers if a["rater"] == "rater-02" and a["source"] == s)
            for s in ("dcgan", "fake_b")}  # rater-02's right answers per set (2 of 3 with today's side draw)
    k2 = sum(left.values())
    overall = _row(rep, "pair", "all")
    assert (overall["k"], overall["n"]) == (6 + k2, 18)
    assert overall["p_value"] == pytest.approx(_binom_two_sided(6 + k2, 18), rel=1e-9)
    for s in ("dcgan", "fake_b"):
        row = _row(rep, "pair", s)
        assert (row["k"], row["n"], row["mean_confidence"]) == (3 + left[s], 9, None)
        assert row["p_value"] == pytest.approx(_binom_two_sided(3 + left[s], 9), rel=1e-9)
    # coded "picked the real image": k2 pairs (1,1,0) and 6 - k2 pairs (1,0,0), each unit one agreeing pair:
    # o11 = k2, o00 = 6 - k2, o10 = o01 = 6, n1 = k2 + 6, n0 = 12 - k2, n = 18;
    # alpha = 1 - (n-1)(o01+o10)/(2 n1 n0): with k2 = 4, 1 - 17·12/(2·10·8) = -0.275.
    # (Coded by side, left/right, the same answers give another value: sides differ per rater.)
    (agree,) = rep.agreement
    assert agree["alpha"] == pytest.approx(1 - 17 * 12 / (2 * (k2 + 6) * (12 - k2)), abs=1e-12)
    assert 0 < k2 < 6  # the rule above gives a mix of right and wrong answers


def test_likert_means_with_t_intervals(make_study):
    study = make_study(modes=("likert",))  # per rater 3 real, 3 dcgan, 3 fake_b
    answer_as(study, correct_rule)  # 5 for real, 1 for synthetic
    answer_as(study, lambda q, t: ({"real": "4", "dcgan": "2", "fake_b": "3"}[q["source"]], None))
    rep = build_report(study)
    real, dcgan = _row(rep, "likert", "real"), _row(rep, "likert", "dcgan")
    # real ratings 5,5,5,4,4,4: mean 4.5, sd sqrt(0.3), t(0.975, 5) = 2.570582 -> 4.5 ± 0.574799, clipped to 5
    assert (real["n"], real["value"]) == (6, pytest.approx(4.5))
    assert (real["ci_low"], real["ci_high"]) == pytest.approx((4.5 - 0.574799, 5.0), abs=1e-6)
    assert (dcgan["value"], dcgan["ci_low"], dcgan["ci_high"]) == pytest.approx((1.5, 1.0, 1.5 + 0.574799), abs=1e-6)
    fake_b = _row(rep, "likert", "fake_b")  # 1,1,1,3,3,3: mean 2, sd sqrt(1.2)
    assert fake_b["ci_high"] == pytest.approx(2 + 2.570582 * math.sqrt(1.2 / 6), abs=1e-6)
    assert dcgan["p_vs_real"] < 0.05 and fake_b["p_vs_real"] < 0.05  # every synthetic rating below every real one
    per_rater = {r["rater"]: r for r in rep.per_rater}
    assert (per_rater["rater-02"]["likert_mean_real"], per_rater["rater-02"]["likert_mean_synthetic"]) == (4.0, 2.5)
    assert rep.agreement[0]["level"] == "ordinal" and rep.agreement[0]["alpha"] is not None


def test_alpha_matches_coincidence_matrix_with_missing_values_and_edge_cases():
    # Krippendorff's textbook-style data (4 raters, 12 units, missing values), values as categories
    table = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
             [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
             [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
             [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]
    units = {j: {f"r{i}": table[i][j] for i in range(4) if table[i][j] is not None} for j in range(12)}
    by_hand = _alpha_nominal_by_hand([list(u.values()) for u in units.values()])
    alpha, note = krippendorff_alpha(units, "nominal")
    assert alpha == pytest.approx(by_hand, abs=1e-12) and note == ""
    assert round(alpha, 3) == 0.743  # the value Krippendorff (2011) gives for this example
    assert round(krippendorff_alpha(units, "ordinal")[0], 3) == 0.815  # and its ordinal alpha
    assert krippendorff_alpha({0: {"a": 1.0, "b": 1.0}, 1: {"a": 0.0, "b": 0.0}}, "nominal") == (1.0, "")
    assert krippendorff_alpha({0: {"a": 1.0}, 1: {"a": 0.0}}, "nominal") == (None, "needs 2 raters who answered the same question")
    alpha, note = krippendorff_alpha({0: {"a": 1.0, "b": 1.0}, 1: {"a": 1.0, "b": 1.0}}, "nominal")
    assert alpha is None and "undefined" in note


def test_rater_who_stopped_early_counts_as_missing(make_study):
    study = make_study(modes=("single",))
    answer_as(study, correct_rule)
    answer_as(study, correct_rule)
    answer_as(study, lambda q, t: None if q["position"] >= 5 else ("real", 3))  # 5 answers, then gone
    answer_as(study, lambda q, t: None)  # started, answered nothing
    rep = build_report(study)
    units: dict[int, list[float]] = {}
    for a in rep.answers:
        units.setdefault(a["item"], []).append(float(a["answer"] == "real"))
    (agree,) = rep.agreement
    assert agree["alpha"] == pytest.approx(_alpha_nominal_by_hand(list(units.values())), abs=1e-12)
    assert agree["raters"] == 3
    counts = {r["rater"]: (r["answered"], r["questions"], r["finished"]) for r in rep.per_rater}
    assert counts == {"rater-01": (12, 12, True), "rater-02": (12, 12, True), "rater-03": (5, 12, False)}
    assert "1 rater session(s) without an answer left out of every table." in rep.notes  # rater-04 (issue 21)
    assert _row(rep, "single", "all")["n"] == 29


def test_per_skin_tone_groups_by_the_shown_and_the_synthetic_image(make_study, rating_sources):
    _, (fake_a, _) = rating_sources
    study = make_study(n=6, modes=("single", "pair"), fakes_=[str(fake_a)])  # all 12 dcgan images shown

    def fooled_by_dark(q, truths):  # right, except that dark synthetic images pass for real
        if q["mode"] == "single":
            dark = truths[q["images"][0]]["ita_category"] == "dark"
            return ("real" if q["truth"] == "real" or dark else "synthetic"), 3
        synthetic = next(tok for tok in q["images"] if truths[tok]["truth"] == "synthetic")
        fooled = truths[synthetic]["ita_category"] == "dark"
        return (q["real_side"] if not fooled else ("left" if q["real_side"] == "right" else "right")), None

    answer_as(study, fooled_by_dark)
    rep = build_report(study)
    with connect(study) as con:
        shown = Counter((r["mode"], r["ita_category"]) for r in con.execute(
            "SELECT i.mode, im.ita_category FROM items i JOIN images im "
            "ON im.token = CASE WHEN i.mode = 'pair' THEN i.partner ELSE i.image END WHERE im.truth = 'synthetic'"))
    assert sum(shown.values()) == 12 and {t for _, t in shown} == {"light", "tan", "dark"}
    dcgan = {(r["mode"], r["ita_category"]): r for r in rep.per_tone if r["source"] == "dcgan"}
    assert {k: r["n"] for k, r in dcgan.items()} == dict(shown)
    for (mode, tone), r in dcgan.items():
        planted = 1.0 if tone == "dark" else 0.0  # single: share judged real; pair: share of pairs got wrong
        assert r["value"] == (planted if mode == "single" else 1 - planted), (mode, tone, r)
    real = [r for r in rep.per_tone if r["source"] == "real"]
    assert real and all(r["ita_category"] == "unknown" and r["value"] == 1.0 for r in real)  # tiny_data: no ITA


def test_per_skin_tone_omitted_without_categories(make_study, rating_sources):
    _, (_, fake_b) = rating_sources
    study = make_study(modes=("single",), fakes_=[str(fake_b)])
    answer_as(study, correct_rule)
    rep = build_report(study)
    assert rep.per_tone == [] and "skingen analyze" in rep.tone_note


def test_most_mistaken_images_in_order(make_study):
    study = make_study(modes=("single",))
    with connect(study) as con:
        shown = [dict(r) for r in con.execute(
            "SELECT im.token, im.truth, im.image_id, im.path FROM items i JOIN images im ON im.token = i.image "
            "ORDER BY im.token")]
    synthetic = [r["token"] for r in shown if r["truth"] == "synthetic"]
    real = [r["token"] for r in shown if r["truth"] == "real"]
    # rater i (0, 1, 2) calls synthetic[j] real when j < 3 - i: synthetic[0] fools 3 raters, [1] two, [2] one;
    # real[0] is called synthetic by rater 0 only
    for i in range(3):
        def rule(q, t, i=i):
            tok = q["images"][0]
            if tok in synthetic[:3 - i] or (i == 0 and tok == real[0]):
                return ("real" if q["truth"] == "synthetic" else "synthetic"), 3
            return correct_rule(q, t)
        answer_as(study, rule)
    rep = build_report(study, top=2)
    fooled = [m for m in rep.mistaken if m["kind"] == "synthetic_judged_real"]
    assert [(m["token"], m["mistaken"], m["shown"]) for m in fooled] == [(synthetic[0], 3, 3), (synthetic[1], 2, 3)]
    missed = [m for m in rep.mistaken if m["kind"] == "real_judged_synthetic"]
    assert [(m["token"], m["mistaken"]) for m in missed] == [(real[0], 1)]
    by_token = {r["token"]: r for r in shown}
    assert all(m["path"] == by_token[m["token"]]["path"] for m in fooled + missed)


def test_report_files_and_empty_study(make_study, tmp_path):
    study = make_study()
    empty = build_report(study)
    assert empty.summary == [] and "No answers yet" in empty.notes[0]
    write_report(empty, tmp_path / "empty")
    with open(tmp_path / "empty" / "summary.csv", newline="") as fh:
        assert list(csv.reader(fh)) == [["mode", "source", "measure", "n", "k", "value", "ci_low", "ci_high",
                                         "cluster_low", "cluster_high", "p_value", "p_vs_real", "mean_confidence",
                                         "raters"]]
    assert "No answers yet" in (tmp_path / "empty" / "report.html").read_text()

    answer_as(study, correct_rule)
    answer_as(study, lambda q, t: ("real", 1) if q["mode"] == "single" else None)
    rep = build_report(study)
    html_path = write_report(rep, tmp_path / "rep")
    out = tmp_path / "rep"
    assert {p.name for p in out.iterdir()} == {"report.html", "summary.csv", "answers.csv", "per_rater.csv",
                                              "agreement.csv", "mistaken.csv", "per_skin_tone.csv", "report.json"}
    with open(out / "answers.csv", newline="") as fh:
        answers = list(csv.DictReader(fh))
    assert len(answers) == 27 + 12
    with connect(study) as con:
        paths = {r["token"]: r["path"] for r in con.execute("SELECT token, path FROM images")}
    assert all(a["image_path"] == paths[a["image"]] for a in answers)
    assert all(a["partner_path"] == paths[a["partner"]] for a in answers if a["mode"] == "pair")
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert summary == json.loads(json.dumps(rep.summary))
    text = html_path.read_text()
    assert "Most mistaken" in text and "data:image/png;base64" in text and "Krippendorff" in text
    with pytest.raises(SkingenError, match="not empty"):
        write_report(rep, out)
    with pytest.raises(SkingenError, match="no rating study"):
        build_report(tmp_path / "missing")


def test_cli_rate_report(make_study, tmp_path):
    study = make_study(modes=("single",))
    answer_as(study, correct_rule)
    res = runner.invoke(app, ["rate", "report", str(study), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "report.html").is_file() and "judged real" in res.output and "report.html" in res.output
    again = runner.invoke(app, ["rate", "report", str(study), "--out", str(tmp_path / "r")])
    assert again.exit_code == 1 and "not empty" in again.output and "Traceback" not in again.output
    missing = runner.invoke(app, ["rate", "report", str(tmp_path / "nope"), "--out", str(tmp_path / "r2")])
    assert missing.exit_code == 1 and "no rating study" in missing.output
