"""The inpainting model shipped inside the package works on a fresh install, by name."""

import json

import torch

from skingen.generation.backends import load_filler
from skingen.inpaint.iterative import IterativeParams, run_iterative
from skingen.registry import SHIPPED, load_model, shipped_models


def test_measles_inpaint_is_shipped_small_and_documented():
    assert "measles-inpaint" in shipped_models()
    folder = SHIPPED / "measles-inpaint"
    assert (folder / "model.safetensors").stat().st_size <= 25 * 2**20
    assert "not for diagnosis" in (folder / "MODEL_CARD.md").read_text().lower()
    model, ckpt = load_model("measles-inpaint")  # checksum verified on load
    assert ckpt["config"]["family"] == "inpaint" and model.config.size == 256
    assert all(v.dtype == torch.float16 for v in ckpt["weights"]["model"].values())


def test_measles_inpaint_repaints_a_256_px_crop_with_its_recorded_settings():
    loaded = load_filler("measles-inpaint")
    params = IterativeParams(**loaded.run_params)
    assert params.shape == "blob" and params.feather > 0
    y, x = torch.meshgrid(torch.linspace(0, 6.28, 256), torch.linspace(0, 6.28, 256), indexing="ij")
    skin = torch.stack([0.5 + 0.1 * torch.sin(4 * x), 0.1 + 0.1 * torch.cos(3 * y), 0.0 * x])[None]  # [1,3,256,256]
    run = run_iterative(loaded.filler, skin, [0], params)[0]
    assert run.image.shape == (3, 256, 256) and torch.isfinite(run.image).all()
    untouched = run.edit_map == 0
    assert torch.equal(run.image[:, untouched], skin[0][:, untouched])
    assert not torch.equal(run.image[:, ~untouched], skin[0][:, ~untouched])
    assert run.evaluations == 10 * 10 and run.pixels == 10 * 10 * 96 * 96  # 48 px regions in 96 px windows


def test_sample_from_crops_uses_the_recorded_settings_too(tiny_data, tmp_path):
    from skingen.generation.sample_folder import SampleConfig, sample_to_folder

    sample_to_folder("measles-inpaint", tmp_path / "out", [0], SampleConfig(source=f"{tiny_data}:train"))
    record = json.loads((tmp_path / "out" / "sample.json").read_text())
    _, ckpt = load_model("measles-inpaint")
    assert record["options"]["params"] == ckpt["config"]["run_params"]
