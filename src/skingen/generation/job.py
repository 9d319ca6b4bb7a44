"""One generation job, shared by every command that writes a synthetic set (``sample``, ``inpaint``).

A job takes a list of work items (seeds, or (crop, seed) pairs), cuts them into the one-process batches of
:mod:`skingen.generation.parallel` for this shard and this process, stages the output folder, hands the
batches to the command's own step, gathers every process's manifest rows and tallies in rank order, and
has rank 0 write ``manifest.csv``, the command's summary JSON and ``DATASHEET.md`` before the folder is
renamed into place. The command supplies only what differs: its model call and its rows.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from skingen.data.datasheet import write_datasheet
from skingen.data.imagesets import parse_data_spec
from skingen.data.manifest import write_manifest
from skingen.errors import SkingenError
from skingen.generation.parallel import (Processes, idle_shard_note, parse_shard, shard_batches, shard_items,
                                         shared_staging)
from skingen.runs import write_json

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_for(precision: str, device: str):
    """The autocast context for generating at ``precision`` (fp32 | bf16 | fp16) on ``device``."""
    if precision not in AUTOCAST_DTYPES:
        raise SkingenError(f"precision must be one of {', '.join(AUTOCAST_DTYPES)}, got '{precision}'")
    device_type = torch.device(device).type
    if precision == "fp16" and device_type == "cpu":
        raise SkingenError("fp16 sampling needs a GPU; on a CPU use bf16")
    return torch.autocast(device_type, dtype=AUTOCAST_DTYPES[precision] or torch.float32, enabled=precision != "fp32")


def source_dataset(source: str | Path, size: int | None):
    """The crops of ``DATA[:split]`` (default split: train), resized to ``size`` (None: their own size)."""
    from skingen.data.datasets import ManifestDataset

    folder, split = parse_data_spec(str(source))
    return ManifestDataset(folder, split=split or "train", size=size)


class GenerationJob:
    """One command's share of a generation: ``what`` names it in messages ("samples", "inpainting").

    Made before the model loads (a bad ``--shard`` or precision fails first); :meth:`staged` then gives the
    folder and :meth:`batches` this process's work."""

    def __init__(self, out: str | Path, what: str, batch: int, shard: str | None, device: str, precision: str,
                 progress: Callable[[int, int], None] | None = None):
        if batch < 1:
            raise SkingenError("--batch must be at least 1")
        self.out, self.what, self.batch = Path(out), what, batch
        self.shard = parse_shard(shard)
        self.autocast = autocast_for(precision, device)
        self.procs = Processes(device)
        self.progress = progress if self.procs.is_main else None
        self.items: Sequence[Any] = ()
        self.mine: list[list[Any]] = []
        self.total = 0

    @property
    def is_main(self) -> bool:
        return self.procs.is_main

    @contextmanager
    def staged(self, items: Sequence[Any], subfolders: Sequence[str] = ()) -> Iterator[Path]:
        """The staging folder for the whole job over ``items`` (renamed to ``out`` when the block ends)."""
        self.items = items
        self.mine = shard_batches(items, self.batch, self.shard, self.procs.rank, self.procs.world)
        self.total = len(shard_items(items, self.batch, self.shard))
        with shared_staging(self.out, self.what, self.procs) as staging:
            for d in subfolders:
                (staging / d).mkdir(exist_ok=True)
            yield staging

    def batches(self) -> Iterator[list[Any]]:
        """This process's batches, reporting progress after each (rank 0's share under several processes)."""
        done, mine = 0, sum(map(len, self.mine))
        for chunk in self.mine:
            yield chunk
            done += len(chunk)
            if self.progress:
                self.progress(done, mine)

    def gather_rows(self, rows: list[dict]) -> list[dict]:
        """Every process's rows in rank order: the one-process order."""
        return [r for part in self.procs.gather(rows) for r in part]

    def gather(self, value: Any) -> list[Any]:
        """``value`` from every process, in rank order."""
        return self.procs.gather(value)

    def idle_note(self) -> str:
        """Why this shard has no work, or "" when it has some."""
        return "" if self.total else idle_shard_note(len(self.items), self.batch, self.shard)

    def sharding(self) -> dict[str, Any]:
        """The summary JSON's record of how the job was split."""
        return {"shard": None if self.shard.count == 1 else str(self.shard), "processes": self.procs.world}

    def write(self, staging: Path, rows: list[dict], seconds_per_image: float, summary_name: str,
              summary: dict[str, Any], kind: str, datasheet: dict[str, Any], counts: dict[str, Any] | None = None
              ) -> None:
        """Rank 0's files: ``manifest.csv`` (each row with the job's ``seconds_per_image``), the summary JSON and
        ``DATASHEET.md`` (``kind``, its ``datasheet`` fields and ``counts``,
        :func:`~skingen.data.datasheet.write_datasheet`)."""
        for r in rows:
            r["seconds_per_image"] = f"{seconds_per_image:.6f}"
        write_manifest(staging, rows)
        write_json(staging / summary_name, summary)
        write_datasheet(staging, rows, kind, datasheet, **({"counts": counts} if counts else {}))
