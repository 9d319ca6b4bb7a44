"""Contract tests run over every registered model family (later families get them for free)."""

import dataclasses

import pytest
import torch

from skingen.checkpoint import save_checkpoint
from skingen.config import to_dict
from skingen.errors import SkingenError
from skingen.models.base import CONDITION_FIELDS, Condition, StepContext
from skingen.registry import build_model, load_model, models
from tests.conftest import tiny_config

FAMILIES = list(models())


def tiny_model(family: str):
    torch.manual_seed(0)
    return build_model(family, tiny_config(family).model)


def tiny_batch(n: int = 4, size: int = 16) -> dict:
    g = torch.Generator().manual_seed(1)
    return {"image": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
            "lesion": (torch.rand(n, 1, size, size, generator=g) > 0.7).float(),
            "coloured": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
            "label": torch.zeros(n, dtype=torch.long), "id": [str(i) for i in range(n)]}


def required_condition(model, seeds: list[int], size: int = 16) -> Condition | None:
    """The conditions ``model`` cannot sample without, row i drawn from seed ``seeds[i]`` (so rows do not
    depend on the batch)."""
    if not model.requires:
        return None
    shapes = {"lesion": 1, "keep": 1, "coloured": 3, "source": 3}
    fields = {}
    for field in sorted(model.requires):
        rows = [torch.rand(shapes[field], size, size, generator=torch.Generator().manual_seed(1000 + s)) for s in seeds]
        fields[field] = (torch.stack(rows) > 0.7).float() if shapes[field] == 1 else torch.stack(rows) * 2 - 1
    return Condition(**fields)


def draw(model, seeds: list[int]) -> torch.Tensor:
    return model.sample(seeds, required_condition(model, seeds))


def step_context(model, seed: int = 0) -> StepContext:
    return StepContext(optimizers=model.make_optimizers(), backward=lambda loss: loss.backward(),
                       generator=torch.Generator().manual_seed(seed), step=0, device=torch.device("cpu"))


@pytest.mark.parametrize("family", FAMILIES)
def test_train_step_losses_finite_and_every_network_learns(family):
    model = tiny_model(family)
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in model.networks().items()}
    losses = model.train_step(tiny_batch(), step_context(model))
    assert losses and all(k.startswith(("loss/", "D/")) for k in losses)
    assert any(k.startswith("loss/") for k in losses)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    for name, net in model.networks().items():
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), f"no gradient reached {name}"
        changed = [not torch.equal(a, b) for a, b in zip(before[name], net.parameters())]
        assert any(changed), f"optimizer did not update {name}"


@pytest.mark.parametrize("family", FAMILIES)
def test_sample_shape_range_and_seed_determinism(family):
    model = tiny_model(family)
    images = draw(model, [3, 5, 7])
    assert images.shape == (3, 3, 16, 16)
    assert torch.isfinite(images).all() and images.min() >= -1 and images.max() <= 1
    assert torch.equal(draw(model, [5]), draw(model, [5]))
    assert not torch.equal(images[0], images[1])


@pytest.mark.parametrize("family", FAMILIES)
def test_sample_is_independent_of_batch(family):
    model = tiny_model(family)
    torch.testing.assert_close(draw(model, [9])[0], draw(model, [1, 2, 9])[2], atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_save_load_gives_identical_samples(family, tmp_path):
    model = tiny_model(family)
    model.train_step(tiny_batch(), step_context(model))  # weights differ from a fresh init
    cfg = tiny_config(family)
    save_checkpoint(tmp_path, 1, {"family": family, "model": to_dict(model.config)}, {"model": model.state_dict()})
    loaded, ckpt = load_model(tmp_path, ema=False)
    assert ckpt["path"].name == "step-000001"
    assert torch.equal(draw(model, [0, 4]), draw(loaded, [0, 4]))
    assert dataclasses.asdict(loaded.config) == dataclasses.asdict(cfg.model)


@pytest.mark.parametrize("family", FAMILIES)
def test_unsupported_condition_or_option_is_a_clear_error(family):
    model = tiny_model(family)
    full = {"labels": torch.zeros(1, dtype=torch.long), "lesion": torch.zeros(1, 1, 16, 16),
            "coloured": torch.zeros(1, 3, 16, 16), "source": torch.zeros(1, 3, 16, 16), "keep": torch.ones(1, 1, 16, 16)}
    for field in CONDITION_FIELDS:
        if field not in model.supports:
            with pytest.raises(SkingenError, match=f"does not take condition '{field}'"):
                model.sample([0], Condition(**{field: full[field]}))
    with pytest.raises(SkingenError, match="no sampling option 'bogus'"):
        model.sample([0], required_condition(model, [0]), bogus=1)
    for field in model.requires:
        with pytest.raises(SkingenError, match=f"needs condition.*{field}"):
            model.sample([0])


def test_condition_validates_shapes():
    with pytest.raises(SkingenError, match=r"'lesion' must be \[N,1,H,W\]"):
        Condition(lesion=torch.zeros(2, 3, 8, 8))
    with pytest.raises(SkingenError, match="different batch sizes"):
        Condition(source=torch.zeros(2, 3, 8, 8), keep=torch.zeros(3, 1, 8, 8))
    with pytest.raises(SkingenError, match="integer tensor"):
        Condition(labels=torch.zeros(2))
