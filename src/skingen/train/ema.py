"""Exponential moving average of a network's weights, on ``torch.optim.swa_utils.AveragedModel``.

The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so short runs (tests, demos)
are not dominated by the random initial weights; long runs reach the configured decay quickly.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def make_ema(module: nn.Module, decay: float) -> AveragedModel:
    """An EMA copy of ``module`` (parameters and buffers); update with ``ema.update_parameters(module)``."""

    def avg(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        return averaged * d + current * (1.0 - d)

    return AveragedModel(module, avg_fn=avg, use_buffers=True)
