"""``skingen inpaint RUN`` with a ``skingen train sd-lora`` run of an inpainting pipeline: the ``sd`` backend's
iterative inpainting (:class:`~skingen.generation.backends.sd.SDInpainting`: windows resized to the pipeline's
resolution, DPM-Solver++, kept pixels pasted back exactly) through the pipeline the run fine-tuned, with its LoRA
(the run's latest checkpoint, or the checkpoint named) and the run's own instance prompt per class (``--prompt``
overrides it as for ``sd``). A run of a text-to-image pipeline is claimed too, so that ``plan`` picks ``sample``
for it and ``inpaint`` says why it cannot.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from skingen.errors import SkingenError
from skingen.generation.backends import Backend, LoadedFiller, LoadRequest
from skingen.generation.backends.sd import SDInpainting, SDOptions, prepare_pipeline
from skingen.inpaint.iterative import RegionFiller


def _config(run: str) -> dict | None:
    """The sd-lora checkpoint's ``config.json`` at ``run`` (run, ``checkpoints/`` or checkpoint folder), else None."""
    from skingen.checkpoint import read_config, resolve_checkpoint
    from skingen.models.sd_lora import FAMILY

    try:
        config = read_config(resolve_checkpoint(run))
    except SkingenError:
        return None
    return config if config.get("family") == FAMILY else None


def _claims(run: str) -> bool:
    return _config(run) is not None


def _inpaints(run: str) -> bool:
    return (_config(run) or {}).get("model", {}).get("kind") == "inpainting"


def _load(req: LoadRequest) -> LoadedFiller:
    from skingen.registry import load_model

    if not _inpaints(req.run):
        raise SkingenError(f"{req.run} is a LoRA of a text-to-image pipeline: draw from it with `skingen sample "
                           f"{req.run} --n N`; `skingen inpaint` needs an sd-lora run of an inpainting pipeline")
    model, ckpt = load_model(req.run, device=req.device)
    cfg = model.config
    options = req.options or SDOptions(negative_prompt=cfg.negative_prompt)
    if req.solver_steps is not None:
        options = replace(options, solver_steps=req.solver_steps)
    pipe = model.pipe
    if req.precision != "fp32":
        from skingen.generation.sample_folder import AUTOCAST_DTYPES

        pipe.to(dtype=AUTOCAST_DTYPES[req.precision])
    sd = SDInpainting(prepare_pipeline(pipe, req.device, options), options)
    fillers: dict[str, RegionFiller] = {}

    def for_label(label: str) -> tuple[RegionFiller, dict[str, str]]:
        from skingen.models.sd_lora import prompt_for

        prompt = options.prompts.get(label) or options.prompts.get("*") or prompt_for(cfg.prompt, label)
        if prompt not in fillers:
            fillers[prompt] = sd.region_filler(prompt)
        return fillers[prompt], {"prompt": prompt, "negative_prompt": options.negative_prompt}

    settings = {**sd.settings(), "pipeline_folder": cfg.pipeline, "lora_rank": cfg.rank, "lora_alpha": cfg.alpha,
                "instance_prompt": cfg.prompt}
    first = cfg.labels[0] if cfg.labels else ""
    return LoadedFiller(for_label(first)[0], None, "sd-lora", str(Path(ckpt["path"]).resolve()), for_label, settings)


BACKEND = Backend("sd-lora", "a `skingen train sd-lora` run of an inpainting pipeline (the sd backend with the run's "
                  "LoRA and class prompts)", claims=_claims, load=_load, order=15, inpaints=_inpaints,
                  options="--prompt, --negative-prompt, --guidance, --strength, --resolution, --attention and "
                          "--cpu-offload")
