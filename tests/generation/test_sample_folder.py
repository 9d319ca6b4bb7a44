import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from skingen.cli import app
from skingen.errors import SkingenError
from skingen.data.layouts import TONE_MARGIN, LayoutParams, make_layout, tone_range_warning
from skingen.imageio import read_image, read_mask
from skingen.generation.sample_folder import SampleConfig, sample_to_folder
from tests.conftest import fast, tiny_runs

runner = CliRunner()
FAST = fast(32)


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return tiny_runs(tiny_data, out, ("dcgan", "cvae", "dermgan"))


def rows(folder):
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_sample_writes_seed_named_images_and_synthetic_manifest(runs, tmp_path):
    report = sample_to_folder(runs["dcgan"], tmp_path / "s", [3, 1, 20], SampleConfig(batch=2))
    assert sorted(p.name for p in (tmp_path / "s").glob("*.png")) == ["seed000001.png", "seed000003.png", "seed000020.png"]
    manifest = rows(tmp_path / "s")
    assert [r["seed"] for r in manifest] == ["3", "1", "20"]
    assert {r["origin"] for r in manifest} == {"synthetic"} and {r["model"] for r in manifest} == {"dcgan"}
    assert all(r["checkpoint"].endswith("step-000004") and r["label"] == "exanthem" for r in manifest)
    assert float(manifest[0]["seconds_per_image"]) == pytest.approx(report.seconds_per_image, rel=1e-3)
    meta = json.loads((tmp_path / "s" / "sample.json").read_text())
    assert meta["n"] == 3 and meta["seconds_per_image"] > 0
    assert read_image(tmp_path / "s" / "seed000001.png").shape == (16, 16, 3)


def test_images_depend_only_on_the_seed(runs, tmp_path):
    sample_to_folder(runs["cvae"], tmp_path / "all", list(range(6)), SampleConfig(batch=6))
    sample_to_folder(runs["cvae"], tmp_path / "half", [3, 4, 5], SampleConfig(batch=1))
    for s in (3, 4, 5):
        a = read_image(tmp_path / "all" / f"seed{s:06d}.png").astype(int)
        b = read_image(tmp_path / "half" / f"seed{s:06d}.png").astype(int)
        assert np.abs(a - b).max() <= 1  # batch size may change float rounding, never the image


def test_vary_real_crops_records_parents(runs, tiny_data, tmp_path):
    sample_to_folder(runs["cvae"], tmp_path / "v", [0, 1], SampleConfig(source=f"{tiny_data}:val", strength=0.2))
    manifest = rows(tmp_path / "v")
    val = [r for r in rows(tiny_data) if r["split"] == "val"]
    assert [r["parent_id"] for r in manifest] == [val[0]["id"], val[1 % len(val)]["id"]]
    assert manifest[0]["source_id"] == val[0]["source_id"]  # stays in its photo's group


