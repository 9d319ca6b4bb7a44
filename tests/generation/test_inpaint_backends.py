"""RePaint with a tiny, randomly initialised unconditional diffusers UNet saved to a local folder."""

import pytest
import torch
from typer.testing import CliRunner

from skingen.cli import app
from skingen.generation.backends import load_filler
from skingen.inpaint.iterative import IterativeParams, run_iterative
from skingen.nn.unet import make_unet


@pytest.fixture(scope="module")
def unet_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ddpm") / "unet"
    make_unet(16, 3, 3, (16, 32), layers_per_block=1).save_pretrained(folder)
    return folder


def test_repaint_backend_keeps_pixels_and_follows_seeds(unet_folder):
    loaded = load_filler(unet_folder, solver_steps=10)
    assert loaded.family == "repaint" and loaded.size == 16 and loaded.filler.multiple == 2
    assert loaded.filler.evaluations > 10  # the jumps back cost extra evaluations
    src = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    a, b = run_iterative(loaded.filler, src, [0, 1], IterativeParams(steps=2, size=6))
    alone = run_iterative(loaded.filler, src[1:], [1], IterativeParams(steps=2, size=6))[0]
    torch.testing.assert_close(b.image, alone.image, atol=1e-5, rtol=0)  # batch size may change float rounding only
    assert not torch.equal(a.image, b.image)
    untouched = a.edit_map == 0
    assert torch.equal(a.image[:, untouched], src[0][:, untouched]) and not torch.equal(a.image, src[0])
    assert a.evaluations == 2 * loaded.filler.evaluations


def test_cli_inpaint_with_a_diffusers_unet_folder(unet_folder, tiny_data, tmp_path):
    res = CliRunner().invoke(app, ["inpaint", str(unet_folder), "--from", str(tiny_data), "--n", "1", "--steps", "2",
                                   "--solver-steps", "5", "--out", str(tmp_path / "o"), "--cpu"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "seed000000.png").is_file() and "repaint" in (tmp_path / "o" / "manifest.csv").read_text()
