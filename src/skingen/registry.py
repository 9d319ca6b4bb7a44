"""Explicit model registry: name -> model class (its ``Config`` dataclass is ``cls.Config``).

Also rebuilds a model from a checkpoint folder alone (its ``config.json``), without extra flags, and
knows the models shipped inside the package (``skingen/weights/<name>/``: a checkpoint folder with a
``MODEL_CARD.md``), which any command taking a run folder accepts by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skingen.errors import SkingenError


def models() -> dict[str, type]:
    """Registered families, in the order ``skingen list`` shows them."""
    from skingen.models.cvae import CVAE
    from skingen.models.dcgan import DCGAN
    from skingen.models.dermdiff import DermDiff
    from skingen.models.dermgan import DermGAN
    from skingen.models.inpaint import InpaintModel

    return {cls.name: cls for cls in (DCGAN, CVAE, DermGAN, DermDiff, InpaintModel)}


def model_class(name: str) -> type:
    registered = models()
    if name not in registered:
        raise SkingenError(f"unknown model '{name}' (registered: {', '.join(registered)})")
    return registered[name]


def build_model(name: str, config: dict[str, Any] | Any):
    """A fresh model of family ``name`` from a config dataclass or a (validated) plain dict."""
    from skingen.config import from_dict

    cls = model_class(name)
    if isinstance(config, dict):
        config = from_dict(cls.Config, config, prefix="model.")
    return cls(config)


SD_LORA = "sd-lora"  #: ``skingen train sd-lora`` runs (skingen.models.sd_lora): loaded here, trained outside the loop

SHIPPED = Path(__file__).resolve().parent / "weights"


def shipped_models() -> list[str]:
    """Names of the models shipped inside the package, e.g. ``measles-inpaint``."""
    return sorted(p.name for p in SHIPPED.iterdir() if (p / "config.json").is_file()) if SHIPPED.is_dir() else []


def model_path(path: str | Path) -> Path:
    """``path`` as given, or the shipped model of that name when no such file or folder exists."""
    if not Path(path).exists() and str(path) in shipped_models():
        return SHIPPED / str(path)
    return Path(path)


def load_model(path: str | Path, ema: bool = True, device: str = "cpu"):
    """Rebuild the model saved at ``path`` (checkpoint, ``checkpoints/`` or run folder, or a shipped model's name).

    Returns ``(model, checkpoint)``; with ``ema`` the EMA weights (when saved) replace the trained
    ones in ``model.ema_module()`` — what sampling should use.
    """
    from skingen.checkpoint import load_checkpoint

    ckpt = load_checkpoint(model_path(path), map_location=device, train_state=False)
    cfg = ckpt["config"]
    if "family" not in cfg or "model" not in cfg:
        raise SkingenError(f"{ckpt['path'] / 'config.json'} does not describe a skingen model (no 'family'/'model')")
    if cfg["family"] == SD_LORA:  # a LoRA on a pretrained pipeline: not a loop-trained family (models.sd_lora)
        from skingen.models.sd_lora import SDLoraModel

        return SDLoraModel.from_checkpoint(ckpt, device), ckpt
    if "model" not in ckpt["weights"]:
        raise SkingenError(f"{ckpt['path'] / 'model.safetensors'}: missing from the checkpoint")
    model = build_model(cfg["family"], cfg["model"]).to(device)
    model.load_state_dict(ckpt["weights"]["model"])
    if ema and "ema" in ckpt["weights"]:
        model.ema_module().load_state_dict(ckpt["weights"]["ema"])
    model.eval()
    return model, ckpt


def export_checkpoint(path: str | Path, out: str | Path, dtype: str = "fp16", extra: dict[str, Any] | None = None
                      ) -> Path:
    """A small sampling-only copy of the checkpoint at ``path`` in the new folder ``out``: its EMA weights (else the
    trained ones) cast to ``dtype`` (fp16 | bf16 | fp32) as ``model.safetensors``, and its ``config.json`` plus the
    keys of ``extra`` (e.g. ``run_params``) — no optimizer state, so it cannot be resumed, only sampled or
    fine-tuned from (``train --init``). What a model shipped with the package is."""
    import os
    import shutil

    import torch
    from safetensors.torch import save_file

    from skingen.checkpoint import SHA_KEY, load_checkpoint
    from skingen.runs import file_sha256, write_json

    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    if dtype not in dtypes:
        raise SkingenError(f"dtype must be one of {', '.join(dtypes)}, got '{dtype}'")
    out = Path(out)
    if out.exists():
        raise SkingenError(f"{out} already exists, refusing to overwrite")
    ckpt = load_checkpoint(path, train_state=False)
    weights = dict(ckpt["weights"]["model"])
    prefix = model_class(ckpt["config"]["family"]).ema_module_name + "."  # EMA keys are relative to that module
    weights.update({prefix + k: v for k, v in ckpt["weights"].get("ema", {}).items()})
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: (v.to(dtypes[dtype]) if v.is_floating_point() else v).contiguous() for k, v in weights.items()},
              str(tmp / "model.safetensors"))
    write_json(tmp / "config.json", {**ckpt["config"], **(extra or {}), "exported_from": str(ckpt["path"].resolve()),
                                     "dtype": dtype, SHA_KEY: {"model.safetensors": file_sha256(tmp / "model.safetensors")}})
    os.replace(tmp, out)
    return out
