"""Options that several commands share, declared once: ``cpu: Cpu = False`` in a command's signature."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from skingen.seeding import MAX_SEED

#: where a trained model may be given (what ``registry.load_model`` reads)
MODEL_PLACES = "run folder, its checkpoints/ folder, one checkpoint folder or a shipped model's name (measles-inpaint)"

Cpu = Annotated[bool, typer.Option("--cpu", help="Run on the CPU even when a GPU is available.")]
Workers = Annotated[int, typer.Option(min=0, max=64, help="Worker processes (default: CPU count, at most 8).")]
#: ``typer.Option(0, **SEED, help=...)``: the range of every --seed option that is not a config key
SEED = {"min": 0, "max": MAX_SEED}
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and stop.")]

# generation: sample, inpaint, plan
Batch = Annotated[int, typer.Option(help="Images per network call (inpaint: runs processed together).")]
NoEma = Annotated[bool, typer.Option("--no-ema", help="Use the trained weights instead of their moving average.")]
Precision = Annotated[str, typer.Option(help="fp32, bf16 (faster on CPUs with AVX-512 BF16; images differ slightly "
                                        "from fp32 ones) or fp16 (GPU).")]
SolverSteps = Annotated[Optional[int], typer.Option(help="Solver steps of diffusion models, per region when "
                                                    "inpainting (default: the model's; --backend sd: 20).")]
Guidance = Annotated[Optional[float], typer.Option(help="Classifier-free guidance scale (dermdiff, --backend sd; 1 = "
                                                   "none, > 1 costs 2 network calls a step) (default: the model's; "
                                                   "sd: 7.5).")]
Masks = Annotated[Optional[str], typer.Option(help="Mask-conditioned models: paint from the masks of DATA[:split] "
                                              "(default: the train split of the run's own data).")]
Layouts = Annotated[bool, typer.Option("--layouts", help="Mask-conditioned models: paint from synthesised rash "
                                       "layouts.")]
RegionSize = Annotated[Optional[float], typer.Option("--region-size", help="inpaint: region side, a fraction of the "
                                                     "image side (<= 1) or pixels (> 1) [default: 0.1875].")]
Shard = Annotated[Optional[str], typer.Option(help="K/N: only job K (from 0) of N of a scheduler array, in its own "
                                              "--out folder; join the folders with `skingen merge`.")]

# one spelling per concept (issue 30): a renamed option keeps its old name, hidden, for one release
Synthetic = Annotated[list[str], typer.Option("--synthetic", help="Synthetic set: [NAME=]DIR[:LABEL] (NAME: its name "
                                              "in reports, default the folder's; LABEL: the class of every image, for "
                                              "augment and downstream when the manifest has none); repeat for more.")]
OldFake = Annotated[list[str], typer.Option("--fake", hidden=True, help="Old name of --synthetic.")]


def renamed(old: str, old_value, new: str, new_value):
    """The value of an option given under its old name ``old`` (hidden, with a one-line deprecation note) or its
    new one ``new``; an unset option is None or an empty list."""
    from skingen.console import note
    from skingen.errors import SkingenError

    if old_value in (None, []):
        return new_value
    if new_value not in (None, []):
        raise SkingenError(f"give {new} only ({old} is its old name)")
    note(f"{old} is deprecated and goes in the next release: use {new}")
    return old_value
