import pytest
import torch

from skingen.errors import SkingenError
from skingen.models.base import Condition
from skingen.registry import build_model
from tests.conftest import tiny_config
from tests.models.test_contract import step_context


def tiny_dermdiff(*overrides: str):
    torch.manual_seed(0)
    return build_model("dermdiff", tiny_config("dermdiff", *overrides).model)


def four_pairs(size: int = 16) -> dict:
    """Four (image, coloured mask, lesion) pairs: a red disc at a different place on a different skin
    tone each, the image being its coloured mask plus a skin texture."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    centres = [(-0.4, -0.4), (0.4, 0.3), (0.0, 0.0), (-0.3, 0.5)]
    skins = torch.tensor([[0.6, 0.2, 0.0], [0.3, -0.1, -0.3], [0.8, 0.5, 0.3], [0.1, -0.3, -0.5]])
    lesion = torch.stack([((x - cx) ** 2 + (y - cy) ** 2 < 0.15).float() for cx, cy in centres])[:, None]
    red = torch.tensor([0.7, -0.5, -0.4]).view(1, 3, 1, 1)
    coloured = lesion * red + (1 - lesion) * skins.view(4, 3, 1, 1)
    texture = 0.15 * torch.sin(6 * x + 3 * y)
    return {"image": (coloured + texture).clamp(-1, 1), "coloured": coloured, "lesion": lesion}


def plain_conditional_sampling(model, seeds, coloured, lesion, steps):
    """The textbook loop: DPM-Solver++ on the network fed the noisy image and the condition channels."""
    solver = model.diffusion.solver(steps)
    size = model.config.size
    x = torch.stack([torch.randn(3, size, size, generator=torch.Generator().manual_seed(s)) for s in seeds])
    cond = torch.cat([coloured, lesion, torch.ones_like(lesion)], 1)
    for t in solver.timesteps:
        x = solver.step(model.unet(torch.cat([x, cond], 1), t).sample, t, x).prev_sample
    return x.clamp(-1, 1)


@pytest.mark.parametrize("prediction", ["v_prediction", "epsilon"])
def test_eps_loss_at_fixed_timesteps_drops_when_overfitting_four_pairs(prediction):
    model = tiny_dermdiff(f"model.prediction={prediction}")
    pairs = four_pairs()
    cond = Condition(coloured=pairs["coloured"], lesion=pairs["lesion"])

    def sampled_error() -> float:  # each pair's image painted from its own masks, against the truth
        return (model.sample([0, 1, 2, 3], cond, guidance=1) - pairs["image"]).pow(2).mean().item()

    before, sampled_before = model.loss_at(pairs["image"], pairs["coloured"], pairs["lesion"]), sampled_error()
    ctx = step_context(model)
    for _ in range(40):
        model.train_step(pairs, ctx)
    after = model.loss_at(pairs["image"], pairs["coloured"], pairs["lesion"])
    assert after < 0.7 * before, (before, after)
    # the solver turns the learnt predictions into images (ε-prediction needs clip_x0, on by default)
    assert sampled_error() < 0.6 * sampled_before


def test_guidance_one_is_plain_conditional_sampling_and_seeds_repeat():
    model = tiny_dermdiff()
    pairs = four_pairs()
    model.train_step(pairs, step_context(model))  # any weights but the initial ones
    cond = Condition(coloured=pairs["coloured"], lesion=pairs["lesion"])
    seeds = [3, 4, 5, 6]
    plain = model.sample(seeds, cond, guidance=1, solver_steps=3)
    with torch.no_grad():
        assert torch.equal(plain, plain_conditional_sampling(model, seeds, pairs["coloured"], pairs["lesion"], 3))
    assert torch.equal(model.sample(seeds, cond, guidance=2.5), model.sample(seeds, cond, guidance=2.5))
    guided = model.sample(seeds, cond, guidance=2.5, solver_steps=3)
    assert guided.shape == plain.shape and not torch.allclose(guided, plain, atol=1e-3)
    # w = 0 keeps only the null branch: unconditional sampling (batched with the conditional pass here)
    torch.testing.assert_close(model.sample(seeds, cond, guidance=0, solver_steps=3),
                               model.sample(seeds, solver_steps=3), atol=1e-5, rtol=0)


def test_cond_drop_feeds_the_null_condition_with_a_fixed_number_of_draws():
    pairs = four_pairs()
    seen, generators = {}, {}
    for drop in (0.0, 0.999):
        model = tiny_dermdiff(f"model.cond_drop={drop}")
        model.unet.conv_in.register_forward_pre_hook(lambda m, args: seen.__setitem__(drop, args[0][:, 3:].clone()))
        ctx = step_context(model)
        model.train_step(pairs, ctx)
        generators[drop] = ctx.generator.get_state()
    assert torch.equal(seen[0.0], model.condition_channels(pairs["coloured"], pairs["lesion"]))
    assert torch.equal(seen[0.999], torch.zeros_like(seen[0.0]))
    assert torch.equal(generators[0.0], generators[0.999])  # resume stays exact whatever cond_drop is


def test_snr_gamma_reweights_the_loss_only():
    pairs = four_pairs()
    plain_model, snr_model = tiny_dermdiff(), tiny_dermdiff("model.snr_gamma=5")
    plain = plain_model.train_step(pairs, step_context(plain_model))
    snr = snr_model.train_step(pairs, step_context(snr_model))
    assert plain["loss/diffusion"] == pytest.approx(plain["loss/mse"], rel=1e-6)
    assert snr["loss/mse"] == pytest.approx(plain["loss/mse"], rel=1e-5)  # same init, same draws
    assert snr["loss/diffusion"] != pytest.approx(snr["loss/mse"], rel=1e-3)


def test_missing_masks_and_bad_config_are_clear_errors():
    model = tiny_dermdiff()
    pairs = four_pairs()
    with pytest.raises(SkingenError, match="both a coloured mask and a lesion mask"):
        model.sample([0], Condition(coloured=pairs["coloured"][:1]))
    no_masks = {"image": pairs["image"], "lesion": torch.zeros_like(pairs["lesion"])}
    with pytest.raises(SkingenError, match="--auto-mask"):
        model.condition_from_batch(no_masks)
    with pytest.raises(SkingenError, match="--auto-mask"):
        model.train_step(no_masks, step_context(model))
    assert model.condition_from_batch(pairs).coloured is pairs["coloured"]
    with pytest.raises(SkingenError, match="solver_steps must be at least 1"):
        model.sample([0], solver_steps=0)
    for bad, message in [("model.prediction=sample", "prediction must be one of"),
                         ("model.beta_schedule=cosine", "beta_schedule must be one of"),
                         ("model.cond_drop=1", r"cond_drop must be in \[0, 1\)")]:
        with pytest.raises(SkingenError, match=message):
            tiny_dermdiff(bad)
