import json

import typer
from typer.testing import CliRunner

from skingen.cli import app

runner = CliRunner()


def test_prepare_cli_summary_and_errors(tmp_path, demo_raw):
    res = runner.invoke(app, ["prepare", str(demo_raw / "images"), "--out", str(tmp_path / "d"),
                              "--masks", str(demo_raw / "masks"), "--size", "32", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "d" / "manifest.csv").is_file() and "train" in res.output
    again = runner.invoke(app, ["prepare", str(demo_raw / "images"), "--out", str(tmp_path / "d")])
    assert again.exit_code == 1 and "not empty" in again.output and "Traceback" not in again.output
    bad = runner.invoke(app, ["prepare", str(demo_raw / "images"), "--out", str(tmp_path / "e"), "--set", "crop.maxx=2"])
    assert bad.exit_code == 1 and "unknown config key 'crop.maxx'" in bad.output and "crop.max_per_photo" in bad.output
    nothing = runner.invoke(app, ["prepare", str(tmp_path / "missing"), "--out", str(tmp_path / "f")])
    assert nothing.exit_code == 1 and "input not found" in nothing.output


def test_dry_run_prints_resolved_config(tmp_path):
    res = runner.invoke(app, ["prepare", "x", "--out", str(tmp_path / "d"), "--size", "64", "--split", "0.7,0.2,0.1",
                              "--set", "crop.max_per_photo=6", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "size: 64" in res.output and "max_per_photo: 6" in res.output and "- 0.7" in res.output
    assert not (tmp_path / "d").exists()


def test_demo_end_to_end(tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--n", "8", "--size", "32", "--train-images", "256"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["given_masks"]["photos_used"] == 8 and sum(summary["given_masks"]["crops"].values()) >= 8
    assert 0.2 < summary["auto_mask_iou_mean"] <= 1
    assert sum(summary["ita_counts"].values()) == sum(summary["given_masks"]["crops"].values())
    assert (tmp_path / "demo" / "analysis" / "report.html").is_file()
    for family in ("dcgan", "cvae"):
        assert len(list((tmp_path / "demo" / "synth" / family).glob("seed*.png"))) == 16
        assert summary["models"][family]["seconds_per_image"] > 0
    inpainted = tmp_path / "demo" / "synth" / "inpaint"
    assert len(list(inpainted.glob("seed*.png"))) == 6 and len(list((inpainted / "frames").glob("*.png"))) == 6
    assert summary["models"]["inpaint"]["evaluations_per_image"] == 6 * 4  # 6 steps x 4 solver steps (tiny preset)
    for family in ("dermgan", "dermdiff"):
        for cond in ("masks", "layouts"):
            assert len(list((tmp_path / "demo" / "synth" / family / cond / "coloured").glob("seed*.png"))) == 8
    layouts = (tmp_path / "demo" / "synth" / "dermgan" / "layouts" / "manifest.csv").read_text()
    assert ",layout," in layouts
    html = (tmp_path / "demo" / "summary.html").read_text()
    assert html.count("data:image/png;base64,") == 8
    assert set(summary["downstream"]) == {"real", "real+classical"}  # the tiny detector study ran
    assert (tmp_path / "demo" / "downstream" / "summary.csv").is_file()
    rating = tmp_path / "demo" / "rating"  # a ready rating study of real crops vs dcgan and cvae samples
    assert summary["rating"]["study"] == str(rating) and summary["rating"]["questions"] > 0
    assert "skingen rate serve --study" in html
    from skingen.rating.store import read_definition

    assert [s["name"] for s in read_definition(rating)["sources"]] == ["real", "dcgan", "cvae"]


def test_demo_default_out_is_a_new_numbered_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        res = runner.invoke(app, ["demo", "--n", "4", "--size", "32", "--train-images", "0"])
        assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "demo_out").iterdir()) == ["00000-demo", "00001-demo"]


def test_inpaint_help_shows_the_run_defaults():
    # the CLI does not import torch to build its help, so the defaults are written there by hand: keep them true
    from skingen.inpaint.iterative import IterativeParams

    commands = typer.main.get_command(app).commands
    helps = {(c, p.name): p.help for c in ("inpaint", "plan") for p in commands[c].params}
    d = IterativeParams()
    for (command, name), value in {("inpaint", "shape"): d.shape, ("inpaint", "region_size"): d.size,
                                   ("inpaint", "feather"): d.feather, ("inpaint", "steps"): d.steps,
                                   ("inpaint", "context"): d.context, ("inpaint", "placement"): d.placement,
                                   ("plan", "shape"): d.shape, ("plan", "region_size"): d.size,
                                   ("plan", "steps"): d.steps, ("plan", "context"): d.context}.items():
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        assert f"[default: {shown}]" in helps[command, name], (command, name)


def test_one_spelling_for_a_synthetic_set():
    # issue 30: --synthetic [NAME=]DIR[:LABEL] in every command (evaluate and rate took --fake NAME=DIR, augment
    # and downstream --synthetic DIR:LABEL)
    from pathlib import Path

    from skingen.data.imagesets import SetSpec, parse_set_spec

    assert parse_set_spec("dcgan=runs/s1:measles") == SetSpec(Path("runs/s1"), "dcgan", "measles")
    assert parse_set_spec("runs/s1") == SetSpec(Path("runs/s1"))
    assert parse_set_spec("runs/s1:measles") == SetSpec(Path("runs/s1"), None, "measles")
    assert parse_set_spec("a/b=c/d") == SetSpec(Path("a/b=c/d"))  # '=' inside a path is not a name
    assert parse_set_spec("runs/x:y/z") == SetSpec(Path("runs/x:y/z"))  # nor ':' before a '/'


def test_renamed_options_keep_their_old_name_hidden_for_one_release(tiny_data, tmp_path):
    out = {}
    for flag in ("--synthetic", "--fake"):
        res = runner.invoke(app, ["evaluate", "--real", f"{tiny_data}:train", flag, f"copy={tiny_data}", "--metrics",
                                  "diversity", "--features", "colour", "--out", str(tmp_path / flag)])
        assert res.exit_code == 0, res.output
        out[flag] = res.output
    assert "--fake is deprecated" in " ".join(out["--fake"].split()) and "deprecated" not in out["--synthetic"]
    assert "copy" in out["--synthetic"]  # NAME= names the set in the table
    both = runner.invoke(app, ["evaluate", "--real", str(tiny_data), "--fake", str(tiny_data), "--synthetic",
                               str(tiny_data), "--out", str(tmp_path / "both")])
    assert both.exit_code == 1 and "give --synthetic only" in both.output
    assert "--fake" not in runner.invoke(app, ["evaluate", "--help"]).output  # hidden
    assert "--region-size" in runner.invoke(app, ["inpaint", "--help"]).output


def test_training_precision_is_spelled_as_sampling_s():
    from skingen.train.loop import resolve_config

    assert resolve_config("cvae", "tiny/cvae").train.mixed_precision == "fp32"
    assert resolve_config("cvae", "tiny/cvae", ["train.mixed_precision='no'"]).train.mixed_precision == "fp32"
    assert resolve_config("cvae", "tiny/cvae", ["train.mixed_precision=bf16"]).train.mixed_precision == "bf16"
