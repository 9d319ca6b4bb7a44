"""Checkpoint folders that rebuild their model without extra flags.

Layout: ``step-NNNNNN/{config.json, <name>.safetensors ..., train_state.pt}``. Weights are
safetensors (no pickled code); ``train_state.pt`` holds only tensors and plain Python values and is
loaded with ``weights_only=True``. A folder is written under a temporary name and renamed when
complete, so a crash never leaves a half-written checkpoint that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from skingen.errors import SkingenError
from skingen.runs import atomic_write_text, write_json

LATEST = "latest"


def save_checkpoint(
    root: str | Path,
    step: int,
    config: dict[str, Any],
    weights: dict[str, dict[str, Any]],
    train_state: dict[str, Any] | None = None,
    keep_last: int | None = None,
) -> Path:
    """Write ``root/step-NNNNNN`` with ``config.json``, one safetensors file per entry of ``weights``
    (e.g. ``{"model": state_dict, "ema": state_dict}``) and ``train_state.pt``; update ``root/latest``
    and keep only the ``keep_last`` newest checkpoints."""
    import torch
    from safetensors.torch import save_file

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    if final.exists():
        raise SkingenError(f"checkpoint already exists, refusing to overwrite: {final}")
    tmp = root / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write_json(tmp / "config.json", config)
    for name, state in weights.items():
        tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
        save_file(tensors, str(tmp / f"{name}.safetensors"))
    if train_state is not None:
        torch.save(train_state, tmp / "train_state.pt")
    os.replace(tmp, final)
    atomic_write_text(root / LATEST, final.name + "\n")
    if keep_last:
        for old in list_checkpoints(root)[:-keep_last]:
            shutil.rmtree(old)
    return final


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint folder, a ``checkpoints/`` folder or a run folder; return the checkpoint folder."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    for root in (path, path / "checkpoints"):
        if (root / LATEST).is_file():
            ckpt = root / (root / LATEST).read_text().strip()
            if (ckpt / "config.json").is_file():
                return ckpt
        found = list_checkpoints(root)
        if found:
            return found[-1]
    raise SkingenError(f"no checkpoint found at {path} (expected config.json or checkpoints/latest)")


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    """Return ``{"path", "config", "weights": {name: state_dict}, "train_state"}``."""
    import torch
    from safetensors.torch import load_file

    ckpt = resolve_checkpoint(path)
    try:
        config = json.loads((ckpt / "config.json").read_text())
    except json.JSONDecodeError:
        raise SkingenError(f"{ckpt / 'config.json'}: not valid JSON") from None
    weights = {p.stem: load_file(str(p), device=map_location) for p in sorted(ckpt.glob("*.safetensors"))}
    state_path = ckpt / "train_state.pt"
    train_state = torch.load(state_path, map_location=map_location, weights_only=True) if state_path.is_file() else None
    return {"path": ckpt, "config": config, "weights": weights, "train_state": train_state}
