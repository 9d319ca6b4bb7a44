import torch

from skingen.nn.gan import d_loss, diff_augment
from skingen.registry import build_model
from tests.conftest import tiny_config
from tests.models.test_contract import step_context

RED = torch.tensor([0.8, -0.5, -0.4]).view(1, 3, 1, 1)


def reds(n: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (RED + 0.05 * torch.randn(n, 3, size, size, generator=g)).clamp(-1, 1)


def test_discriminator_separates_reals_from_fakes_after_d_steps():
    torch.manual_seed(0)
    model = build_model("dcgan", tiny_config("dcgan", "model.diffaugment=[]").model)
    D = model.discriminator
    opt = model.make_optimizers()["discriminator"]
    with torch.no_grad():
        fakes = model.generator(torch.randn(8, model.config.latent))
    reals = reds()
    for _ in range(60):
        loss = d_loss(D(reals), D(fakes), model.config.real_target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert torch.sigmoid(D(reals)).mean() > 0.75
        assert torch.sigmoid(D(fakes)).mean() < 0.25


def test_generator_steps_move_fake_colour_toward_the_data():
    torch.manual_seed(0)
    model = build_model("dcgan", tiny_config("dcgan", "model.diffaugment=[]").model)
    ctx = step_context(model)
    target = RED.flatten()

    def colour_gap() -> float:
        return (model.sample(list(range(16))).mean(dim=(0, 2, 3)) - target).norm().item()

    before = colour_gap()
    for i in range(80):
        model.train_step({"image": reds(seed=i)}, ctx)
    after = colour_gap()
    assert after < before / 2, (before, after)


def test_diffaugment_is_seeded_and_differentiable():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    policy = ("color", "translation", "cutout")
    a = diff_augment(x, policy, torch.Generator().manual_seed(3))
    b = diff_augment(x, policy, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, diff_augment(x, policy, torch.Generator().manual_seed(4)))
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # cutout zeroes a square of a quarter of the pixels (half the side); translation adds zero borders
    only_cutout = diff_augment(torch.ones(2, 3, 16, 16), ("cutout",), torch.Generator().manual_seed(0))
    zero_share = (only_cutout == 0).float().mean().item()
    assert 0.05 < zero_share <= 0.25
