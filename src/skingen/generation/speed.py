"""Speed options for generation (channels-last, ``torch.compile``) and a counter of network evaluations.

Both options change how kernels are chosen, not what is computed: images agree with the plain ones up to
float rounding (so a run records them, and ``skingen merge`` refuses shards made with different ones).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


def speed_up(model: nn.Module, channels_last: bool = False, compile: bool | str = False) -> nn.Module:
    """Apply the options in place to every network of ``model`` (a :class:`~skingen.models.base.GenerativeModel`)
    and return it. ``compile`` (True = the inductor backend, which needs a C++ compiler on a CPU; or a backend
    name) compiles each network and its direct children: samplers call either the network
    (``generator(z)``) or a part of it (``vae.decode`` -> ``decoder``). The first batch pays the compilation."""
    backend = compile if isinstance(compile, str) else "inductor"
    for net in model.networks().values():
        if channels_last:
            net.to(memory_format=torch.channels_last)
        if compile:
            net.compile(backend=backend)
            for child in net.children():
                child.compile(backend=backend)
    return model


class EvaluationCounter:
    """Counts network evaluations and the pixels they process while :meth:`watch` is active.

    An *evaluation* is one row through an outermost module call (a call made while no other module runs,
    so a UNet's inner blocks are not counted again); its *pixels* are the largest ``H·W`` among the call's
    4-D inputs and outputs (a decoder's output, a UNet's window). Global module hooks, so it sees whatever
    network a sampler calls (``generator(z)``, ``vae.decode`` -> ``decoder``, a diffusers UNet)."""

    def __init__(self) -> None:
        self.evaluations = 0
        self.pixels = 0
        self._depth = 0

    @contextmanager
    def watch(self) -> Iterator["EvaluationCounter"]:
        from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

        handles = [register_module_forward_pre_hook(self._enter), register_module_forward_hook(self._leave)]
        try:
            yield self
        finally:
            for h in handles:
                h.remove()

    def _enter(self, module: nn.Module, args: tuple) -> None:
        self._depth += 1

    def _leave(self, module: nn.Module, args: tuple, output: object) -> None:
        self._depth -= 1
        if self._depth:
            return
        inputs = [t for t in args if torch.is_tensor(t) and t.ndim >= 1]
        if not inputs:  # not a network pass (e.g. a weight parametrization computing a weight on access)
            return
        tensors = [*inputs, getattr(output, "sample", output)]
        rows = len(inputs[0])
        area = max((t.shape[-1] * t.shape[-2] for t in tensors if torch.is_tensor(t) and t.ndim == 4), default=0)
        self.evaluations += rows
        self.pixels += rows * area
