"""The sd backend on the tiny random-weight inpainting pipeline that scripts/make_tiny_sd.py builds."""

import csv
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from skingen.cli import app
from skingen.errors import SkingenError
from skingen.imageio import read_image
from skingen.generation.backends import sd as sd_backend
from skingen.generation.backends import load_filler
from skingen.inpaint.iterative import IterativeParams, run_iterative
from skingen.inpaint.regions import window_box
from skingen.generation.backends.sd import (CLASS_PROMPTS, DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPT, SDInpainting, SDOptions,
                                        parse_prompts)

runner = CliRunner()
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_tiny_sd.py"


def _make_tiny_sd():
    spec = importlib.util.spec_from_file_location("make_tiny_sd", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_tiny_sd


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    return _make_tiny_sd()(tmp_path_factory.mktemp("sd") / "pipe")


@pytest.fixture(scope="module")
def loaded(tiny_sd):
    return load_filler(tiny_sd, solver_steps=2)  # backend auto: a pipeline folder with a text-conditioned UNet


def _borders(regions, size, context):
    hit = set()
    for region in regions:
        top, left, side = window_box(region, size, context)
        hit |= {name for name, at in (("top", top == 0), ("left", left == 0), ("bottom", top + side == size),
                                      ("right", left + side == size)) if at}
    return hit


def test_sd_keeps_pixels_with_windows_at_every_border_and_counts_unet_work(loaded):
    assert loaded.family == "sd" and loaded.size is None and loaded.filler.resize_to == 32
    assert loaded.filler.evaluations == 2 * 2  # 2 DPM-Solver++ steps, guidance 7.5 -> conditional + unconditional
    src = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(3)) * 2 - 1
    params = IterativeParams(steps=5, size=12, shape="box", context=2)  # 24 px windows, resized to the pipeline's 32 px and back
    runs = run_iterative(loaded.filler, src, [1, 0], params)
    assert _borders(runs[0].regions, 48, 2) == {"top", "left", "bottom", "right"}
    for run, source in zip(runs, src):
        untouched = run.edit_map == 0
        assert torch.equal(run.image[:, untouched], source[:, untouched])
        assert (run.image[:, ~untouched] - source[:, ~untouched]).abs().mean() > 0.05  # the regions were repainted
        assert run.evaluations == len(run.regions) * 4 and run.pixels == len(run.regions) * 4 * 32 * 32


def test_sd_window_goes_to_the_pipeline_and_comes_back_in_place(tiny_sd, monkeypatch):
    """With a pipeline that echoes its input, a window comes back as it went (resized 16 -> 32 -> 16 px),
    and the mask it got is the region scaled to 32 px."""
    sd = SDInpainting.load(tiny_sd, options=SDOptions(solver_steps=2))
    seen = {}

    def echo(self, image, mask_image, **kwargs):
        seen.update(image=image, mask=mask_image, **kwargs)
        self._num_timesteps = sd.steps
        return SimpleNamespace(images=image)

    monkeypatch.setattr(type(sd.pipe), "__call__", echo)
    y, x = torch.meshgrid(torch.linspace(-0.8, 0.8, 16), torch.linspace(-0.5, 0.5, 16), indexing="ij")
    window = torch.stack([y, x, y * x])[None]  # smooth and asymmetric: a flip or shift would show
    keep = torch.ones(1, 1, 16, 16)
    keep[..., 2:10, 6:14] = 0
    out = sd.region_filler("red spots").fill(window, keep, [torch.Generator().manual_seed(0)])
    assert out.shape == window.shape and (out - window).abs().max() < 0.03
    expected = torch.zeros(1, 1, 32, 32)
    expected[..., 4:20, 12:28] = 1
    assert torch.equal(seen["mask"], expected) and seen["image"].min() >= 0 and seen["image"].max() <= 1
    assert seen["prompt"] == ["red spots"] and seen["negative_prompt"] == [DEFAULT_NEGATIVE_PROMPT]
    assert (seen["height"], seen["width"], seen["num_inference_steps"]) == (32, 32, 2)


def test_sd_same_seed_same_image_whatever_the_batch(loaded):
    src = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4)) * 2 - 1
    params = IterativeParams(steps=2, size=8)
    a, b = run_iterative(loaded.filler, src, [5, 6], params)
    again = run_iterative(loaded.filler, src, [5, 6], params)
    alone = run_iterative(loaded.filler, src[1:], [6], params)[0]
    assert torch.equal(a.image, again[0].image) and torch.equal(b.image, again[1].image)
    torch.testing.assert_close(b.image, alone.image, atol=1e-5, rtol=0)  # batch size may change float rounding only
    other = run_iterative(loaded.filler, src[:1], [7], IterativeParams(steps=2, size=8))[0]
    assert not torch.equal(a.image, other.image)


