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


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_weights_with_nan_are_refused_by_the_one_weights_reader(tmp_path, suffix):
    # issue 29: NaN tensors in `downstream --weights` trained a NaN network without a word
    import torch
    from safetensors.torch import save_file

    from skingen.nn.classifiers import ResNet18

    state = {k: v.clone() for k, v in ResNet18(2).net.state_dict().items()}
    state["conv1.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / f"resnet18{suffix}"
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save(state, path)
    with pytest.raises(SkingenError, match=r"resnet18.*not finite.*conv1.weight"):
        ResNet18(2, weights=path)


def test_a_weights_file_of_something_else_is_one_line(tmp_path):
    import torch

    from skingen.checkpoint import read_state_dict

    torch.save([1, 2, 3], tmp_path / "list.pt")
    (tmp_path / "text.pt").write_text("not weights")
    with pytest.raises(SkingenError, match="list.pt: not a ResNet-18 weights state dict"):
        read_state_dict(tmp_path / "list.pt", "ResNet-18 weights")
    with pytest.raises(SkingenError, match="text.pt: not a readable ResNet-18 weights file"):
        read_state_dict(tmp_path / "text.pt", "ResNet-18 weights")
    with pytest.raises(SkingenError, match="ResNet-18 weights file not found"):
        read_state_dict(tmp_path / "none.pt", "ResNet-18 weights")
