"""`skingen inpaint` end to end on a briefly trained tiny model."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from skingen.checkpoint import save_checkpoint
from skingen.cli import app
from skingen.config import to_dict
from skingen.imageio import read_image, read_mask
from skingen.registry import build_model
from skingen.train.loop import train
from tests.conftest import tiny_config

runner = CliRunner()


@pytest.fixture(scope="module")
def inpaint_run(tiny_data, tmp_path_factory):
    cfg = tiny_config("inpaint", "train.images=32", "train.batch=8", "train.tick=32", "train.snapshot=32", "train.grid=4")
    return train("inpaint", tiny_data, cfg, outdir=tmp_path_factory.mktemp("runs"), cpu=True)


def test_cli_inpaint_writes_runs_with_frames_edit_maps_and_manifest(inpaint_run, tiny_data, tmp_path):
    out = tmp_path / "inp"
    res = runner.invoke(app, ["inpaint", str(inpaint_run), "--from", f"{tiny_data}:val", "--n", "2", "--runs", "2",
                              "--steps", "3", "--region-size", "6", "--shape", "box", "--solver-steps", "2", "--seed", "10",
                              "--out", str(out), "--cpu"])
    assert res.exit_code == 0, res.output
    assert "4 images (2 crops x 2 runs)" in res.output and "model evaluations" in res.output
    assert "- synthetic images: 4" in (out / "DATASHEET.md").read_text()
    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(tiny_data / "manifest.csv", newline="") as fh:
        val = [r for r in csv.DictReader(fh) if r["split"] == "val"]
    assert [r["seed"] for r in rows] == ["10", "11", "12", "13"]
    assert [r["parent_id"] for r in rows] == [val[0]["id"]] * 2 + [val[1]["id"]] * 2
    assert rows[0]["source_id"] == val[0]["source_id"] and {r["origin"] for r in rows} == {"synthetic"}
    images = [read_image(out / r["image"]) for r in rows]
    # the 16 px model worked on shrunken copies of the 32 px crops; the outputs are the crops' size (issue 30)
    assert images[0].shape == (32, 32, 3) and not np.array_equal(images[0], images[1])  # two runs, two images
    for r, image in zip(rows, images):
        info = json.loads((out / "runs" / f"seed{int(r['seed']):06d}.json").read_text())
        counts = np.zeros((32, 32), int)
        for reg in info["regions"]:
            counts[reg["top"]:reg["top"] + reg["side"], reg["left"]:reg["left"] + reg["side"]] += 1
        edits = read_image(out / r["edit_map"])[..., 0].astype(int)
        assert (edits == counts).all() and counts.sum() == 3 * 12 * 12  # 6 px boxes at 16 px are 12 px at 32
        assert edits.max() == int(r["max_repeat"]) and info["evaluations"] == 3 * 2 == int(r["evaluations"])
        parent = read_image(tiny_data / next(v for v in val if v["id"] == r["parent_id"])["image"])
        assert np.array_equal(image[edits == 0], parent[edits == 0])  # untouched pixels: the crop's own, bit-exact
        assert not np.array_equal(image[edits > 0], parent[edits > 0])
        assert read_mask(out / r["lesion"]).shape == (32, 32) and r["lesion_estimated"] == "1"
        strip = read_image(out / "frames" / f"seed{int(r['seed']):06d}.png")
        assert strip.shape[1] == 5 * 64  # source, 3 steps, edit map
    meta = json.loads((out / "inpaint.json").read_text())
    assert meta["params"]["steps"] == 3 and meta["evaluations_per_image"] == 6 and meta["seconds_per_image"] > 0
    again = runner.invoke(app, ["inpaint", str(inpaint_run), "--from", str(tiny_data), "--out", str(out)])
    assert again.exit_code == 1 and "not empty" in again.output


def test_cli_inpaint_errors(tiny_data, tmp_path):
    dcgan = build_model("dcgan", tiny_config("dcgan").model)
    save_checkpoint(tmp_path / "ck", 1, {"family": "dcgan", "model": to_dict(dcgan.config)}, {"model": dcgan.state_dict()})
    res = runner.invoke(app, ["inpaint", str(tmp_path / "ck"), "--from", str(tiny_data), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "needs an inpainting model" in res.output and "RePaint" in res.output
    res = runner.invoke(app, ["inpaint", str(tmp_path / "ck"), "--from", str(tiny_data), "--out", str(tmp_path / "o"),
                              "--placement", "everywhere"])
    assert res.exit_code == 1 and "placement must be one of" in res.output and not (tmp_path / "o").exists()


def test_cli_inpaint_with_opencv_keeps_the_crops_size_and_scores_seams(tiny_data, tmp_path):
    from skingen.data.datasets import ManifestDataset
    from skingen.imageio import from_tensor

    out = tmp_path / "cv"
    res = runner.invoke(app, ["inpaint", "opencv:telea", "--from", f"{tiny_data}:val", "--n", "1", "--steps", "2",
                              "--out", str(out), "--cpu"])
    assert res.exit_code == 0, res.output
    assert "median seam score" in res.output
    with open(out / "manifest.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["model"] == "opencv-telea" and row["evaluations"] == "0" and float(row["seam_score"]) > 0
    parent = from_tensor(ManifestDataset(tiny_data, split="val")[0]["image"][None])[0]
    image, edits = read_image(out / row["image"]), read_image(out / row["edit_map"])
    assert image.shape == parent.shape                  # no resizing: the crop's own size
    assert np.array_equal(image[edits == 0], parent[edits == 0])


def test_inpaint_strip_script_puts_the_source_beside_each_folders_first_run(tiny_data, tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "inpaint_strip.py"
    spec = importlib.util.spec_from_file_location("inpaint_strip", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outs = [tmp_path / name for name in ("telea", "ns")]
    for backend, out in zip(("opencv:telea", "opencv:ns"), outs):
        res = runner.invoke(app, ["inpaint", backend, "--from", f"{tiny_data}:val", "--n", "2", "--runs", "2",
                                  "--steps", "2", "--out", str(out), "--cpu"])
        assert res.exit_code == 0, res.output
    sheet = module.strip(outs, n=8)  # 2 crops only: 2 rows
    with open(outs[1] / "manifest.csv", newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: int(r["seed"]))
    ns_first = read_image(outs[1] / rows[0]["image"])
    h, w = ns_first.shape[:2]
    assert sheet.shape[1] == 4 * w and sheet.shape[0] > 2 * h  # source, telea, ns, edit map; captions under each
    assert np.array_equal(sheet[:h, 2 * w:3 * w], ns_first)  # images at their own size, never resized
    frame = read_image(outs[0] / "frames" / rows[0]["image"])
    assert np.array_equal(sheet[:h, :w], frame[:h, :w])  # the source, first tile of the frame strip
    monkeypatch.setattr("sys.argv", ["inpaint_strip.py", str(outs[0] / "manifest.csv"), str(outs[0])])
    with pytest.raises(SystemExit, match="exists"):  # never overwrites a file
        module.main()