def test_sd_counts_steps_after_strength_and_without_guidance(tiny_sd):
    cut = load_filler(tiny_sd, backend="sd", options=SDOptions(solver_steps=4, strength=0.5, guidance=1.0))
    assert cut.filler.evaluations == 2 and cut.settings["denoising_steps"] == 2
    src = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    run = run_iterative(cut.filler, src, [0], IterativeParams(steps=1, size=8))[0]  # the pipeline ran what was counted
    assert run.evaluations == 2
    with pytest.raises(SkingenError, match="no denoising step"):
        SDOptions(solver_steps=1, strength=0.5)


def test_sd_resolution_override(tiny_sd):
    wide = load_filler(tiny_sd, backend="sd", options=SDOptions(solver_steps=2, resolution=48))
    src = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    run = run_iterative(wide.filler, src, [0], IterativeParams(steps=1, size=8))[0]
    assert wide.settings["resolution"] == 48 and run.pixels == 4 * 48 * 48
    assert torch.equal(run.image[:, run.edit_map == 0], src[0][:, run.edit_map == 0])
    with pytest.raises(SkingenError, match="multiple of 4"):  # VAE factor 2 x one UNet downsampling
        load_filler(tiny_sd, backend="sd", options=SDOptions(resolution=30))


def test_prompts_from_the_class_table_overridable():
    assert SDOptions().prompt_for("exanthem") == CLASS_PROMPTS["exanthem"]
    assert SDOptions().prompt_for("psoriasis") == DEFAULT_PROMPT
    overrides = parse_prompts(["measles=red spots", "a photo of skin"])
    assert overrides == {"measles": "red spots", "*": "a photo of skin"}
    options = SDOptions(prompts=overrides)
    assert options.prompt_for("measles") == "red spots" and options.prompt_for("exanthem") == "a photo of skin"
    assert parse_prompts(["rash with a = sign"]) == {"*": "rash with a = sign"}  # a space before '=': not a label


def test_cli_sd_writes_prompts_cost_columns_and_keeps_pixels(tiny_sd, tiny_data, tmp_path):
    args = ["inpaint", str(tiny_sd), "--backend", "sd", "--from", f"{tiny_data}:val", "--n", "2", "--runs", "2",
            "--steps", "2", "--region-size", "8", "--solver-steps", "2", "--cpu"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*args, "--prompt", "exanthem=red spots", "--negative-prompt", "blue",
                              "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    with open(tiny_data / "manifest.csv", newline="") as fh:
        val = {r["id"]: r for r in csv.DictReader(fh) if r["split"] == "val"}
    for name, prompt, negative in (("a", CLASS_PROMPTS["exanthem"], DEFAULT_NEGATIVE_PROMPT), ("b", "red spots", "blue")):
        out = tmp_path / name
        with open(out / "manifest.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 4 and {r["model"] for r in rows} == {"sd"}
        for r in rows:
            assert (r["prompt"], r["negative_prompt"]) == (prompt, negative)
            assert int(r["evaluations"]) == 2 * 4 and int(r["pixels"]) == 2 * 4 * 32 * 32
            assert float(r["seconds_per_image"]) > 0
            run = json.loads((out / "runs" / f"seed{int(r['seed']):06d}.json").read_text())
            assert run["prompt"] == prompt and run["negative_prompt"] == negative and run["solver_steps"] == 2
            image, edits = read_image(out / r["image"]), read_image(out / r["edit_map"])[..., 0]
            source = read_image(tiny_data / val[r["parent_id"]]["image"])
            assert image.shape == source.shape == (32, 32, 3)  # kept at the data's size
            assert np.array_equal(image[edits == 0], source[edits == 0]) and (edits > 0).any()
            assert (tmp_path / name / "frames" / f"seed{int(r['seed']):06d}.png").is_file()
        meta = json.loads((out / "inpaint.json").read_text())
        assert meta["backend"]["negative_prompt"] == negative and meta["backend"]["resolution"] == 32
        assert meta["evaluations_per_image"] == 8
    # the prompt reaches the model: same seeds, other prompts, other pixels
    assert not np.array_equal(read_image(tmp_path / "a" / "seed000000.png"), read_image(tmp_path / "b" / "seed000000.png"))


def test_cli_sd_refuses_a_text_to_image_pipeline_in_one_line(tmp_path, tiny_data):
    folder = _make_tiny_sd()(tmp_path / "t2i", inpainting=False)
    res = runner.invoke(app, ["inpaint", str(folder), "--backend", "sd", "--from", str(tiny_data),
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "text-to-image pipeline" in res.output and "4 input channels" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
    res = runner.invoke(app, ["inpaint", str(tiny_data), "--backend", "sd", "--from", str(tiny_data),
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "not a diffusers pipeline folder" in res.output


def test_sd_options_need_the_sd_backend(tiny_sd, tiny_data, tmp_path):
    res = runner.invoke(app, ["inpaint", str(tiny_sd), "--backend", "repaint", "--prompt", "x", "--from", str(tiny_data),
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "apply to --backend sd only" in res.output


def test_sd_without_transformers_says_how_to_install(tiny_sd, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(sd_backend.importlib.util, "find_spec", lambda name, *a: None if name == "transformers" else real(name, *a))
    with pytest.raises(SkingenError, match=r"pip install 'skingen\[sd\]'"):
        load_filler(tiny_sd, backend="sd")
