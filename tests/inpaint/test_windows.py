"""Native-resolution window models, feathered fills, RePaint through a model's null condition, exported models."""

import json

import numpy as np
import pytest
import torch

from skingen.checkpoint import load_checkpoint
from skingen.registry import export_checkpoint
from skingen.errors import SkingenError
from skingen.generation.backends import load_filler
from skingen.generation.inpaint_folder import InpaintConfig, inpaint_to_folder
from skingen.inpaint.iterative import IterativeParams, RegionFiller, fade_in, feather_px, run_iterative
from skingen.inpaint.regions import Region
from skingen.registry import build_model, load_model
from tests.conftest import fast, tiny_config

WINDOWS = ("model.window_prob=1.0", "model.region_min=0.125", "model.region_max=0.25", "model.null_prob=0.25")


def test_fade_in_by_hand():
    box = Region(2, 3, 4, "box", torch.ones(4, 4, dtype=torch.bool))
    assert fade_in(box, 10, 0, (0, 0, 10)) is None
    alpha = fade_in(box, 10, 2.0, (0, 0, 10))
    # inside the 4 px box the distance to the nearest kept pixel is 1 on its border ring and 2 in its middle
    expected = torch.zeros(10, 10)
    expected[2:6, 3:7] = 0.5
    expected[3:5, 4:6] = 1.0
    assert torch.equal(alpha, expected)
    assert torch.equal(fade_in(box, 10, 2.0, (2, 2, 6)), expected[2:8, 2:8])  # cut to the window
    # a feather <= 1 is a fraction of the region's side: 0.5 of a 4 px box is the same 2 px
    assert torch.equal(fade_in(box, 10, 0.5, (0, 0, 10)), expected)
    assert feather_px(0.125, 48) == 6.0 and feather_px(6, 48) == 6.0 and feather_px(6, 16) == 6.0


def test_feather_keeps_pixels_and_blends_the_border_of_each_fill():
    constant = RegionFiller(lambda s, k, g: torch.full_like(s, 0.5))
    src = torch.zeros(1, 3, 32, 32) - 0.5
    hard, soft = (run_iterative(constant, src, [3], IterativeParams(steps=1, size=8, shape="box", feather=f))[0] for f in (0, 4))
    region = hard.regions[0].paint(32)
    assert torch.equal(soft.image[:, ~region], src[0][:, ~region])  # kept pixels bit for bit
    assert torch.equal(hard.image[:, region], torch.full_like(hard.image[:, region], 0.5))
    inside = soft.image[0][region]
    # the fill's border ring is 1/4 new content, its 2x2 centre (distance >= 4) all new
    assert float(inside.min()) == pytest.approx(-0.5 + 0.25) and float(inside.max()) == pytest.approx(0.5)
    with pytest.raises(SkingenError, match="feather"):
        IterativeParams(feather=-1)


def test_window_training_cuts_windows_inside_the_image_and_null_windows_keep_nothing():
    model = build_model("inpaint", tiny_config("inpaint", "model.size=32", *WINDOWS).model)
    images = torch.rand(64, 3, 32, 32) * 2 - 1
    gen = torch.Generator().manual_seed(0)
    x0, keep = model.training_inputs(images, lambda n: torch.rand(n, generator=gen))
    assert x0.shape[-1] < 32 and x0.shape[-1] % model.multiple == 0  # always a window, never the whole crop
    null = keep.flatten(1).amax(1) == 0
    assert 4 <= int(null.sum()) <= 30  # null_prob 0.25 of 64
    # every window is a crop of its image (wherever the region was, the window stayed inside the image)
    side = x0.shape[-1]
    for x, w in zip(images, x0):
        hits = [(t, l) for t in range(33 - side) for l in range(33 - side) if torch.equal(x[:, t:t + side, l:l + side], w)]
        assert hits


def test_window_model_trains_and_inpaints_a_crop_larger_than_its_windows_without_resizing(tiny_data, tmp_path):
    from skingen.train.loop import train

    run = train("inpaint", tiny_data, tiny_config("inpaint", "model.size=32", *WINDOWS, *fast(32)), outdir=tmp_path,
                cpu=True)
    report = inpaint_to_folder(run, tiny_data, tmp_path / "out", InpaintConfig(
        params={"steps": 3, "size": 8, "shape": "blob", "feather": 2}, n=2, solver_steps=2))
    assert report.images == 2
    info = json.loads((tmp_path / "out" / "inpaint.json").read_text())
    assert info["params"]["feather"] == 2 and info["params"]["shape"] == "blob"
    from skingen.imageio import read_image

    out = read_image(tmp_path / "out" / "seed000000.png")
    assert out.shape == (32, 32, 3)  # the crops' own size: windows of 16 px, never a resize
    edits = read_image(tmp_path / "out" / "edits" / "seed000000.png")[..., 0]
    src = read_image(tiny_data / "images" / sorted((tiny_data / "images").iterdir())[0].name)
    assert np.array_equal(out[edits == 0], src[edits == 0])


