import pytest
import torch

from skingen.checkpoint import list_checkpoints, load_checkpoint, resolve_checkpoint, save_checkpoint
from skingen.errors import SkingenError


def _state(seed):
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(3, 4, generator=g), "b": torch.randn(4, generator=g)}


def test_roundtrip_and_latest(tmp_path):
    root = tmp_path / "checkpoints"
    state = {"step": 10, "rng": torch.get_rng_state(), "opt": {"lr": 0.1, "moments": [torch.ones(2)]}}
    save_checkpoint(root, 10, {"model": "dcgan", "size": 16}, {"model": _state(0), "ema": _state(1)}, state)
    save_checkpoint(root, 20, {"model": "dcgan", "size": 16}, {"model": _state(2)}, {"step": 20})
    ck = load_checkpoint(tmp_path)  # a run folder resolves to checkpoints/latest
    assert ck["path"].name == "step-000020" and ck["train_state"]["step"] == 20
    first = load_checkpoint(root / "step-000010")
    assert first["config"] == {"model": "dcgan", "size": 16}
    assert all(torch.equal(first["weights"]["ema"][k], _state(1)[k]) for k in ("w", "b"))
    assert torch.equal(first["train_state"]["rng"], state["rng"])


def test_keep_last_and_no_overwrite(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {}, {"model": _state(step)}, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-000002", "step-000003"]
    with pytest.raises(SkingenError, match="refusing to overwrite"):
        save_checkpoint(tmp_path, 3, {}, {"model": _state(0)})
    with pytest.raises(SkingenError, match="no checkpoint"):
        resolve_checkpoint(tmp_path / "nothing")


def test_train_state_rejects_pickled_objects(tmp_path):
    save_checkpoint(tmp_path, 1, {}, {"model": _state(0)}, {"step": 1})
    torch.save({"module": torch.nn.Linear(2, 2)}, tmp_path / "step-000001" / "train_state.pt")
    with pytest.raises(Exception):
        load_checkpoint(tmp_path / "step-000001")
