import csv

import numpy as np
import torch
from typer.testing import CliRunner

from skingen.data.manifest import read_manifest
from skingen.downstream.study import StudyConfig, fraction_indices, run_study
from skingen.downstream.train import TrainConfig, predict, train_classifier

from .conftest import write_planted, write_synthetic

TINY = TrainConfig(size=16, images=768, batch=16, eval_every=256)


def test_same_seed_same_classifier_on_cpu(planted):
    from skingen.downstream.study import load_images

    rows = read_manifest(planted)
    labels = ("a", "b")
    train = load_images(planted, [r for r in rows if r["split"] == "train"], labels, 16)
    val = load_images(planted, [r for r in rows if r["split"] == "val"], labels, 16)
    runs = [train_classifier(train.x, train.y, val.x, val.y, labels, TINY, seed=s, classical=True) for s in (0, 0, 1)]
    p = [predict(r.model, train.x) for r in runs]
    assert np.array_equal(p[0], p[1])
    assert not np.array_equal(p[0], p[2])


def test_fractions_are_group_safe_per_class_and_nested():
    rows = [{"label": "ab"[i % 2], "source_id": f"g{'ab'[i % 2]}{i // 8}", "id": str(i)} for i in range(80)]  # 4 per group
    small, large = fraction_indices(rows, 0.25, seed=3), fraction_indices(rows, 0.5, seed=3)
    assert set(small) <= set(large)
    for chosen in (small, large):
        groups = {rows[i]["source_id"] for i in chosen}
        assert sorted(chosen) == sorted(i for i, r in enumerate(rows) if r["source_id"] in groups)  # whole groups
        assert {rows[i]["label"] for i in chosen} == {"a", "b"}
    assert len(small) == 2 * 12 and len(large) == 2 * 20  # per class: 3 groups reach 10 of 40; 5 groups reach 20
    assert fraction_indices(rows, 1.0, seed=0) == list(range(80))


def test_planted_signal_study_beats_chance(tmp_path):
    """Four classes (chance balanced accuracy 0.25) told apart by a planted colour square: real-only and
    classical arms reach >= 0.75 on the test split; a synthetic set of noise images adds its arms and is
    counted as asked (ratio per class); two ratios that the set is too small for share one training."""
    data = write_planted(tmp_path / "data", {"a": 18, "b": 18, "c": 18, "d": 18})
    synth = write_synthetic(tmp_path / "noise", [{"label": "a"}] * 40)
    cfg = StudyConfig(fractions=(1.0,), seeds=1, ratios=(0, 1, 5, 10), n_boot=100, train=TINY)
    result = run_study(data, [f"{synth}"], cfg)
    by_arm = {r["arm"]: r for r in result.runs}
    assert set(by_arm) == {"real", "real+classical"} | {f"real+{c}noise@{r}" for c in ("", "classical+") for r in (1, 5, 10)}
    assert by_arm["real"]["test_balanced_accuracy"] >= 0.75
    assert by_arm["real+classical"]["test_balanced_accuracy"] >= 0.75
    n_real_a = sum(r["split"] == "train" and r["label"] == "a" for r in read_manifest(data))
    assert by_arm["real+noise@1"]["n_synthetic"] == n_real_a and by_arm["real+noise@1"]["ratio_actual"] == 1.0
    assert by_arm["real+noise@5"]["n_synthetic"] == by_arm["real+noise@10"]["n_synthetic"] == 40  # all there is
    assert by_arm["real+noise@10"]["same_as"] == "real+noise@5" and by_arm["real+noise@5"]["same_as"] == ""
    assert np.array_equal(result.probs[("real+noise@10", 1.0)], result.probs[("real+noise@5", 1.0)])

    from skingen.downstream.report import write_report
    from skingen.eval.features import make_extractor

    html = write_report(result, tmp_path / "report")
    assert html.is_file()
    for name in ("results.csv", "summary.csv", "per_class.csv", "per_skin_tone.csv", "dark_vs_light.csv",
                 "balanced_accuracy.png", "predictions.npz", "study.json"):
        assert (tmp_path / "report" / name).is_file(), name
    with open(tmp_path / "report" / "summary.csv", newline="") as fh:
        summary = {r["arm"]: r for r in csv.DictReader(fh)}
    real = summary["real"]
    assert float(real["balanced_accuracy_low"]) <= float(real["balanced_accuracy"]) <= float(real["balanced_accuracy_high"])
    assert summary["real+noise@1"]["delta_balanced_accuracy"] != ""
    ex = make_extractor(f"classifier:{tmp_path / 'report' / 'best_classifier'}")
    feats = ex(torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8))
    assert feats.shape == (3, 128) and np.isfinite(feats).all()
    assert ex.describe()["labels"] == ["a", "b", "c", "d"]
    for row in result.test.rows:  # test rows without ITA: the report says why the subgroup check is missing
        row.pop("ita", None), row.pop("ita_category", None)
    write_report(result, tmp_path / "no-ita")
    assert not (tmp_path / "no-ita" / "dark_vs_light.csv").exists()
    assert "Not computed: the test rows carry no ITA" in (tmp_path / "no-ita" / "summary.html").read_text()


