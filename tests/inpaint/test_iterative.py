"""The iterative algorithm with oracle denoisers (no network): exact bookkeeping, windows, seeds."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skingen.errors import SkingenError
from skingen.inpaint.iterative import RegionFiller, IterativeParams, derive_lesion, run_iterative, step_generator
from skingen.inpaint.regions import edit_counts
from tests.conftest import rgb_noise


def local_mean(radius: int = 2, noise: float = 0.0) -> RegionFiller:
    """Fills each pixel with the mean of the kept pixels within ``radius`` (0 where there are none), plus
    ``noise`` × normal noise from the row's generator: a local, optionally random denoiser."""
    def fill(source, keep, generators):
        k = torch.ones(3, 1, 2 * radius + 1, 2 * radius + 1, dtype=source.dtype)
        num = F.conv2d(source * keep, k, padding=radius, groups=3)
        den = F.conv2d(keep.expand(-1, 3, -1, -1), k, padding=radius, groups=3)
        out = torch.where(den > 0, num / den.clamp(min=1), torch.zeros_like(num))
        if noise:
            out = out + noise * torch.stack([torch.randn(source.shape[1:], generator=g) for g in generators])
        return out
    return RegionFiller(fill)


def sources(n: int = 3, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(5)) * 2 - 1


def test_kept_pixels_are_bit_for_bit_unchanged():
    garbage = RegionFiller(lambda s, k, g: torch.full_like(s, 7.0) + s.sum())  # ignores keep entirely
    src = sources()
    for run in run_iterative(garbage, src, [0, 1, 2], IterativeParams(steps=6, shape="mixed", size=0.3)):
        for k, region in enumerate(run.regions):
            outside = ~region.paint(32)
            assert torch.equal(run.frames[k + 1][:, outside], run.frames[k][:, outside])
        untouched = run.edit_map == 0
        assert torch.equal(run.image[:, untouched], run.frames[0][:, untouched])
        assert untouched.any() and run.image.max() <= 1  # repainted pixels clipped to the image range


def test_edit_map_counts_every_repaint():
    """An oracle that adds 0.01 wherever it paints: the image then records how often each pixel changed."""
    plus = RegionFiller(lambda s, k, g: s + 0.01)
    src = torch.full((2, 3, 32, 32), -0.9)
    runs = run_iterative(plus, src, [3, 4], IterativeParams(steps=12, size=0.4, placement="random", context=1.5, feather=0))
    for run, s in zip(runs, src):
        painted = ((run.image[0] - s[0]) / 0.01).round().int()
        assert torch.equal(painted, run.edit_map)
        assert torch.equal(run.edit_map, edit_counts(run.regions, 32))
        assert int(run.edit_map.max()) >= 2  # random placement repaints some pixels twice or more


def test_window_as_large_as_the_image_equals_the_plain_path():
    noisy = local_mean(noise=0.3)
    src = sources(2)
    plain = run_iterative(noisy, src, [0, 9], IterativeParams(steps=5, context=None, feather=0))
    whole = run_iterative(noisy, src, [0, 9], IterativeParams(steps=5, context=50.0, feather=0))
    by_hand = src.clone()  # the plain path written out: repaint each region of the whole image in turn
    for i, run in enumerate(plain):
        for k, region in enumerate(run.regions):
            keep = ~region.paint(32)
            out = noisy.fill(by_hand[i:i + 1], keep[None, None].float(), [step_generator(run.seed, k)])[0]
            by_hand[i] = torch.where(keep, by_hand[i], out.clamp(-1, 1))
    for a, b, h in zip(plain, whole, by_hand):
        assert torch.equal(a.image, b.image) and torch.equal(a.image, h)
        assert a.pixels == 5 * 32 * 32 == b.pixels


def test_context_window_equals_whole_image_for_a_local_denoiser_and_costs_less():
    local = local_mean(radius=2)
    src = sources(3)
    params = IterativeParams(steps=6, size=8, shape="mixed")
    whole = run_iterative(local, src, [1, 2, 3], IterativeParams(**{**params.to_dict(), "context": None}))
    windowed = run_iterative(local, src, [1, 2, 3], params)
    for a, b in zip(whole, windowed):
        torch.testing.assert_close(a.image, b.image, atol=1e-6, rtol=0)
        assert b.pixels == 6 * 16 * 16 < a.pixels


def test_seeds_decide_the_output_not_the_batch():
    noisy = local_mean(noise=0.3)
    src = sources(1).repeat(3, 1, 1, 1)
    together = run_iterative(noisy, src, [10, 11, 12], IterativeParams(steps=4), batch=2)
    alone = run_iterative(noisy, src[:1], [11], IterativeParams(steps=4))
    assert torch.equal(together[1].image, alone[0].image)
    again = run_iterative(noisy, src[:1], [11], IterativeParams(steps=4))
    assert torch.equal(again[0].image, alone[0].image)
    assert not torch.equal(together[0].image, together[1].image)  # different run seeds, different images
    assert [r.describe() for r in together[0].regions] != [r.describe() for r in together[1].regions]


