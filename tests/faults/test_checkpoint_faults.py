"""Damaged checkpoints: refused with one line naming the file, never silently sampled from."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from skingen.cli import app
from tests.faults.conftest import assert_one_line_error

runner = CliRunner()


def _latest(run):
    return sorted((run / "checkpoints").glob("step-*"))[-1]


def _rewrite(ckpt, change):
    """Re-save ``ckpt``'s weights after ``change(name, tensor) -> tensor``, with fresh checksums (as a
    trainer that produced such weights would), so only the content check can object."""
    import shutil

    from safetensors.torch import load_file

    from skingen.checkpoint import save_checkpoint

    config = json.loads((ckpt / "config.json").read_text())
    config.pop("sha256", None)
    weights = {p.stem: {k: change(k, v) for k, v in load_file(str(p)).items()} for p in ckpt.glob("*.safetensors")}
    root = ckpt.parent
    for old in root.glob("step-*"):
        shutil.rmtree(old)
    (root / "latest").unlink()
    save_checkpoint(root, config["step"], config, weights)


def test_random_bytes_inside_ema_weights_are_refused(run_copy, tmp_path):
    # before: exit 0 and all-black images
    ema = _latest(run_copy) / "ema.safetensors"
    data = bytearray(ema.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    ema.write_bytes(bytes(data))
    res = runner.invoke(app, ["sample", str(run_copy), "--out", str(tmp_path / "s"), "--n", "2"])
    assert_one_line_error(res, "ema.safetensors")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("damage", ["truncate", "delete"])
@pytest.mark.parametrize("command", ["sample", "info", "inpaint"])
def test_truncated_or_missing_weights_give_one_line(run_copy, tmp_path, tiny_data, command, damage):
    weights = _latest(run_copy) / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        weights.unlink()
    args = {"sample": ["sample", str(run_copy), "--out", str(tmp_path / "s"), "--n", "2"],
            "info": ["info", str(run_copy)],
            "inpaint": ["inpaint", str(run_copy), "--from", str(tiny_data), "--out", str(tmp_path / "i")]}[command]
    assert_one_line_error(runner.invoke(app, args), "model.safetensors")


@pytest.mark.parametrize("name", ["model.safetensors", "train_state.pt"])
def test_resume_names_the_previous_intact_checkpoint(run_copy, name):
    damaged = _latest(run_copy) / name
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    res = runner.invoke(app, ["train", "dcgan", "--resume", str(run_copy), "--set", "train.images=48", "--cpu"])
    line = assert_one_line_error(res, name, "step-000004")
    assert "step-000002" in line  # the intact predecessor, offered by name


def test_non_finite_weights_are_refused(run_copy, tmp_path):
    _rewrite(_latest(run_copy), lambda k, v: v.clone().fill_(float("nan")) if v.is_floating_point() and v.ndim > 1 else v)
    res = runner.invoke(app, ["sample", str(run_copy), "--out", str(tmp_path / "s"), "--n", "2"])
    assert_one_line_error(res, "not finite")


def test_a_constant_sample_set_is_a_warning(run_copy, tmp_path):
    _rewrite(_latest(run_copy), lambda k, v: v.clone().zero_() if v.is_floating_point() else v)
    res = runner.invoke(app, ["sample", str(run_copy), "--out", str(tmp_path / "s"), "--n", "3"])
    assert res.exit_code == 0, res.output
    assert "warning" in res.output and "constant" in res.output
    meta = json.loads((tmp_path / "s" / "sample.json").read_text())
    assert any("constant" in w for w in meta["warnings"])


def test_a_varied_sample_set_has_no_warning(trained_run, tmp_path):
    res = runner.invoke(app, ["sample", str(trained_run), "--out", str(tmp_path / "s"), "--n", "3"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "s" / "sample.json").read_text())["warnings"] == []


def test_checkpoint_records_a_sha256_of_every_tensor_file(trained_run):
    from skingen.runs import file_sha256

    ckpt = _latest(trained_run)
    recorded = json.loads((ckpt / "config.json").read_text())["sha256"]
    assert set(recorded) == {"model.safetensors", "ema.safetensors", "train_state.pt"}
    assert all(recorded[name] == file_sha256(ckpt / name) for name in recorded)


def test_the_offered_checkpoint_resumes(run_copy, tmp_path):
    damaged = _latest(run_copy)
    (damaged / "model.safetensors").write_bytes(b"")
    res = runner.invoke(app, ["train", "dcgan", "--resume", str(run_copy), "--set", "train.images=48", "--cpu"])
    assert_one_line_error(res, "move step-000004 out of")
    damaged.rename(tmp_path / damaged.name)  # what the message says to do
    res = runner.invoke(app, ["train", "dcgan", "--resume", str(run_copy), "--set", "train.images=48", "--cpu"])
    assert res.exit_code == 0, res.output
    assert "resumed from step-000002" in (run_copy / "log.txt").read_text()
    assert _latest(run_copy).name == "step-000006"
