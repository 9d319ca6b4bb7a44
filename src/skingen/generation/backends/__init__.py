"""Inpainting backends: what ``skingen inpaint RUN`` drives, one module per backend, found by name.

A backend turns ``RUN`` (a folder, a checkpoint, a shipped model's name or ``opencv:<method>``) into a
:class:`~skingen.inpaint.iterative.RegionFiller` for the iterative algorithm, with what ``skingen inpaint`` records
about it (:class:`LoadedFiller`). Each module of this package defines ``BACKEND = Backend(...)``: its name (the
``--backend`` value), a line for ``--help``, a test "does RUN name me" (``claims``, asked in ``order`` for
``--backend auto``), a loader and a small example RUN for the contract test. :func:`backends` imports every module
here, so **adding a backend is adding one module** (ARCHITECTURE.md, "To add an inpainting backend"). Weights are
never downloaded: pass a folder you have.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from skingen.errors import SkingenError
from skingen.inpaint.iterative import RegionFiller
from skingen.runs import read_json


@dataclass
class LoadedFiller:
    """A :class:`~skingen.inpaint.iterative.RegionFiller` loaded from a folder or name, with what ``skingen inpaint``
    records about it."""

    filler: RegionFiller
    size: int | None     #: image side the denoiser works at (sources are resized to it); None = the crops' own
    family: str          #: ``inpaint`` (skingen model), ``repaint`` (diffusers UNet), ``opencv-<method>`` or ``sd``
    checkpoint: str      #: the folder the weights came from ("" when there are none)
    #: label -> (the filler for crops of that class, what to record with each image); None = one for all
    for_label: Callable[[str], tuple[RegionFiller, dict[str, str]]] | None = None
    settings: dict[str, object] = field(default_factory=dict)  #: backend settings recorded in inpaint.json
    #: run parameters the checkpoint was measured with (its config.json's ``run_params``): the defaults of
    #: :class:`~skingen.inpaint.iterative.IterativeParams` fields a user leaves unset
    run_params: dict[str, object] = field(default_factory=dict)

    def by_label(self, label: str) -> tuple[RegionFiller, dict[str, str]]:
        return self.for_label(label) if self.for_label else (self.filler, {})


@dataclass(frozen=True)
class LoadRequest:
    """What every loader gets: ``run`` as given, where and how to run, and the backend's own options (``sd``:
    :class:`~skingen.generation.backends.sd.SDOptions`; None = its defaults)."""

    run: str
    device: str = "cpu"
    ema: bool = True
    solver_steps: int | None = None
    precision: str = "fp32"
    options: Any = None


@dataclass(frozen=True)
class Backend:
    name: str                                       #: the ``--backend`` value
    help: str                                       #: what RUN is for it, one line for ``--help``
    claims: Callable[[str], bool]                   #: --backend auto: does RUN name this backend?
    load: Callable[[LoadRequest], LoadedFiller]
    order: int = 50                                 #: --backend auto asks lower orders first
    options: str | None = None                      #: the CLI options only this backend takes (for the error)
    #: does the RUN it claims inpaint at all (the learned backend claims every model, not all inpaint)? None: yes
    inpaints: Callable[[str], bool] | None = None
    #: a small RUN to write in a new folder (random or shipped weights): what the contract test
    #: (tests/generation/test_backend_contract.py) runs every backend on; None: the test module supplies one
    example: Callable[[Path], str] | None = None


@lru_cache(maxsize=1)
def backends() -> dict[str, Backend]:
    """name -> :class:`Backend` of every module in this package, in ``--backend auto``'s order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        backend = getattr(importlib.import_module(f"{__name__}.{info.name}"), "BACKEND", None)
        if isinstance(backend, Backend):
            found.append(backend)
    return {b.name: b for b in sorted(found, key=lambda b: (b.order, b.name))}


def detect_backend(run: str | Path) -> str:
    """The first backend (in ``order``) that claims ``run``."""
    for backend in backends().values():
        if backend.claims(str(run)):
            return backend.name
    raise SkingenError(f"no inpainting backend takes '{run}'")  # the learned-model backend claims everything


def inpaints(run: str | Path) -> bool:
    """Whether ``skingen inpaint`` can drive ``run`` (``plan --kind auto`` asks; the loaders refuse the rest)."""
    backend = backends()[detect_backend(run)]
    return backend.inpaints(str(run)) if backend.inpaints else True


def load_filler(run: str | Path, device: str = "cpu", ema: bool = True, solver_steps: int | None = None,
                backend: str = "auto", precision: str = "fp32", options: Any = None) -> LoadedFiller:
    """The denoiser ``run`` names, loaded by ``backend`` (``auto``: :func:`detect_backend`); ``options``: the
    backend's own options (an error for a backend that takes none)."""
    if backend != "auto" and backend not in backends():
        raise SkingenError(f"backend must be one of auto, {', '.join(backends())}, got '{backend}'")
    chosen = backends()[detect_backend(run) if backend == "auto" else backend]
    if options is not None and chosen.options is None:
        owners = " or ".join(f"{b.options} apply to --backend {b.name}" for b in backends().values() if b.options)
        raise SkingenError(f"{owners} only ({run} is driven by '{chosen.name}')")
    return chosen.load(LoadRequest(str(run), device, ema, solver_steps, precision, options))


def diffusers_unet(path: Path) -> tuple[Path, str] | None:
    """(folder, class name) of the diffusers UNet at ``path`` or ``path/unet`` (None: not a diffusers folder);
    the repaint and sd backends claim a RUN by it."""
    for folder in (path, path / "unet"):
        cfg = folder / "config.json"
        if cfg.is_file():
            name = read_json(cfg).get("_class_name")
            if name in ("UNet2DModel", "UNet2DConditionModel"):
                return folder, name
    return None
