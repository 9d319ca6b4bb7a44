"""``skingen train sd-lora`` (issue 32) on the tiny random text-to-image and inpainting pipelines of
scripts/make_tiny_sd.py: the loss on a fixed batch falls, the saved LoRA loads into a fresh pipeline with diffusers'
``load_lora_weights`` and changes its output, and stop-and-resume equals a straight run."""

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from skingen.cli import app
from skingen.data.datasets import ManifestDataset
from skingen.errors import SkingenError
from skingen.models.sd_lora import LORA_FILE
from skingen.runs import read_jsonl
from skingen.train.sd_lora import LoraTrainer, resolve_config, resume_sd_lora, train_sd_lora
from tests.generation.test_sd_backend import _make_tiny_sd

pytest.importorskip("peft")
runner = CliRunner()
KINDS = ("text-to-image", "inpainting")
FAST = ["train.batch=2", "train.lr=1e-2", "train.tick=1"]


@pytest.fixture(scope="module")
def pipes(tmp_path_factory):
    root = tmp_path_factory.mktemp("sdlora")
    return {kind: _make_tiny_sd()(root / kind, inpainting=kind == "inpainting") for kind in KINDS}


def fixed_loss(trainer: LoraTrainer, images, labels, draws: int = 6) -> float:
    """Mean loss over ``draws`` fixed (noise, timestep, region) draws: the same numbers before and after training."""
    trainer.gen.manual_seed(1234)
    with torch.no_grad():
        return sum(float(trainer.loss(trainer.prepare_images(images), labels)) for _ in range(draws)) / draws


@pytest.mark.parametrize("kind", KINDS)
def test_loss_on_a_fixed_batch_falls(pipes, tiny_data, kind):
    """A truly fixed batch: the same crops, noise, timesteps (and regions) every step. Only the LoRA on a tiny random
    UNet's attention learns, so the fall is modest (measured: 1.06 -> 0.88 in 30 steps at lr 3e-2)."""
    cfg = resolve_config(None, ["train.lr=3e-2", "train.flip=false", "train.window_prob=0"]).train
    trainer = LoraTrainer(pipes[kind], cfg, ["exanthem"])
    ds = ManifestDataset(tiny_data)
    images, labels = torch.stack([ds[i]["image"] for i in range(4)]), torch.zeros(4, dtype=torch.long)
    before = fixed_loss(trainer, images, labels, draws=1)
    for _ in range(60):
        trainer.gen.manual_seed(1234)
        trainer.step(images, labels)
    after = fixed_loss(trainer, images, labels, draws=1)
    assert after < 0.85 * before, (before, after)


@pytest.mark.parametrize("kind", KINDS)
def test_resume_equals_a_straight_run(pipes, tiny_data, tmp_path, kind):
    straight = train_sd_lora(pipes[kind], tiny_data, resolve_config(None, [*FAST, "train.steps=4", "train.snapshot=2"]),
                             outdir=tmp_path / "a", cpu=True)
    half = train_sd_lora(pipes[kind], tiny_data, resolve_config(None, [*FAST, "train.steps=2", "train.snapshot=2"]),
                         outdir=tmp_path / "b", cpu=True)
    resumed = resume_sd_lora(half, steps=4, cpu=True)
    a, b = load_file(straight / LORA_FILE), load_file(resumed / LORA_FILE)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit-exact
    assert [r["loss"] for r in read_jsonl(straight / "stats.jsonl")] == [r["loss"] for r in read_jsonl(resumed / "stats.jsonl")]
    first = load_file(straight / "checkpoints" / "step-000002" / "lora.safetensors")
    assert not all(torch.equal(first[k], v) for k, v in load_file(straight / "checkpoints" / "step-000004" / "lora.safetensors").items())
    with pytest.raises(SkingenError, match="already trained 4 steps"):
        resume_sd_lora(resumed, cpu=True)


def _pipeline(folder, kind):
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    cls = StableDiffusionInpaintPipeline if kind == "inpainting" else StableDiffusionPipeline
    pipe = cls.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _draw(pipe, kind):
    extra = {"image": torch.zeros(1, 3, 32, 32), "mask_image": torch.ones(1, 1, 32, 32)} if kind == "inpainting" else {}
    return pipe(prompt="a close-up photo of sks exanthem skin rash", num_inference_steps=3, guidance_scale=1.0,
                generator=torch.Generator().manual_seed(0), output_type="pt", **extra).images


