import pytest
import torch

from skingen.errors import SkingenError
from skingen.inpaint.iterative import IterativeParams, run_iterative
from skingen.models.base import Condition
from skingen.registry import build_model
from tests.conftest import tiny_config
from tests.models.test_contract import step_context
from tests.models.test_cvae import four_images


def tiny_inpaint_model(*overrides: str):
    torch.manual_seed(0)
    return build_model("inpaint", tiny_config("inpaint", *overrides).model)


def centre_keep(n: int, size: int = 16) -> torch.Tensor:
    keep = torch.ones(n, 1, size, size)
    keep[..., 4:12, 4:12] = 0
    return keep


def test_masked_region_loss_drops_and_sampling_inpaints_four_images():
    model = tiny_inpaint_model()
    images = four_images()
    keep = centre_keep(4)

    def sampled_error() -> float:  # the solver's inpainting of the centres against the truth
        out = model.fill(images, keep, [torch.Generator().manual_seed(i) for i in range(4)])
        return (out - images)[..., 4:12, 4:12].pow(2).mean().item()

    before, sampled_before = model.region_loss(images, keep), sampled_error()
    ctx = step_context(model)
    for _ in range(40):
        model.train_step({"image": images}, ctx)
    after = model.region_loss(images, keep)
    assert after < 0.7 * before, (before, after)
    # the few-step solver turns the learnt predictions into images (an ε-prediction model did not: noise)
    assert sampled_error() < 0.6 * sampled_before


def test_kept_pixels_are_exact_and_keep_everywhere_returns_the_source():
    model = tiny_inpaint_model()
    src = four_images()
    keep = centre_keep(4)
    out = model.sample([0, 1, 2, 3], Condition(source=src, keep=keep))
    kept = keep.bool().expand_as(src)
    assert torch.equal(out[kept], src[kept]) and not torch.equal(out[~kept], src[~kept])
    assert torch.equal(model.sample([5, 6, 7, 8], Condition(source=src, keep=torch.ones(4, 1, 16, 16))), src)


def test_fill_works_on_windows_and_checks_their_size():
    model = tiny_inpaint_model()
    src = four_images()[:, :, :8, :8]
    keep = torch.ones(4, 1, 8, 8)
    keep[..., 2:6, 2:6] = 0
    gens = [torch.Generator().manual_seed(s) for s in range(4)]
    out = model.fill(src, keep, gens, solver_steps=2)
    assert out.shape == src.shape and torch.isfinite(out).all()
    with pytest.raises(SkingenError, match="not a multiple of 2"):
        model.fill(src[..., :7, :7], keep[..., :7, :7], gens)


def test_source_alone_runs_the_iterative_algorithm():
    model = tiny_inpaint_model()
    src = four_images()[:2]
    out = model.sample([3, 4], Condition(source=src))
    runs = run_iterative(model.region_filler(), src, [3, 4], IterativeParams())
    assert torch.equal(out, torch.stack([r.image for r in runs]))
    assert runs[0].evaluations == 10 * model.config.solver_steps
    assert not torch.equal(out[0], src[0])
    with pytest.raises(SkingenError, match="needs a 'source'"):
        model.sample([0], Condition(keep=torch.ones(1, 1, 16, 16)))


def test_bad_config_is_a_clear_error():
    with pytest.raises(SkingenError, match="region_shapes"):
        tiny_inpaint_model("model.region_shapes=[circle]")
    with pytest.raises(SkingenError, match="region_min <= region_max"):
        tiny_inpaint_model("model.region_min=0.6", "model.region_max=0.5")


def test_kept_weight_zero_trains_on_the_region_only():
    model = tiny_inpaint_model("model.kept_weight=0")
    losses = model.train_step({"image": four_images()}, step_context(model))
    assert losses["loss/diffusion"] == pytest.approx(losses["loss/region"], rel=1e-5)
    plain_model = tiny_inpaint_model("model.kept_weight=1")
    plain = plain_model.train_step({"image": four_images()}, step_context(plain_model))
    assert plain["loss/diffusion"] != pytest.approx(plain["loss/region"], rel=1e-3)
