"""`skingen plan` counts what the job will pass through the network; speed options keep the images."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from skingen.cli import app
from skingen.generation.plan import plan_inpaint, plan_sample
from skingen.imageio import read_image
from skingen.generation.inpaint_folder import InpaintConfig
from skingen.generation.sample_folder import SampleConfig, sample_to_folder
from tests.conftest import tiny_runs

runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return tiny_runs(tiny_data, out, ("dermdiff", "dermgan", "inpaint"), images=16)


def test_plan_counts_guided_diffusion_evaluations_and_pixels(runs):
    guided = plan_sample(runs["dermdiff"], 1000, SampleConfig(batch=2, guidance=2.0, solver_steps=3))
    # 3 solver steps, each one UNet pass of the conditional and one of the null row: 6 rows of 16x16 px
    assert guided.evaluations_per_image == 6 and guided.pixels_per_image == 6 * 16 * 16
    plain = plan_sample(runs["dermdiff"], 1000, SampleConfig(batch=2, guidance=1.0, solver_steps=3))
    assert plain.evaluations_per_image == 3
    gan = plan_sample(runs["dermgan"], 10, SampleConfig(batch=2))
    assert (gan.family, gan.size, gan.calibration_images) == ("dermgan", 16, 4)
    assert gan.evaluations_per_image == 1 and gan.pixels_per_image == 16 * 16  # one generator pass
    assert gan.head_s > 0 and gan.per_batch_s > 0 and gan.predicted_s > gan.startup_s
    assert gan.to_dict()["evaluations"] == 10


def test_plan_inpaint_counts_steps_times_solver_steps(runs, tiny_data):
    params = {"steps": 3, "size": 6.0, "context": None}  # the whole 16 px image is denoised at every step
    plan = plan_inpaint(runs["inpaint"], tiny_data, 500, InpaintConfig(batch=2, params=params, solver_steps=2), runs=5)
    assert plan.evaluations_per_image == 3 * 2 and plan.pixels_per_image == 3 * 2 * 16 * 16
    assert any("100 crops x 5 runs" in note for note in plan.notes)


def test_gpu_time_is_predicted_only_from_a_measured_figure(runs):
    plan = plan_sample(runs["dermgan"], 1200, SampleConfig(batch=2), gpus=(1, 4))
    assert plan.gpu == [] and any("no measured GPU figure for dermgan at 16 px" in n for n in plan.notes)
    (runs["dermgan"] / "gpu_figures.csv").write_text(
        "card,kind,family,size,precision,batch,seconds_per_image,measured\n"
        "Test GPU,sample,dermgan,16,fp32,64,0.002,2026-01-01\n"
        "Test GPU,sample,dermgan,256,fp32,64,0.5,2026-01-01\n")  # another size: not used
    try:
        plan = plan_sample(runs["dermgan"], 1200, SampleConfig(batch=2), gpus=(1, 4))
    finally:
        (runs["dermgan"] / "gpu_figures.csv").unlink()
    assert len(plan.gpu) == 1 and plan.gpu[0]["predicted_s"] == {1: pytest.approx(2.4), 4: pytest.approx(0.6)}


def test_cli_plan_prints_and_writes_json(runs, tmp_path):
    res = runner.invoke(app, ["plan", str(runs["inpaint"]), "--n", "40", "--batch", "2", "--steps", "2",
                              "--region-size", "6", "--solver-steps", "2", "--cpu", "--json", str(tmp_path / "p.json")])
    assert res.exit_code == 0, res.output
    assert "model evaluations" in res.output and "images/hour" in res.output and "no measured GPU figure" in res.output
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["kind"] == "inpaint" and saved["images"] == 40 and saved["evaluations"] == 40 * 2 * 2
    res = runner.invoke(app, ["plan", str(runs["dermgan"]), "--n", "0"])
    assert res.exit_code == 1 and "--n must be at least 1" in res.output


def test_channels_last_and_compile_keep_the_images(runs, tmp_path):
    seeds = [0, 1, 2]
    sample_to_folder(runs["dermgan"], tmp_path / "plain", seeds, SampleConfig(batch=3))
    sample_to_folder(runs["dermgan"], tmp_path / "fast", seeds, SampleConfig(batch=3, channels_last=True, compile="eager"))
    meta = json.loads((tmp_path / "fast" / "sample.json").read_text())
    assert meta["channels_last"] is True and meta["compile"] == "eager"
    for s in seeds:
        a = read_image(tmp_path / "plain" / f"seed{s:06d}.png").astype(int)
        b = read_image(tmp_path / "fast" / f"seed{s:06d}.png").astype(int)
        assert np.abs(a - b).max() <= 1  # other kernels, same computation: float rounding only


def test_plan_of_the_shipped_model_uses_its_recorded_region_settings(tiny_data):
    from skingen.generation.plan import plan_job

    recorded = plan_job("measles-inpaint", 4, kind="inpaint", batch=1, calibrate=1, source=str(tiny_data))
    # 10 steps of 48 px blobs (its run_params) in 96 px windows, not the plain default of 64 px boxes (128 px)
    assert recorded.evaluations_per_image == 100 and recorded.pixels_per_image == 100 * 96 * 96
    given = plan_job("measles-inpaint", 4, kind="inpaint", batch=1, calibrate=1, source=str(tiny_data),
                     region={"steps": 2, "size": 0.25})
    assert given.pixels_per_image == 2 * 10 * 128 * 128  # what was given wins