def test_frames_costs_and_early_end():
    runs = run_iterative(local_mean(), sources(2), [0, 1], IterativeParams(steps=20, size=0.5, coverage=0.5))
    for run in runs:
        assert len(run.frames) == len(run.regions) + 1 < 21 and run.coverage >= 0.5
        assert run.evaluations == len(run.regions)


def test_frames_of_large_crops_are_shrunk_but_source_and_image_are_whole():
    # issue 29: a 4096 px crop kept 11 full-size float frames (2.2 GB) and drew a 49,152 px wide strip
    from skingen.inpaint.iterative import FRAME_SIDE

    src = torch.rand(1, 3, FRAME_SIDE + 88, FRAME_SIDE + 88) * 2 - 1
    (run,) = run_iterative(local_mean(), src, [0], IterativeParams(steps=3, size=0.25))
    assert all(f.shape == (3, FRAME_SIDE, FRAME_SIDE) for f in run.frames) and len(run.frames) == 4
    assert torch.equal(run.source, src[0]) and run.image.shape == src[0].shape
    outside = ~torch.from_numpy(run.edit_map.numpy() > 0)
    assert torch.equal(run.image[:, outside], src[0][:, outside])  # kept pixels are the source's, at full size


def test_bad_parameters_are_clear_errors():
    with pytest.raises(SkingenError, match="region shape must be one of"):
        IterativeParams(shape="circle")
    with pytest.raises(SkingenError, match="'context' must be >= 1 and <= 1000, got 0.5"):
        IterativeParams(context=0.5)
    for feather in (float("nan"), 0.75):  # NaN painted black; a fade longer than half the side never reaches 1
        with pytest.raises(SkingenError, match="feather"):
            IterativeParams(feather=feather)
    with pytest.raises(SkingenError, match="feather 1e\\+09 px is more than half the 12 px region side"):
        IterativeParams(feather=1e9, size=12).plan(64, 0)  # it returned the sources unchanged
    with pytest.raises(SkingenError, match="2 sources but 1 seeds"):
        run_iterative(local_mean(), sources(2), [0])


def test_derived_lesion_keeps_the_source_mask_outside_the_edits_and_re_estimates_inside():
    output = rgb_noise(64, 64)
    yy, xx = np.mgrid[:64, :64]
    macule = (yy - 32) ** 2 + (xx - 48) ** 2 < 36
    output[macule] = [200, 90, 90]  # a red macule in the repainted right half
    source_lesion = np.zeros((64, 64), bool)
    source_lesion[:8] = True  # the parent's lesion: top rows
    edits = np.zeros((64, 64), int)
    edits[:, 32:] = 2
    est = derive_lesion(source_lesion, output, edits)
    assert np.array_equal(est[:, :32], source_lesion[:, :32])
    assert est[macule].mean() > 0.3 and not est[:8, 32:].any()  # inside: the new macule is found, the old lesion is gone


@pytest.mark.parametrize("big", [64, 45])  # an integer and a fractional scale of the 32 px work copy
def test_lift_pastes_only_the_repainted_pixels_at_the_source_size(big):
    # issue 30: a whole-image filler works on a shrunken copy; the output is the source's size, untouched pixels
    # bit-exact, and the edit map, the regions and the strip frames agree with what was pasted
    from skingen.inpaint.iterative import lift
    from skingen.inpaint.regions import edit_counts

    g = torch.Generator().manual_seed(0)
    source = (torch.randint(0, 256, (3, big, big), generator=g).float() / 127.5 - 1)
    small = torch.nn.functional.interpolate(source[None], size=32, mode="area")[0]
    filler = RegionFiller(lambda src, keep, gens: torch.zeros_like(src) + 0.5)
    work = run_iterative(filler, small[None], [3], IterativeParams(steps=3, size=12, shape="box", feather=0))[0]
    out = lift(work, source)
    index = torch.arange(big) * 32 // big
    assert out.image.shape == source.shape and torch.equal(out.edit_map, work.edit_map[index][:, index])
    kept = out.edit_map == 0
    assert kept.any() and (~kept).any()
    assert torch.equal(out.image[:, kept], source[:, kept])  # bit-exact, not close
    # repainted pixels come from the upsampled fill: 0.5 wherever the bicubic footprint (2 work px) is all fill
    from scipy.ndimage import binary_erosion

    inner = torch.from_numpy(binary_erosion((~kept).numpy(), iterations=2 * big // 32 + 2))
    assert inner.any() and torch.allclose(out.image[:, inner], torch.tensor(0.5), atol=1 / 127.5)
    assert torch.equal(edit_counts(out.regions, big), out.edit_map)
    assert len(out.frames) == 4 and torch.equal(out.frames[0], source) and torch.equal(out.frames[-1], out.image)
    assert (out.evaluations, out.pixels) == (work.evaluations, work.pixels)  # the cost is the work copy's
    assert lift(work, small) is work  # same size: nothing to do