@pytest.mark.parametrize("kind", KINDS)
def test_the_saved_lora_loads_into_a_fresh_pipeline_and_changes_its_output(pipes, tiny_data, tmp_path, kind):
    from skingen.registry import load_model

    run = train_sd_lora(pipes[kind], tiny_data, resolve_config(None, [*FAST, "train.steps=3"]), outdir=tmp_path,
                        cpu=True)
    pipe = _pipeline(pipes[kind], kind)
    plain = _draw(pipe, kind)
    pipe.load_lora_weights(run)  # diffusers' own loader, from the run folder (pytorch_lora_weights.safetensors)
    tuned = _draw(pipe, kind)
    assert (tuned - plain).abs().max() > 1e-3
    # skingen's own loading (the checkpoint's peft tensors) gives the same network as diffusers' file
    model, _ = load_model(run)
    ours = _pipeline(pipes[kind], kind)
    ours.unet = model.unet
    assert torch.allclose(_draw(ours, kind), tuned, atol=1e-5)


def test_cli_trains_and_resumes_and_explains_bad_input(pipes, tiny_data, tmp_path):
    args = ["train", "sd-lora", "--pipeline", str(pipes["inpainting"]), "--data", f"{tiny_data}:train",
            "--outdir", str(tmp_path), "--cpu", "--set", "train.steps=2", "--set", "train.batch=2"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    run = next(tmp_path.glob("*-sd-lora-*"))
    assert {"config.yaml", "env.json", "stats.jsonl", LORA_FILE, "checkpoints"} <= {p.name for p in run.iterdir()}
    res = runner.invoke(app, ["train", "sd-lora", "--resume", str(run), "--set", "train.steps=3", "--cpu"])
    assert res.exit_code == 0, res.output
    assert (run / "checkpoints" / "step-000003" / "lora.safetensors").is_file()
    for bad, message in [(["--set", "train.rank=0"], "rank"), (["--set", "train.prompt=a {x} rash"], "placeholder"),
                         (["--pipeline", str(tiny_data)], "not a diffusers pipeline")]:
        res = runner.invoke(app, args + bad)
        assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output, res.output
    res = runner.invoke(app, ["train", "sd-lora", "--resume", str(run), "--set", "train.lr=1", "--cpu"])
    assert res.exit_code == 1 and "only --set train.steps=N" in res.output
    res = runner.invoke(app, ["train", "dcgan", "--pipeline", str(pipes["inpainting"]), "--data", str(tiny_data)])
    assert res.exit_code == 1 and "sd-lora only" in res.output


def test_minutes_stop_with_a_checkpoint_that_resumes(pipes, tiny_data, tmp_path):
    cfg = resolve_config(None, [*FAST, "train.steps=3", "train.snapshot=100"])
    run = train_sd_lora(pipes["text-to-image"], tiny_data, cfg, outdir=tmp_path, cpu=True, minutes=1e-9)
    assert [p.name for p in (run / "checkpoints").glob("step-*")] == ["step-000001"]
    assert "continue with --resume" in (run / "log.txt").read_text()
    resume_sd_lora(run, cpu=True)
    assert (run / "checkpoints" / "step-000003").is_dir()


@pytest.fixture
def fresh_accelerate():
    """accelerate keeps one mixed-precision setting per process: reset it around a test that changes it."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
    yield
    AcceleratorState._reset_state()


@pytest.mark.parametrize("kind", KINDS)
def test_bf16_and_gradient_checkpointing_train_a_fp32_lora(pipes, tiny_data, tmp_path, kind, fresh_accelerate):
    cfg = resolve_config(None, [*FAST, "train.steps=2", "train.mixed_precision=bf16", "train.gradient_checkpointing=true"])
    run = train_sd_lora(pipes[kind], tiny_data, cfg, outdir=tmp_path, cpu=True)
    lora = load_file(run / LORA_FILE)
    assert lora and all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in lora.values())
    assert all(r["loss"] > 0 for r in read_jsonl(run / "stats.jsonl"))
    # lora.up starts at zero: nonzero after two steps means gradients reach it through the checkpointed blocks
    assert max(float(v.abs().max()) for k, v in lora.items() if ".lora.up." in k) > 0


def test_the_instance_prompt_names_the_class():
    from skingen.models.sd_lora import DEFAULT_PROMPT, prompt_for

    assert prompt_for(DEFAULT_PROMPT, "measles") == "a close-up photo of sks measles skin rash"
    assert prompt_for(DEFAULT_PROMPT, "") == "a close-up photo of sks skin rash"
    assert prompt_for("{label}", "chickenpox") == "chickenpox"