def test_cli_downstream_and_augment(planted, tmp_path):
    from skingen.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["downstream", "--data", str(planted), "--out", str(tmp_path / "rep"), "--fractions", "1",
                              "--seeds", "1", "--ratios", "0", "--size", "16", "--set", "train.images=256",
                              "--set", "train.batch=16", "--set", "n_boot=50"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rep" / "summary.html").is_file()
    res = runner.invoke(app, ["downstream", "--data", str(planted), "--out", str(tmp_path / "rep"), "--seeds", "1"])
    assert res.exit_code == 1 and "not empty" in res.output
    synth = write_synthetic(tmp_path / "s", [{}] * 2)
    res = runner.invoke(app, ["augment", "--real", str(planted), "--synthetic", f"{synth}:a", "--out", str(tmp_path / "aug")])
    assert res.exit_code == 1 and "give them with --train" in res.output  # no provenance: the gate needs --train
    res = runner.invoke(app, ["augment", "--real", str(planted), "--synthetic", f"{synth}:a", "--out", str(tmp_path / "aug"),
                              "--train", str(planted), "--gate-features", "pixels:64"])
    assert res.exit_code == 0, res.output
    assert sum(r["origin"] == "synthetic" for r in read_manifest(tmp_path / "aug")) == 2
    res = runner.invoke(app, ["downstream", "--data", str(planted), "--out", str(tmp_path / "r2"), "--fractions", "0,1"])
    assert res.exit_code == 1 and "fractions must be in (0, 1]" in res.output
    for bad in ("vgg", "probe:vgg"):
        res = runner.invoke(app, ["downstream", "--data", str(planted), "--out", str(tmp_path / "r3"), "--classifier", bad])
        assert res.exit_code == 1 and f"unknown {'probe' if ':' in bad else 'classifier'} '{bad}'" in res.output


def test_blank_corner_greys_the_bottom_left_square(planted):
    from skingen.downstream.study import load_images

    rows = read_manifest(planted)[:3]
    x = load_images(planted, rows, ("a", "b"), 16, blank_corner=0.25).x
    assert (x[:, :, 12:, :4] == 128).all()
    assert not (x[:, :, :12, :] == 128).all()
    assert torch.equal(x[:, :, :12], load_images(planted, rows, ("a", "b"), 16).x[:, :, :12])


def test_children_join_only_when_their_parent_or_its_photo_group_is_in_the_fraction():
    from skingen.downstream.study import Images, _synthetic_for

    def images(rows):
        return Images(torch.zeros(len(rows), 3, 4, 4, dtype=torch.uint8), torch.zeros(len(rows), dtype=torch.long), rows)

    real = images([{"id": "r1", "source_id": "g1", "label": "a"}, {"id": "r2", "source_id": "g2", "label": "a"}])
    synth = images([{"id": "s0", "parent_id": "r1", "source_id": "g1", "label": "a"},       # parent in the fraction
                    {"id": "s1", "parent_id": "r9", "source_id": "g9", "label": "a"},       # parent's photo not in it
                    {"id": "s2", "parent_id": "other-crop", "source_id": "g2", "label": "a"},  # foreign crop, photo in it
                    {"id": "s3", "parent_id": "", "source_id": "s3", "label": "a"}])        # from scratch
    chosen, _ = _synthetic_for(synth, real, ratio=10, seed=0, labels=("a",))
    assert [synth.rows[i]["id"] for i in chosen] == ["s0", "s2", "s3"]


def test_dark_vs_light_accuracy_by_hand():
    """ITA -20 and 5 are dark (< 10°), 30 light, a blank ITA unknown; accuracy = share of seeds right, per image."""
    from skingen.downstream.report import _grouped_accuracy, ita_group
    from skingen.stats import wilson_interval
    from skingen.downstream.study import Arm, Images, StudyResult

    rows = [{"id": str(i), "ita": v} for i, v in enumerate(["-20.0", "5", "30.5", ""])]
    assert [ita_group(r) for r in rows] == ["dark", "dark", "light", "unknown"]
    y = torch.tensor([0, 1, 0, 1])
    right, wrong = [0.9, 0.1], [0.2, 0.8]  # probabilities for an image of class 0
    p = np.array([[right, wrong[::-1], right, right],     # seed 0: right, wrong... (image 1 is class 1)
                  [wrong, wrong[::-1], right, wrong]])     # seed 1
    # image 0: right, wrong -> 0.5; image 1 (class 1, given [0.8, 0.2] and [0.8, 0.2]): wrong twice -> 0
    result = StudyResult(("a", "b"), [Arm("real", False)], [], {("real", 1.0): p},
                         Images(torch.zeros(4, 3, 2, 2, dtype=torch.uint8), y, rows), None, {}, [], 0.0)
    got = {r["ita_group"]: r for r in _grouped_accuracy(result, "ita_group")}
    assert got["dark"]["n_test"] == 2 and got["dark"]["accuracy"] == 0.25
    assert got["light"]["n_test"] == 1 and got["light"]["accuracy"] == 1.0
    assert (got["dark"]["low"], got["dark"]["high"]) == tuple(round(v, 4) for v in wilson_interval(0, 2))
    assert "delta_vs_real" not in got["dark"]  # real itself
    # a second arm right on every image: +0.75 on the dark pair, +0 on the light image, paired with real
    best = np.array([[right, wrong, right, wrong]] * 2)
    result.probs[("all-right", 1.0)] = best
    got = {(r["arm"], r["ita_group"]): r for r in _grouped_accuracy(result, "ita_group")}
    assert got[("all-right", "dark")]["delta_vs_real"] == 0.75 and got[("all-right", "dark")]["delta_low"] >= 0
    assert got[("all-right", "light")]["delta_vs_real"] == 0.0