def test_sample_errors(runs, tiny_data, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.png").write_bytes(b"")
    with pytest.raises(SkingenError, match="not empty"):
        sample_to_folder(runs["dcgan"], tmp_path / "full", [0])
    with pytest.raises(SkingenError, match="cannot vary real images"):
        sample_to_folder(runs["dcgan"], tmp_path / "a", [0], SampleConfig(source=str(tmp_path)))
    assert not (tmp_path / "a").exists()  # nothing half-written is kept
    with pytest.raises(SkingenError, match="--strength only applies"):
        sample_to_folder(runs["cvae"], tmp_path / "b", [0], SampleConfig(strength=0.5))
    with pytest.raises(SkingenError, match="fp16 sampling needs a GPU"):
        sample_to_folder(runs["dcgan"], tmp_path / "d", [0], SampleConfig(precision="fp16"))
    with pytest.raises(SkingenError, match="no checkpoint found"):
        sample_to_folder(tmp_path, tmp_path / "c", [0])


def test_bf16_sampling_stays_close_to_fp32(runs, tmp_path):
    sample_to_folder(runs["dcgan"], tmp_path / "f32", [0, 1])
    sample_to_folder(runs["dcgan"], tmp_path / "b16", [0, 1], SampleConfig(precision="bf16"))
    a = read_image(tmp_path / "f32" / "seed000001.png").astype(int)
    b = read_image(tmp_path / "b16" / "seed000001.png").astype(int)
    assert np.abs(a - b).mean() < 8  # same image up to bf16 rounding (8-bit levels)


def test_cli_train_sample_info_list(tiny_data, tmp_path):
    res = runner.invoke(app, ["train", "cvae", "--data", str(tiny_data), "--config", "tiny/cvae",
                              "--set", "model.size=16", *sum((["--set", o] for o in FAST), []),
                              "--outdir", str(tmp_path / "runs"), "--cpu"])
    assert res.exit_code == 0, res.output
    run = next((tmp_path / "runs").iterdir())
    assert "images 32" in res.output and "loss/kl" in res.output
    res = runner.invoke(app, ["sample", str(run), "--seeds", "0-3", "--out", str(tmp_path / "s"), "--cpu"])
    assert res.exit_code == 0, res.output
    assert "s/image" in res.output and len(list((tmp_path / "s").glob("seed*.png"))) == 4
    res = runner.invoke(app, ["info", str(run)])
    assert res.exit_code == 0 and "cvae" in res.output and "params vae" in res.output and "size: 16" in res.output
    res = runner.invoke(app, ["list"])
    assert res.exit_code == 0 and "dcgan" in res.output and "cvae" in res.output
    # errors are one clear line
    for args, msg in [(["sample", str(run), "--out", str(tmp_path / "t"), "--n", "2", "--seeds", "1"], "exactly one of"),
                      (["train", "cvae", "--resume", str(run), "--set", "model.beta=2"], "only --set train.images"),
                      (["train", "dcgan", "--resume", str(run)], "is a 'cvae' run"),
                      (["train", "cvae", "--data", str(tiny_data), "--set", "train.bogus=1", "--dry-run"], "unknown config key")]:
        res = runner.invoke(app, args)
        assert res.exit_code == 1 and msg in res.output and "Traceback" not in res.output, (args, res.output)
    res = runner.invoke(app, ["train", "cvae", "--resume", str(run), "--set", "train.images=48", "--cpu"])
    assert res.exit_code == 0 and "resumed from step-000004" in res.output


def test_mask_conditioned_sampling_from_data_records_and_saves_the_condition(runs, tiny_data, tmp_path):
    sample_to_folder(runs["dermgan"], tmp_path / "m", [0, 1, 2], SampleConfig(masks=f"{tiny_data}:val"))
    val = {r["id"]: r for r in rows(tiny_data) if r["split"] == "val"}
    out = rows(tmp_path / "m")
    for r in out:
        parent = val[r["parent_id"]]  # a crop of the val split
        assert r["source_id"] == parent["source_id"] and r["condition"] == "data"
        saved = read_mask(tmp_path / "m" / r["lesion"])
        assert saved.shape == (16, 16) and float(r["lesion_fraction"]) == pytest.approx(saved.mean(), abs=1e-4)
        assert read_image(tmp_path / "m" / r["coloured"]).shape == (16, 16, 3)
    # default: the train split of the data the run was trained on
    sample_to_folder(runs["dermgan"], tmp_path / "d", [0, 1])
    train_ids = {r["id"] for r in rows(tiny_data) if r["split"] == "train"}
    assert {r["parent_id"] for r in rows(tmp_path / "d")} <= train_ids


def test_layout_sampling_follows_the_ita_range_and_is_reproducible(runs, tmp_path):
    params = LayoutParams(ita=(-60.0, -40.0), coverage=(0.1, 0.2))
    sample_to_folder(runs["dermgan"], tmp_path / "a", [5, 6, 7], SampleConfig(layouts=params, batch=3))
    sample_to_folder(runs["dermgan"], tmp_path / "b", [7], SampleConfig(layouts=params))
    for r in rows(tmp_path / "a"):
        assert r["condition"] == "layout" and r["parent_id"] == "" and r["source_id"] == r["id"]
        assert -61 <= float(r["condition_ita"]) <= -39
        assert np.array_equal(read_image(tmp_path / "a" / r["coloured"]), make_layout(int(r["seed"]), 16, params).coloured)
    a, b = read_image(tmp_path / "a" / "seed000007.png"), read_image(tmp_path / "b" / "seed000007.png")
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    meta = json.loads((tmp_path / "a" / "sample.json").read_text())
    assert meta["layouts"]["ita"] == [-60.0, -40.0]


def test_mask_condition_errors(runs, tiny_data, tmp_path):
    with pytest.raises(SkingenError, match="does not paint from masks"):
        sample_to_folder(runs["dcgan"], tmp_path / "x", [0], SampleConfig(masks=str(tiny_data)))
    with pytest.raises(SkingenError, match="not both"):
        sample_to_folder(runs["dermgan"], tmp_path / "y", [0], SampleConfig(masks=str(tiny_data), layouts=LayoutParams()))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli_layouts_options(runs, tmp_path):
    res = runner.invoke(app, ["sample", str(runs["dermgan"]), "--n", "2", "--out", str(tmp_path / "l"), "--layouts",
                              "--ita", "dark", "--coverage", "0.05..0.1", "--layout", "spread=1", "--cpu"])
    assert res.exit_code == 0, res.output
    assert all(float(r["condition_ita"]) < -29 for r in rows(tmp_path / "l"))
    for args, msg in [(["--ita", "dark"], "only apply with --layouts"),
                      (["--layouts", "--ita", "darkest"], "ITA range"),
                      (["--layouts", "--coverage", "0.1"], "must be MIN..MAX"),
                      (["--layouts", "--layout", "bogus=1"], "unknown config key 'bogus'")]:
        res = runner.invoke(app, ["sample", str(runs["dermgan"]), "--n", "1", "--out", str(tmp_path / "e"), *args])
        assert res.exit_code == 1 and msg in res.output and "Traceback" not in res.output, (args, res.output)


def test_tone_range_warning_names_the_trained_range_only_beyond_the_margin():
    trained = np.array([10.0, 20.0, 30.0, np.nan])
    assert tone_range_warning((0.0, 40.0), trained) is None          # within TONE_MARGIN of 10..30
    assert tone_range_warning((-60.0, -30.0), np.array([np.nan])) is None  # nothing to compare with
    low = tone_range_warning((-30.0, 15.0), trained)
    assert low and "-30..15" in low and "span 10..30 (1 of 3 in the asked range)" in low
    assert "span 10..30 (0 of 3" in tone_range_warning((41.0, 60.0), trained)


def test_layouts_beyond_the_training_tones_warn_in_the_report_and_sample_json(runs, tiny_data, tmp_path):
    from skingen.data.skintone import coloured_mask_ita

    train = [r for r in rows(tiny_data) if r["split"] == "train"]
    tones = [coloured_mask_ita(read_image(tiny_data / r["coloured"]), read_mask(tiny_data / r["lesion"])) for r in train]
    lo, hi = min(tones), max(tones)
    near = sample_to_folder(runs["dermgan"], tmp_path / "near", [0], SampleConfig(layouts=LayoutParams(ita=(lo, hi))))
    assert not any("training masks" in w for w in near.warnings)
    beyond = (max(-90.0, lo - 45.0), lo - TONE_MARGIN - 5.0)
    far = sample_to_folder(runs["dermgan"], tmp_path / "far", [0], SampleConfig(layouts=LayoutParams(ita=beyond)))
    assert [w for w in far.warnings if f"span {lo:.0f}..{hi:.0f} (0 of {len(tones)}" in w]
    assert far.warnings == json.loads((tmp_path / "far" / "sample.json").read_text())["warnings"]
    assert far.warnings[0] in (tmp_path / "far" / "DATASHEET.md").read_text()
