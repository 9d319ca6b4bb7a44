"""``skingen tone``: a synthetic set of toned real crops that ``augment`` takes with its provenance."""

import json

import numpy as np
from typer.testing import CliRunner

from skingen.cli import app
from skingen.data.manifest import read_manifest
from skingen.data.masks import skin_mask
from skingen.downstream.augment import augment
from skingen.downstream.memgate import GateConfig
from skingen.imageio import read_image


def test_tone_writes_a_synthetic_set_that_augment_takes(tiny_data, tmp_path):
    out = tmp_path / "toned"
    res = CliRunner().invoke(app, ["tone", f"{tiny_data}:train", "--ita", "-30..0", "--out", str(out),
                                   "--per-image", "2", "--seed", "7"])
    assert res.exit_code == 0, res.output
    rows = read_manifest(out, required=("id", "image", "parent_id", "source_id", "seed", "target_ita", "ita"))
    info = json.loads((out / "tone.json").read_text())
    assert info["images"] == len(rows) > 0 and info["method"] == "melanin"
    sheet = (out / "DATASHEET.md").read_text()
    assert sheet.startswith("# Data sheet: toned\n") and "model: `tone-melanin`" in sheet
    parents = {r["id"]: r for r in read_manifest(tiny_data)}
    for r in rows:
        parent = parents[r["parent_id"]]
        assert parent["split"] == "train" and r["source_id"] == parent["source_id"] and r["origin"] == "synthetic"
        assert -30 <= float(r["target_ita"]) <= 0 and int(r["seed"]) >= 7
        src, toned = read_image(tiny_data / parent["image"]), read_image(out / r["image"])
        keep = ~skin_mask(src)
        assert np.array_equal(toned[keep], src[keep])  # every non-skin pixel bit-exact
        assert not np.array_equal(toned, src)
    again = CliRunner().invoke(app, ["tone", f"{tiny_data}:train", "--ita", "-30..0", "--out", str(tmp_path / "b"),
                                     "--per-image", "2", "--seed", "7"])
    assert again.exit_code == 0
    assert all((tmp_path / "b" / r["image"]).read_bytes() == (out / r["image"]).read_bytes() for r in rows)  # seeded

    report = augment(tiny_data, [str(out)], tmp_path / "aug", gate=GateConfig(features=("pixels:64",)))
    synth = [r for r in read_manifest(tmp_path / "aug") if r["origin"] == "synthetic"]
    assert len(synth) == len(rows) == sum(report.synthetic.values())  # near their own parents: none dropped
    assert report.memorised[out.name]["flagged"] == 0
    assert {r["parent_id"] for r in synth} == {r["parent_id"] for r in rows}
    assert {r["model"] for r in synth} == {"tone-melanin"} and all(r["split"] == "train" for r in synth)


def test_tone_refuses_bad_options_in_one_line(tiny_data, tmp_path):
    bad = CliRunner().invoke(app, ["tone", str(tiny_data), "--ita", "10..-10", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "MIN..MAX" in bad.output
    meth = CliRunner().invoke(app, ["tone", str(tiny_data), "--ita", "-10..0", "--method", "hsv",
                                    "--out", str(tmp_path / "y")])
    assert meth.exit_code == 1 and "--method" in meth.output
    assert not (tmp_path / "y").exists()
