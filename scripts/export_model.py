"""Export a checkpoint as a small sampling-only model folder (EMA weights in fp16/bf16, config, run settings).

Usage: python scripts/export_model.py RUN_OR_CHECKPOINT OUT [--dtype fp16] [--run-params '{"shape": "blob"}']
OUT is new. ``--run-params``: the iterative-inpainting settings the model was measured with (IterativeParams fields);
``skingen inpaint`` uses them for every option the user leaves unset. This is how
``src/skingen/weights/measles-inpaint`` was made (see its MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import json

from skingen.registry import export_checkpoint
from skingen.inpaint.iterative import IterativeParams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--dtype", default="fp16")
    ap.add_argument("--run-params", default=None, help="JSON object of IterativeParams fields")
    args = ap.parse_args()
    extra = {}
    if args.run_params:
        given = json.loads(args.run_params)
        IterativeParams(**given)  # a typo or bad value fails here, not when a user runs the model
        extra["run_params"] = given
    print(export_checkpoint(args.checkpoint, args.out, args.dtype, extra))


if __name__ == "__main__":
    main()
