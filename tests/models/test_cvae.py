import torch

from skingen.errors import SkingenError
from skingen.models.base import Condition
from skingen.registry import build_model
from tests.conftest import tiny_config
from tests.models.test_contract import step_context


def four_images(size: int = 16) -> torch.Tensor:
    """Four distinct smooth images in [-1, 1]: gradients and blobs in different colours."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    return torch.stack([
        torch.stack([x, -x, 0 * x]), torch.stack([0 * y + 0.5, y, -y]),
        torch.stack([(x**2 + y**2 < 0.4).float() * 1.6 - 0.8] * 3), torch.stack([x * y, 0.3 + 0 * x, -0.6 + 0 * x]),
    ]).clamp(-1, 1)


def reconstruction_error(model, images: torch.Tensor) -> float:
    with torch.no_grad():
        mu, _ = model.vae.encode(images, None)
        return (model.vae.decode(mu, None) - images).pow(2).mean().item()


def test_cvae_overfits_four_images():
    torch.manual_seed(0)
    model = build_model("cvae", tiny_config("cvae", "model.beta=0.01").model)
    images = four_images()
    batch = {"image": images, "label": torch.zeros(4, dtype=torch.long)}
    ctx = step_context(model)
    before = reconstruction_error(model, images)
    for _ in range(150):
        model.train_step(batch, ctx)
    after = reconstruction_error(model, images)
    assert after < before / 3, (before, after)


def test_vary_a_real_image_stays_near_it_and_grows_with_strength():
    torch.manual_seed(0)
    model = build_model("cvae", tiny_config("cvae", "model.beta=0.01").model)
    images = four_images()
    ctx = step_context(model)
    for _ in range(150):
        model.train_step({"image": images, "label": torch.zeros(4, dtype=torch.long)}, ctx)
    seeds = [0, 1, 2, 3]
    src = Condition(source=images)
    zero = model.sample(seeds, src, strength=0.0)
    small = model.sample(seeds, src, strength=0.3)
    large = model.sample(seeds, src, strength=3.0)
    # strength 0 = the reconstruction, the same for every seed
    torch.testing.assert_close(zero[0], model.sample([7], Condition(source=images[:1]), strength=0.0)[0],
                               atol=1e-5, rtol=0)
    d_small = (small - zero).abs().mean().item()
    d_large = (large - zero).abs().mean().item()
    assert 0 < d_small < d_large
    # each variation is closer to its own parent than to the other parents
    dist = torch.cdist(small.flatten(1), images.flatten(1))
    assert torch.equal(dist.argmin(1), torch.arange(4))


def test_label_conditioning_changes_the_image_and_checks_range():
    model = build_model("cvae", tiny_config("cvae", "model.label_column=ita_category", "model.labels=[light,dark]").model)
    a = model.sample([0], Condition(labels=torch.tensor([0])))
    b = model.sample([0], Condition(labels=torch.tensor([1])))
    assert not torch.equal(a, b)
    with pytest_raises("label index out of range"):
        model.sample([0], Condition(labels=torch.tensor([2])))
    with pytest_raises("trained with labels"):
        model.sample([0])


def test_label_column_without_labels_is_an_error():
    with pytest_raises("labels is empty"):
        build_model("cvae", tiny_config("cvae", "model.label_column=label").model)


def pytest_raises(match: str):
    import pytest

    return pytest.raises(SkingenError, match=match)
