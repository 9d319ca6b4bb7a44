"""Checkpoint folders that rebuild their model without extra flags.

Layout: ``step-NNNNNN/{config.json, <name>.safetensors ..., train_state.pt}``. Weights are
safetensors (no pickled code); ``train_state.pt`` holds only tensors and plain Python values and is
loaded with ``weights_only=True``. A folder is written under a temporary name and renamed when
complete, so a crash never leaves a half-written checkpoint that looks finished.

Integrity: ``config.json`` records the sha256 of every tensor file (key ``sha256``: file name -> hex);
loading verifies them and refuses weights that are not finite (NaN/inf), so a damaged or bit-rotted file
is an error naming it, never a model that quietly draws black images. Checkpoints written before the
checksums existed load with the finiteness check only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from skingen.errors import SkingenError
from skingen.runs import atomic_write_text, file_sha256, read_json, write_json

LATEST = "latest"
SHA_KEY = "sha256"


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
    for name, state in weights.items():
        tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
        save_file(tensors, str(tmp / f"{name}.safetensors"))
    if train_state is not None:
        torch.save(train_state, tmp / "train_state.pt")
    sums = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.suffix in (".safetensors", ".pt")}
    write_json(tmp / "config.json", {**config, SHA_KEY: sums})
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


def load_checkpoint(path: str | Path, map_location: str = "cpu", train_state: bool = True) -> dict[str, Any]:
    """Return ``{"path", "config", "weights": {name: state_dict}, "train_state"}`` (``train_state`` None when
    not asked for: sampling needs only the weights). Raises ``SkingenError`` naming the file when one is
    missing, damaged (checksum, format) or holds non-finite weights."""
    ckpt = resolve_checkpoint(path)
    config = read_config(ckpt)
    sums = config.pop(SHA_KEY, None)
    names = sorted(sums) if sums is not None else sorted(p.name for p in ckpt.iterdir()
                                                          if p.suffix in (".safetensors", ".pt"))
    weights = {}
    for name in names:
        if name.endswith(".pt") and not train_state:
            continue
        if sums is not None:
            verify_file(ckpt / name, sums[name])
        if name.endswith(".safetensors"):
            weights[name[: -len(".safetensors")]] = read_state_dict(ckpt / name, "checkpoint", map_location)
    state = None
    if train_state and (ckpt / "train_state.pt").is_file():  # listed but missing: verify_file said so
        state = _load_train_state(ckpt / "train_state.pt", map_location)
    return {"path": ckpt, "config": config, "weights": weights, "train_state": state}


def read_config(ckpt: Path) -> dict[str, Any]:
    config = read_json(ckpt / "config.json")
    if not isinstance(config.get(SHA_KEY, {}), dict):
        raise SkingenError(f"{ckpt / 'config.json'}: not a checkpoint description (expected a JSON object)")
    return config


def verify_file(path: Path, expected: str) -> None:
    """The file exists and its sha256 is the one recorded when the checkpoint was written."""
    if not path.is_file():
        raise SkingenError(f"{path}: missing from the checkpoint (config.json lists it)")
    if file_sha256(path) != expected:
        raise SkingenError(f"{path}: damaged (its sha256 differs from the one recorded in config.json)")


def read_state_dict(path: str | Path, what: str, map_location: str = "cpu") -> dict[str, Any]:
    """The tensors in a weights file (``.safetensors``, else ``torch.load(weights_only=True)``): one reader for
    checkpoints and for the ImageNet / Inception weights users pass. Missing, damaged, not a dict of tensors,
    or a NaN / inf in a float tensor: one line naming the file and ``what`` it should be."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise SkingenError(f"{what} file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device=map_location)
        else:
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, pickle of something else, bad header, ...: all one message
        text = str(exc).strip()
        raise SkingenError(f"{path}: not a readable {what} file ({exc.__class__.__name__}: "
                           f"{text.splitlines()[0][:160] if text else 'no message'})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SkingenError(f"{path}: not a {what} state dict (expected a dict of tensors)")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise SkingenError(f"{path}: {what} weights are not finite (NaN or inf) in {len(bad)} tensor(s), e.g. "
                           f"{bad[0]}")
    return state


def _load_train_state(path: Path, map_location: str) -> dict[str, Any]:
    import pickle

    import torch

    if not path.is_file():
        raise SkingenError(f"{path}: missing from the checkpoint (config.json lists it)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise SkingenError(f"{path}: not a readable training state ({str(exc).splitlines()[0]})") from None


def intact_checkpoints(root: str | Path) -> list[Path]:
    """Checkpoints under ``root`` that load (checksums, formats, finite weights), oldest first."""
    intact = []
    for ckpt in list_checkpoints(root):
        try:
            load_checkpoint(ckpt)
        except SkingenError:
            continue
        intact.append(ckpt)
    return intact
