"""Every registered inpainting backend keeps one contract (issue 30), run on the example RUN it ships
(``Backend.example``): ``--backend auto`` finds it, kept pixels stay bit-exact, the same seeds give the same
image, and ``skingen inpaint`` writes the manifest columns. A throw-away backend added as one new module (in a
temporary folder) is found, listed and driven with no other change."""

import textwrap

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from skingen.cli import app
from skingen.data.manifest import read_manifest
from skingen.generation import backends as B
from skingen.inpaint.iterative import IterativeParams, run_iterative

runner = CliRunner()
NAMES = list(B.backends())
COLUMNS = {"id", "image", "lesion", "label", "source_id", "split", "origin", "model", "checkpoint", "seed",
           "parent_id", "edit_map", "steps", "coverage", "evaluations", "pixels", "seam_score"}


@pytest.fixture(scope="module")
def sd_example(tmp_path_factory):
    """sd's tiny pipeline is built by scripts/make_tiny_sd.py (a tokenizer and three models), not the package."""
    from tests.generation.test_sd_backend import _make_tiny_sd

    return str(_make_tiny_sd()(tmp_path_factory.mktemp("sd") / "pipe"))


@pytest.fixture(scope="module")
def sd_lora_example(tmp_path_factory, tiny_data):
    """A `train sd-lora` run of sd's tiny inpainting pipeline (two steps; needs peft)."""
    pytest.importorskip("peft")
    from tests.generation.test_sd_backend import _make_tiny_sd
    from skingen.train.sd_lora import resolve_config, train_sd_lora

    root = tmp_path_factory.mktemp("sd-lora")
    cfg = resolve_config(None, ["train.steps=2", "train.batch=2", "train.lr=1e-2"])
    return str(train_sd_lora(_make_tiny_sd()(root / "pipe"), tiny_data, cfg, outdir=root / "runs", cpu=True))


def example(name: str, request, folder) -> str:
    backend = B.backends()[name]
    return backend.example(folder) if backend.example else request.getfixturevalue(f"{name.replace('-', '_')}_example")


@pytest.mark.parametrize("name", NAMES)
def test_auto_finds_the_backend_and_kept_pixels_stay_bit_exact(name, request, tmp_path):
    run = example(name, request, tmp_path)
    assert B.detect_backend(run) == name and B.inpaints(run)
    loaded = B.load_filler(run, solver_steps=2)
    size = loaded.size or 32
    src = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    params = IterativeParams(steps=2, size=0.3)
    first, again = (run_iterative(loaded.filler, src, [0, 1], params) for _ in range(2))
    for r, s, a in zip(first, src, again):
        kept = torch.from_numpy(r.edit_map.numpy() == 0)
        assert r.image.shape == s.shape and kept.any() and not kept.all()
        assert torch.equal(r.image[:, kept], s[:, kept])  # bit-exact, not close
        assert torch.equal(r.image, a.image)  # same seeds, same image


@pytest.fixture(scope="module")
def crops(demo_raw, tmp_path_factory):
    """side -> a prepared data folder of the demo photos' crops at that side (made once per side)."""
    from skingen.data.prepare import PrepareConfig, prepare

    made = {}

    def at(side: int):
        if side not in made:
            made[side] = tmp_path_factory.mktemp(f"crops{side}") / "data"
            prepare(demo_raw / "images", made[side], PrepareConfig(size=side), masks=demo_raw / "masks",
                    label="exanthem")
        return made[side]
    return at


@pytest.mark.parametrize("name", NAMES)
def test_inpaint_writes_the_crops_size_and_the_manifest_columns(name, request, tmp_path, crops):
    from skingen.imageio import read_image

    run = example(name, request, tmp_path)
    side = 2 * (B.load_filler(run).size or 24)  # crops larger than a whole-image model: it works on a shrunken copy
    data = crops(side)
    res = runner.invoke(app, ["inpaint", run, "--from", str(data), "--out", str(tmp_path / "out"), "--n", "1",
                              "--steps", "2", "--region-size", "0.4", "--solver-steps", "2", "--cpu"])
    assert res.exit_code == 0, res.output
    rows = read_manifest(tmp_path / "out")
    assert len(rows) == 1 and COLUMNS <= set(rows[0]) and rows[0]["origin"] == "synthetic"
    image, edits = read_image(tmp_path / "out" / rows[0]["image"]), read_image(tmp_path / "out" / rows[0]["edit_map"])
    parent = read_image(data / next(r for r in read_manifest(data) if r["id"] == rows[0]["parent_id"])["image"])
    kept = edits[..., 0] == 0
    assert image.shape == parent.shape == (side, side, 3) and kept.any() and not kept.all()
    assert np.array_equal(image[kept], parent[kept])  # untouched pixels bit-exact at the crop's own size


IDENTITY = '''
from skingen.generation.backends import Backend, LoadedFiller
from skingen.inpaint.iterative import RegionFiller

BACKEND = Backend("identity", "identity:ANY (hands every window back unchanged)",
                  claims=lambda run: run.startswith("identity:"),
                  load=lambda req: LoadedFiller(RegionFiller(lambda src, keep, gens: src), None, "identity", ""),
                  order=5, example=lambda folder: "identity:x")
'''


def test_a_new_backend_is_one_new_module(tmp_path, tiny_data, monkeypatch):
    # the one file a new backend needs; here in a temporary folder added to the package's search path
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "identity_backend.py").write_text(textwrap.dedent(IDENTITY))
    monkeypatch.setattr(B, "__path__", [*B.__path__, str(tmp_path / "pkg")])
    B.backends.cache_clear()
    try:
        assert list(B.backends())[0] == "identity"  # order 5: asked first
        assert "identity:ANY" in runner.invoke(app, ["list"]).output
        res = runner.invoke(app, ["inpaint", "identity:x", "--from", str(tiny_data), "--out", str(tmp_path / "out"),
                                  "--n", "2", "--feather", "0"])
        assert res.exit_code == 0, res.output
        from skingen.imageio import read_image

        for row in read_manifest(tmp_path / "out"):
            parent = next(r for r in read_manifest(tiny_data) if r["id"] == row["parent_id"])
            assert np.array_equal(read_image(tmp_path / "out" / row["image"]), read_image(tiny_data / parent["image"]))
    finally:
        monkeypatch.undo()
        B.backends.cache_clear()
