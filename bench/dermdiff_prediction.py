"""Which (prediction, schedule, x0 clipping) lets DPM-Solver++ turn a trained dermdiff into images?

Usage: python bench/dermdiff_prediction.py [--steps 200]
Each variant of the tiny preset (16 px, no condition dropping) overfits the four planted pairs of
tests/models/test_dermdiff.py for ``steps`` steps; then every pair is painted from its own masks (guidance 1,
10 and 50 solver steps) and compared with its image. A low ε-loss with a high sample error means the
solver amplifies the network's error (ε-prediction near the end of the schedule). Prints a table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = [("v_prediction", "squaredcos_cap_v2", False), ("v_prediction", "squaredcos_cap_v2", True),
            ("epsilon", "squaredcos_cap_v2", False), ("epsilon", "squaredcos_cap_v2", True),
            ("epsilon", "linear", False), ("epsilon", "linear", True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    import torch
    from rich.console import Console
    from rich.table import Table

    sys.path.insert(0, str(REPO))  # the planted pairs and the tiny model are the tests' own
    from skingen.models.base import Condition
    from tests.models.test_contract import step_context
    from tests.models.test_dermdiff import four_pairs, tiny_dermdiff

    torch.set_num_threads(1)
    pairs = four_pairs()
    cond = Condition(coloured=pairs["coloured"], lesion=pairs["lesion"])
    table = Table(title=f"dermdiff, 4 pairs at 16 px, {args.steps} training steps")
    for col in ("prediction", "schedule", "clip_x0", "ε-loss", "sample MSE 10 steps", "sample MSE 50 steps"):
        table.add_column(col, justify="right")
    for prediction, schedule, clip in VARIANTS:
        model = tiny_dermdiff(f"model.prediction={prediction}", f"model.beta_schedule={schedule}",
                              f"model.clip_x0={str(clip).lower()}", "model.cond_drop=0")
        ctx = step_context(model)
        for _ in range(args.steps):
            model.train_step(pairs, ctx)
        errors = [float((model.sample([0, 1, 2, 3], cond, guidance=1, solver_steps=s) - pairs["image"]).pow(2).mean())
                  for s in (10, 50)]
        loss = model.loss_at(pairs["image"], pairs["coloured"], pairs["lesion"])
        table.add_row(prediction, schedule, str(clip), f"{loss:.3f}", *(f"{e:.3f}" for e in errors))
    Console().print(table, width=120)


if __name__ == "__main__":
    main()
