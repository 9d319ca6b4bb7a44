"""The interface every generative model family implements (ARCHITECTURE.md, "The model interface").

A model is an ``nn.Module`` built from one frozen dataclass config. The generic training loop
(:mod:`skingen.train.loop`) only ever calls :meth:`GenerativeModel.make_optimizers`,
:meth:`GenerativeModel.train_step`, :meth:`GenerativeModel.sample` and
:meth:`GenerativeModel.condition_from_batch`; GANs, VAEs and diffusion models therefore share one loop.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, ClassVar

import torch
from torch import nn

from skingen.config import Positive, PositiveInt, Range
from skingen.errors import SkingenError

CONDITION_FIELDS = ("labels", "lesion", "coloured", "source", "keep")


@dataclass(frozen=True)
class Condition:
    """What a sample is conditioned on; every field is optional and batch-aligned with the seeds.

    ``labels`` long ``[N]`` (indices into the model config's ``labels``); ``lesion`` float ``{0,1}``
    ``[N,1,H,W]`` (1 = ill skin); ``coloured`` float ``[N,3,H,W]`` in [-1, 1]; ``source`` float
    ``[N,3,H,W]`` in [-1, 1] (an image to vary or inpaint); ``keep`` float ``{0,1}`` ``[N,1,H,W]``
    (1 = pixel kept from the source).
    """

    labels: torch.Tensor | None = None
    lesion: torch.Tensor | None = None
    coloured: torch.Tensor | None = None
    source: torch.Tensor | None = None
    keep: torch.Tensor | None = None

    def __post_init__(self) -> None:
        channels = {"lesion": 1, "coloured": 3, "source": 3, "keep": 1}
        sizes = set()
        for name in CONDITION_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise SkingenError(f"condition '{name}' must be a tensor, got {type(value).__name__}")
            if name == "labels":
                if value.ndim != 1 or value.dtype not in (torch.int32, torch.int64):
                    raise SkingenError(f"condition 'labels' must be an integer tensor [N], got {tuple(value.shape)} {value.dtype}")
            elif value.ndim != 4 or value.shape[1] != channels[name]:
                raise SkingenError(f"condition '{name}' must be [N,{channels[name]},H,W], got {tuple(value.shape)}")
            sizes.add(len(value))
        if len(sizes) > 1:
            raise SkingenError(f"condition fields have different batch sizes: {sorted(sizes)}")

    def given(self) -> list[str]:
        return [f for f in CONDITION_FIELDS if getattr(self, f) is not None]

    def __len__(self) -> int:
        for f in self.given():
            return len(getattr(self, f))
        return 0

    def to(self, device: torch.device | str) -> "Condition":
        return Condition(**{f: getattr(self, f).to(device) for f in self.given()})


@dataclass
class StepContext:
    """What the training loop hands to :meth:`GenerativeModel.train_step`.

    ``optimizers`` are the ones :meth:`make_optimizers` returned (wrapped by accelerate);
    ``backward(loss)`` must be used instead of ``loss.backward()`` (mixed-precision scaling, multi-GPU) —
    :meth:`update` does the usual zero-grad / backward / step with it;
    ``generator`` is the run's own random stream (saved in checkpoints, so resuming is exact) — draw all
    training noise from it via :meth:`randn` / :meth:`rand`.
    """

    optimizers: dict[str, torch.optim.Optimizer]
    backward: Callable[[torch.Tensor], None]
    generator: torch.Generator
    step: int
    device: torch.device

    def update(self, name: str, loss: torch.Tensor) -> None:
        """One optimiser step of network ``name``: clear its gradients, back-propagate ``loss`` through
        :attr:`backward`, step."""
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        opt.step()

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.generator.device).to(self.device)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.generator.device).to(self.device)


class GenerativeModel(nn.Module):
    """Base class. Subclasses set ``name``, ``supports`` (condition fields they accept), ``sample_options``
    (keyword options of :meth:`sample`) and implement the abstract methods; ``__init__(self, config: XConfig)``
    names the frozen dataclass the family is built from, which becomes ``Config``."""

    name: ClassVar[str]
    Config: ClassVar[type]  #: the type of ``__init__``'s ``config`` (set by ``__init_subclass__``)
    description: ClassVar[str] = ""
    supports: ClassVar[frozenset[str]] = frozenset()
    #: condition fields :meth:`sample` cannot do without (a subset of ``supports``)
    requires: ClassVar[frozenset[str]] = frozenset()
    sample_options: ClassVar[frozenset[str]] = frozenset()
    #: attribute name of the sub-module whose weights get an EMA copy (used for sampling)
    ema_module_name: ClassVar[str] = "generator"
    #: the image fields of a data item that :meth:`train_step` and :meth:`condition_from_batch` read
    batch_fields: ClassVar[frozenset[str]] = frozenset({"image", "lesion", "coloured"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):  # one statement of the config type: the annotation the model is built from
            cls.Config = typing.get_type_hints(cls.__init__)["config"]

    def __init__(self, config: Any):
        super().__init__()
        self.config = config
        # Multi-process runs wrap each trained network (DDP); train_step calls them via self.net(name).
        # A plain dict (not a ModuleDict) so wrappers never appear in state_dict().
        self._wrapped: dict[str, nn.Module] = {}

    # -- what the loop calls --------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        """The separately optimised networks, e.g. ``{"generator": ..., "discriminator": ...}``."""
        raise NotImplementedError

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, float]:
        """One training step on ``batch`` (items of :class:`~skingen.data.datasets.ManifestDataset`,
        collated); runs its own backward and optimizer steps; returns namespaced losses (``loss/G``...)."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, seeds: list[int], cond: Condition | None = None, **options: Any) -> torch.Tensor:
        """Images ``[len(seeds),3,H,W]`` in [-1, 1]; row i depends only on (weights, ``seeds[i]``, row i of ``cond``)."""
        raise NotImplementedError

    def condition_from_batch(self, batch: dict[str, Any]) -> Condition | None:
        """The condition this model would use to re-generate ``batch`` (preview grids, ``sample --from``)."""
        return None

    def ema_module(self) -> nn.Module:
        return getattr(self, self.ema_module_name)

    def manifest_fields(self, label: str) -> dict[str, str]:
        """Extra manifest columns of a sampled image of class ``label`` (sd-lora: its prompt); none by default."""
        return {}

    # -- helpers for subclasses -----------------------------------------------------------------
    def net(self, name: str) -> nn.Module:
        return self._wrapped[name] if name in self._wrapped else getattr(self, name)

    def use_wrapped(self, name: str, module: nn.Module) -> None:
        if module is not getattr(self, name):
            self._wrapped[name] = module

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_sample_args(self, seeds: list[int], cond: Condition | None, options: dict[str, Any]) -> None:
        """Clear errors for a condition or option this model does not support, or a size mismatch."""
        if not seeds:
            raise SkingenError("no seeds given")
        unknown = sorted(set(options) - self.sample_options)
        if unknown:
            allowed = ", ".join(sorted(self.sample_options)) or "none"
            raise SkingenError(f"model '{self.name}' has no sampling option '{unknown[0]}' (options: {allowed})")
        given = cond.given() if cond is not None else []
        unsupported = [f for f in given if f not in self.supports]
        if unsupported:
            allowed = ", ".join(sorted(self.supports)) or "no condition"
            raise SkingenError(f"model '{self.name}' does not take condition '{unsupported[0]}' (it takes: {allowed})")
        missing = sorted(self.requires - set(given))
        if missing:
            raise SkingenError(f"model '{self.name}' needs condition(s) {', '.join(missing)} to sample "
                               "(skingen sample --masks DATA or --layouts)")
        if cond is None:
            return
        if len(cond) != len(seeds):
            raise SkingenError(f"condition has {len(cond)} rows but {len(seeds)} seeds were given")
        size = getattr(self.config, "size", None)
        for f in cond.given():
            value = getattr(cond, f)
            if value.ndim == 4 and size is not None and tuple(value.shape[-2:]) != (size, size):
                raise SkingenError(f"condition '{f}' is {tuple(value.shape[-2:])} px but the model makes {size}x{size}")
        if cond.labels is not None:
            n = len(getattr(self.config, "labels", ()))
            if n == 0:
                raise SkingenError(f"model '{self.name}' was trained without labels")
            if int(cond.labels.min()) < 0 or int(cond.labels.max()) >= n:
                raise SkingenError(f"label index out of range 0..{n - 1}")

    def describe(self) -> dict[str, Any]:
        """Parameter counts per network (for ``skingen info``)."""
        return {name: sum(p.numel() for p in net.parameters()) for name, net in self.networks().items()}


@dataclass(frozen=True)
class UNetDiffusionConfig:
    """The settings every :class:`UNetDiffusionModel` shares: its UNet and its noise schedule."""

    size: Annotated[int, Range(8, 4096)] = 256
    widths: tuple[int, ...] = (64, 128, 256, 256)   #: UNet channels per resolution level, full size first
    layers_per_block: PositiveInt = 2
    attention: tuple[bool, ...] = ()                 #: per level; empty = the lowest two levels (if >= 3 levels)
    timesteps: Annotated[int, Range(2, None)] = 1000                            #: training diffusion steps
    beta_schedule: str = "squaredcos_cap_v2"         #: linear | scaled_linear | squaredcos_cap_v2
    lr: Positive = 2e-4                                 #: AdamW learning rate of the UNet


class UNetDiffusionModel(GenerativeModel):
    """A diffusion model whose one network is ``self.unet`` (a diffusers UNet, set by the subclass), trained
    with AdamW at ``config.lr``; its EMA copy is what samples. The process itself is :mod:`skingen.diffusion`'s."""

    ema_module_name = "unet"
    unet: nn.Module

    def networks(self) -> dict[str, nn.Module]:
        return {"unet": self.unet}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"unet": torch.optim.AdamW(self.unet.parameters(), lr=self.config.lr, weight_decay=0.0)}
