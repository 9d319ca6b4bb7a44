import pytest
import torch

from skingen.errors import SkingenError
from skingen.models.base import Condition
from skingen.nn.blocks import PatchDiscriminator
from skingen.registry import build_model
from tests.conftest import tiny_config
from tests.models.test_contract import step_context


def pairs(n: int = 4, size: int = 16):
    """n distinct (coloured mask, lesion, target image) triples: a lesion square in a different place and
    colour for each, and a target that is the coloured mask plus fixed texture."""
    g = torch.Generator().manual_seed(0)
    lesion = torch.zeros(n, 1, size, size)
    coloured = torch.empty(n, 3, size, size)
    for i in range(n):
        y, x = (i // 2) * size // 2, (i % 2) * size // 2
        lesion[i, :, y:y + size // 2, x:x + size // 2] = 1
        healthy, spot = torch.rand(3, 1, 1, generator=g) * 1.6 - 0.8, torch.rand(3, 1, 1, generator=g) * 1.6 - 0.8
        coloured[i] = torch.where(lesion[i] > 0, spot, healthy)
    images = (coloured + 0.15 * torch.randn(n, 3, size, size, generator=g)).clamp(-1, 1)
    return coloured, lesion, images


def test_overfit_l1_halves_and_each_output_is_nearest_its_own_target():
    torch.manual_seed(0)
    model = build_model("dermgan", tiny_config("dermgan", "model.diffaugment=[]", "model.d_layers=2").model)
    coloured, lesion, images = pairs()
    cond = Condition(coloured=coloured, lesion=lesion)
    seeds = [0, 1, 2, 3]

    def l1() -> float:
        return (model.sample(seeds, cond) - images).abs().mean().item()

    before = l1()
    ctx = step_context(model)
    batch = {"image": images, "lesion": lesion, "coloured": coloured}
    for _ in range(150):
        model.train_step(batch, ctx)
    after = l1()
    assert after < before / 2, (before, after)
    out = model.sample(seeds, cond)
    dist = (out[:, None] - images[None]).abs().mean((2, 3, 4))  # [output, target]
    assert torch.equal(dist.argmin(1), torch.arange(4)), dist


def test_seed_changes_the_image_under_one_condition():
    torch.manual_seed(0)
    model = build_model("dermgan", tiny_config("dermgan").model)
    coloured, lesion, _ = pairs(1)
    cond = Condition(coloured=coloured.repeat(2, 1, 1, 1), lesion=lesion.repeat(2, 1, 1, 1))
    a, b = model.sample([0, 1], cond)
    assert not torch.equal(a, b)
    torch.testing.assert_close(model.sample([1], Condition(coloured=coloured, lesion=lesion))[0], b, atol=1e-5, rtol=0)


def test_lesion_l1_counts_only_lesion_pixels():
    torch.manual_seed(0)
    model = build_model("dermgan", tiny_config("dermgan", "model.diffaugment=[]").model)
    coloured, lesion, images = pairs()
    # a target equal to the generator's output outside the lesion: every L1 error is a lesion error
    z = step_context(model).randn(4, model.config.latent)  # the first draw train_step makes from the same stream
    with torch.no_grad():
        fakes = model.generator(model.condition_tensor(coloured, lesion), z)
    target = torch.where(lesion > 0, images, fakes)
    stats = model.train_step({"image": target, "lesion": lesion, "coloured": coloured}, step_context(model))
    err = (fakes - target).abs()
    assert stats["loss/lesion_l1"] == pytest.approx((err * lesion).sum().item() / (3 * lesion.sum().item()), rel=1e-4)
    assert stats["loss/l1"] == pytest.approx(err.mean().item(), rel=1e-4)


def test_mode_seeking_term_is_reported_and_finite():
    torch.manual_seed(0)
    model = build_model("dermgan", tiny_config("dermgan", "model.diversity_weight=1.0").model)
    coloured, lesion, images = pairs()
    stats = model.train_step({"image": images, "lesion": lesion, "coloured": coloured}, step_context(model))
    assert 0 < stats["loss/mode_seeking"] < float("inf")


def test_config_and_data_errors():
    with pytest.raises(SkingenError, match="would change the condition"):
        build_model("dermgan", tiny_config("dermgan", "model.diffaugment=[color]").model)
    with pytest.raises(SkingenError, match="at least 32 px"):
        build_model("dermgan", tiny_config("dermgan", "model.d_layers=3", "model.size=16").model)
    model = build_model("dermgan", tiny_config("dermgan").model)
    with pytest.raises(SkingenError, match="prepare the data with --masks"):
        model.train_step({"image": torch.zeros(2, 3, 16, 16), "lesion": torch.zeros(2, 1, 16, 16)},
                         step_context(model))


def test_patch_discriminator_outputs_a_logit_per_patch():
    d = PatchDiscriminator(64, 7, 8, 64, layers=3)
    assert d(torch.zeros(2, 7, 64, 64)).shape == (2, 1, 6, 6)
