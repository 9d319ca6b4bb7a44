import json

import pytest
import torch
from safetensors.torch import load_file

from skingen.checkpoint import list_checkpoints
from skingen.errors import SkingenError
from skingen.registry import load_model
from skingen.runs import read_jsonl
from skingen.train.loop import EpochBatches, resolve_config, resume, train
from tests.conftest import tiny_config

# 4 steps of 8 images per half; a checkpoint every 2 steps
FAST = ("train.batch=8", "train.tick=16", "train.snapshot=16", "train.grid=4", "train.keep_last=2")


def tiny_run(family, data, outdir, images, *extra):
    return train(family, data, tiny_config(family, f"train.images={images}", *FAST, *extra), outdir=outdir, cpu=True)


def weights(run, name):
    return load_file(str(list_checkpoints(run / "checkpoints")[-1] / f"{name}.safetensors"))


@pytest.mark.parametrize("family", ["dcgan", "cvae", "dermdiff", "inpaint"])
def test_resume_continues_exactly(family, tiny_data, tmp_path):
    straight = tiny_run(family, tiny_data, tmp_path / "a", 64)
    halves = tiny_run(family, tiny_data, tmp_path / "b", 32)
    resume(halves, images=64, cpu=True)
    for name in ("model", "ema"):
        a, b = weights(straight, name), weights(halves, name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}.{k} differs after resume"
    sa, sb = read_jsonl(straight / "stats.jsonl"), read_jsonl(halves / "stats.jsonl")
    assert [r["images"] for r in sa] == [r["images"] for r in sb] == [16, 32, 48, 64]
    for ra, rb in zip(sa, sb):
        assert {k: v for k, v in ra.items() if k.startswith("loss/")} == {k: v for k, v in rb.items() if k.startswith("loss/")}


def test_run_folder_contents(tiny_data, tmp_path):
    run = tiny_run("dcgan", tiny_data, tmp_path, 48)
    assert run.parent == tmp_path and run.name.startswith("00000-dcgan-")
    for f in ("config.yaml", "env.json", "log.txt", "stats.jsonl", "samples/reals.png", "samples/000000048.png"):
        assert (run / f).is_file(), f
    env = json.loads((run / "env.json").read_text())
    assert len(env["data_manifest_sha256"]) == 64 and "torch" in env["versions"]
    ckpts = list_checkpoints(run / "checkpoints")
    assert [c.name for c in ckpts] == ["step-000004", "step-000006"]  # keep_last=2 of 2, 4, 6
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-000006"
    assert len(read_jsonl(run / "stats.jsonl")) == 3
    model, ckpt = load_model(run)  # rebuilt from config.json alone
    assert model.config.size == 16 and ckpt["config"]["data_labels"] == ["exanthem"]
    # a second run never reuses the folder
    assert tiny_run("dcgan", tiny_data, tmp_path, 16).name.startswith("00001-")


def test_resume_drops_stats_written_after_the_checkpoint(tiny_data, tmp_path):
    run = tiny_run("cvae", tiny_data, tmp_path, 32)
    with open(run / "stats.jsonl", "a") as fh:  # a tick that happened before a crash, after the last checkpoint
        fh.write(json.dumps({"images": 40, "step": 5, "loss/total": 1.0}) + "\n")
    resume(run, images=48, cpu=True)
    assert [r["images"] for r in read_jsonl(run / "stats.jsonl")] == [16, 32, 48]


def test_resume_errors(tiny_data, tmp_path):
    run = tiny_run("cvae", tiny_data, tmp_path, 16)
    with pytest.raises(SkingenError, match="already seen 16 images"):
        resume(run, cpu=True)
    with pytest.raises(SkingenError, match="not a run folder"):
        resume(tmp_path / "nothing", cpu=True)


def test_label_conditioning_learns_classes_from_the_data(tiny_data, tmp_path):
    run = tiny_run("cvae", tiny_data, tmp_path, 16, "model.label_column=split")
    model, _ = load_model(run)
    assert model.config.labels == ("test", "train", "val")  # every split's values, sorted


def test_config_errors():
    with pytest.raises(SkingenError, match="unknown config key 'train.epochs'"):
        resolve_config("dcgan", None, ["train.epochs=3"])
    with pytest.raises(SkingenError, match="mixed_precision"):
        resolve_config("cvae", None, ["train.mixed_precision=fp8"])
    with pytest.raises(SkingenError, match="unknown model 'gan'"):
        resolve_config("gan")
    with pytest.raises(SkingenError, match="power of two"):
        from skingen.registry import build_model

        build_model("dcgan", resolve_config("dcgan", None, ["model.size=48"]).model)


def test_epoch_batches_are_a_pure_function_of_seed_and_position():
    full = EpochBatches(10, 3, seed=0)
    it = iter(full)
    first = [next(it) for _ in range(7)]  # 3 batches per epoch (one image left out per epoch)
    assert all(len(b) == 3 for b in first)
    assert len(set(sum(first[:3], []))) == 9  # no repeats inside an epoch
    later = iter(EpochBatches(10, 3, seed=0, start=4))
    assert [next(later) for _ in range(3)] == first[4:7]
    assert next(iter(EpochBatches(10, 3, seed=1))) != first[0]
    with pytest.raises(SkingenError, match="fewer than train.batch"):
        EpochBatches(2, 3, seed=0)


def test_minutes_stops_with_a_checkpoint_that_resumes_exactly(tiny_data, tmp_path):
    straight = tiny_run("inpaint", tiny_data, tmp_path / "a", 32)
    # a deadline that has passed after the first step: that step is checkpointed and the run stops there
    cut = train("inpaint", tiny_data, tiny_config("inpaint", "train.images=32", *FAST), outdir=tmp_path / "b",
                cpu=True, minutes=1e-6)
    assert [c.name for c in list_checkpoints(cut / "checkpoints")] == ["step-000001"]
    assert "continue with --resume" in (cut / "log.txt").read_text()
    resume(cut, cpu=True)
    for name in ("model", "ema"):
        a, b = weights(straight, name), weights(cut, name)
        assert all(torch.equal(a[k], b[k]) for k in a), name
    with pytest.raises(SkingenError, match="--minutes must be positive"):
        train("inpaint", tiny_data, tiny_config("inpaint", *FAST), outdir=tmp_path / "c", cpu=True, minutes=0)


def test_spawned_loader_workers_train_the_same_weights(tiny_data, tmp_path):
    """``train.workers=1`` loads batches in a spawned process (skingen.workers): same batches, same weights."""
    inline = tiny_run("dcgan", tiny_data, tmp_path / "a", 32, "train.cache=false")
    spawned = tiny_run("dcgan", tiny_data, tmp_path / "b", 32, "train.workers=1", "train.cache=false")
    a, b = weights(inline, "model"), weights(spawned, "model")
    assert all(torch.equal(a[k], b[k]) for k in a)