def test_repaint_through_the_null_condition_keeps_pixels_and_needs_null_training(tiny_data, tmp_path):
    from skingen.train.loop import train

    run = train("inpaint", tiny_data, tiny_config("inpaint", "model.size=32", *WINDOWS, *fast(16)), outdir=tmp_path,
                cpu=True)
    loaded = load_filler(run, backend="repaint", solver_steps=10)
    assert loaded.family == "repaint" and loaded.filler.evaluations == 15  # 10 steps + 5 re-done after a jump
    src = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    result = run_iterative(loaded.filler, src, [0, 1], IterativeParams(steps=2, size=8))
    for r, s in zip(result, src):
        assert torch.equal(r.image[:, r.edit_map == 0], s[:, r.edit_map == 0]) and torch.isfinite(r.image).all()
    plain = train("inpaint", tiny_data, tiny_config("inpaint", "model.size=32", *fast(8)), outdir=tmp_path, cpu=True)
    with pytest.raises(SkingenError, match="null_prob"):
        load_filler(plain, backend="repaint")


def test_exported_model_is_small_samples_like_its_ema_and_brings_its_run_settings(tiny_data, tmp_path):
    from skingen.train.loop import train

    run = train("inpaint", tiny_data, tiny_config("inpaint", *fast(16)), outdir=tmp_path, cpu=True)
    out = export_checkpoint(run, tmp_path / "small", "fp16", {"run_params": {"shape": "blob", "steps": 2}})
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    with pytest.raises(SkingenError, match="already exists"):
        export_checkpoint(run, out)
    full, _ = load_model(run)
    small, ckpt = load_model(out)
    assert all(v.dtype == torch.float16 for v in ckpt["weights"]["model"].values())
    for (k, a), b in zip(full.state_dict().items(), small.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-3), k  # the EMA weights, rounded to fp16
    inpaint_to_folder(out, tiny_data, tmp_path / "o", InpaintConfig(params={"size": 4.0}, n=1, solver_steps=1))
    params = json.loads((tmp_path / "o" / "inpaint.json").read_text())["params"]
    assert params["shape"] == "blob" and params["steps"] == 2 and params["size"] == 4.0  # given beats recorded


def test_train_init_loads_every_tensor_and_refuses_a_mismatch(tiny_data, tmp_path):
    from skingen.train.loop import resolve_config, train

    base = train("inpaint", tiny_data, tiny_config("inpaint", *fast(16)), outdir=tmp_path / "a", cpu=True)
    small = export_checkpoint(base, tmp_path / "small", "fp16")
    cfg = resolve_config("inpaint", None, [*fast(8)], init=small)
    assert cfg.model == load_model(small)[0].config  # the model section comes from the init model
    calls = []
    from skingen.models.inpaint import InpaintModel

    original = InpaintModel.train_step

    def first_step(self, batch, ctx):  # the weights the first step starts from
        if not calls:
            calls.append({k: v.detach().clone() for k, v in self.state_dict().items()})
        return original(self, batch, ctx)

    InpaintModel.train_step = first_step
    try:
        tuned = train("inpaint", tiny_data, cfg, outdir=tmp_path / "b", cpu=True, init=small)
    finally:
        InpaintModel.train_step = original
    start = load_checkpoint(small, train_state=False)["weights"]["model"]
    assert calls[0].keys() == start.keys()
    assert all(torch.equal(calls[0][k], start[k].float()) for k in start)
    assert json.loads((tuned / "env.json").read_text())["init"] == str(small.resolve())
    wrong = resolve_config("inpaint", None, [*fast(8), "model.widths=[16,16]"], init=small)
    with pytest.raises(SkingenError, match="do not fit"):
        train("inpaint", tiny_data, wrong, outdir=tmp_path / "c", cpu=True, init=small)
    with pytest.raises(SkingenError, match="not a 'dcgan' model"):
        resolve_config("dcgan", None, [], init=small)
