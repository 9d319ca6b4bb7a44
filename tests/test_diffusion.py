import pytest
import torch

from skingen.diffusion import Diffusion, guided, repaint, repaint_evaluations
from skingen.errors import SkingenError


def images(n: int = 3, size: int = 8) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("prediction", ["v_prediction", "epsilon"])
def test_round_trip_x0_to_noisy_to_x0(prediction):
    d = Diffusion(prediction=prediction)
    x0 = images()
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0, 400, 900])
    noisy = d.add_noise(x0, noise, t)
    target = d.target(x0, noise, t)   # what a perfect network outputs
    assert torch.allclose(d.to_x0(target, noisy, t), x0, atol=1e-5)
    assert torch.allclose(d.to_eps(target, noisy, t), noise, atol=1e-5)


def oracle(d: Diffusion, x0: torch.Tensor):
    """A network that knows the clean image: its output is the exact ε or v for ``x0`` at (x_t, t)."""
    def net(x_in: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x_t = x_in[:, :3]
        ab = d.scheduler.alphas_cumprod[t.long()].view(-1, 1, 1, 1) if t.ndim else d.scheduler.alphas_cumprod[int(t)]
        eps = (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()
        return eps if d.prediction == "epsilon" else ab.sqrt() * eps - (1 - ab).sqrt() * x0
    return net


# not ε with 1 step: its only x0 estimate is taken at ᾱ ≈ 4e-9, where float32 rounding of ε is multiplied by
# 1/√ᾱ ≈ 1.6e4 (measured 7e-3 off) — the amplification the Diffusion docstring describes
@pytest.mark.parametrize("prediction,steps", [("v_prediction", 1), ("v_prediction", 5), ("v_prediction", 20),
                                              ("epsilon", 5), ("epsilon", 20)])
def test_dpm_solver_on_an_oracle_returns_its_x0(prediction, steps):
    d = Diffusion(prediction=prediction, clip_x0=prediction == "epsilon")
    x0 = images() * 0.9
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(2))
    out = d.sample(oracle(d, x0), noise, torch.zeros(3, 1, 8, 8), steps)
    assert (out - x0).abs().max() < 1e-5


@pytest.mark.parametrize("prediction", ["v_prediction", "epsilon"])
def test_from_x0_inverts_to_x0(prediction):
    d = Diffusion(prediction=prediction)
    x0, x_t = images(), images() * 0.5
    t = torch.tensor([3, 400, 900])
    assert torch.allclose(d.to_x0(d.from_x0(x0, x_t, t), x_t, t), x0, atol=1e-5)


def test_known_pixels_follow_the_noised_source_at_every_step():
    """With ``known``, the solver's kept pixels are √ᾱ·source + √(1−ᾱ)·noise at every step even for a network
    that estimates them wrong (here: x0 = 0 everywhere); without it they follow the network."""
    d = Diffusion()
    src = images(2) * 0.9
    keep = torch.ones(2, 1, 8, 8)
    keep[..., 2:6, 2:6] = 0
    noise = torch.randn(src.shape, generator=torch.Generator().manual_seed(3))
    seen = []

    def zero_x0(x_in, t):   # v for x0 = 0: v = √ᾱ·ε = √ᾱ·x_t / √(1−ᾱ)
        seen.append((x_in[:, :3].clone(), t))
        ab = d.scheduler.alphas_cumprod[int(t)]
        return ab.sqrt() * x_in[:, :3] / (1 - ab).sqrt()

    d.sample(zero_x0, noise, torch.zeros(2, 1, 8, 8), 5, known=(src, keep))
    kept = keep.expand_as(src) > 0.5
    for x, t in seen:
        expected = d.add_noise(src, noise, t.long().view(1).expand(2))
        assert torch.allclose(x[kept], expected[kept], atol=1e-4)
    seen.clear()
    d.sample(zero_x0, noise, torch.zeros(2, 1, 8, 8), 5)
    x, t = seen[-1]
    assert not torch.allclose(x[kept], d.add_noise(src, noise, t.long().view(1).expand(2))[kept], atol=1e-2)


def test_guidance_combines_the_two_passes_and_w1_is_one_pass():
    calls = []

    def net(x_in, t):
        calls.append(len(x_in))
        return x_in[:, :3] + 2 * x_in[:, 3:4]   # conditional output = x + 2c, null output = x

    x, c = images(2), torch.ones(2, 1, 8, 8)
    assert torch.equal(guided(net, x, torch.tensor(5), c, 1.0), x + 2) and calls == [2]
    # out_null + w (out_cond - out_null) = x + 3 * 2, in one batched pass of 2N rows
    assert torch.allclose(guided(net, x, torch.tensor(5), c, 3.0), x + 6) and calls == [2, 4]


def test_min_snr_weights_equal_the_hand_formula():
    d = Diffusion(prediction="epsilon", snr_gamma=5.0)
    t = torch.tensor([10, 500, 990])
    ab = d.scheduler.alphas_cumprod[t]
    snr = ab / (1 - ab)
    se = torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(d.loss(se, t), (se * snr.clamp(max=5) / snr).mean())
    v = Diffusion(prediction="v_prediction", snr_gamma=5.0)
    assert torch.allclose(v.loss(se, t), (se * snr.clamp(max=5) / (snr + 1)).mean())
    assert torch.equal(Diffusion().loss(se, t), se.mean())


def test_repaint_keeps_pixels_and_repeats_per_seed():
    net = lambda x, t: torch.zeros_like(x)   # noqa: E731 - "no noise here": a constant ε network
    src = images(2)
    keep = torch.ones(2, 1, 8, 8)
    keep[..., 2:6, 2:6] = 0
    gens = lambda: [torch.Generator().manual_seed(s) for s in (4, 5)]  # noqa: E731
    a = repaint(net, src, keep, gens(), steps=6, jump_length=2, jump_n_sample=2)
    b = repaint(net, src, keep, gens(), steps=6, jump_length=2, jump_n_sample=2)
    assert torch.equal(a, b)
    assert torch.equal(a[keep.expand_as(a) > 0.5], src[keep.expand_as(src) > 0.5])
    assert not torch.equal(a[0], a[1])
    # jumps back cost no evaluation: 6 steps, each 2-step stretch redone once -> more than 6, fewer than 12 + 6
    assert 6 < repaint_evaluations(None, 6, 2, 2) <= 12


@pytest.mark.parametrize("bad,message", [({"prediction": "sample"}, "prediction must be one of"),
                                          ({"beta_schedule": "cosine"}, "beta_schedule must be one of"),
                                          ({"snr_gamma": -1.0}, "snr_gamma must be"),
                                          ({"timesteps": 1}, "timesteps must be")])
def test_bad_settings_are_one_line_errors(bad, message):
    with pytest.raises(SkingenError, match=message):
        Diffusion(**bad)
