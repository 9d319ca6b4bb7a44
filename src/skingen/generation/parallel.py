"""One generation job spread over processes (``torchrun`` / ``accelerate launch``) and scheduler-array shards.

The work (seeds, or crops x runs for inpainting) is cut into the *same batches* a one-process run uses:
consecutive chunks of ``batch`` items. A shard (``--shard K/N``) takes a contiguous block of those
batches, and each process a contiguous block of its shard's; a shard or process left without a batch (more
shards than batches) does nothing, and an empty shard writes an empty folder that ``merge`` takes. Seeds are
not split inside a batch on purpose: the diffusion families' images move by ~1.5e-6 with the batch's make-up
(measured on the tiny ``dermdiff`` / ``inpaint`` on a CPU), enough to flip a rounded pixel now and then. Every image therefore comes out of exactly
the same network call as in a one-process run, so the files are byte-identical (same device type,
precision and thread count — float reductions may depend on them), and concatenating the rows of the
processes (or shards) in order gives the one-process manifest.

Processes find each other through the launcher's environment (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``...):
:class:`Processes` asks ``accelerate`` for the process group, which picks gloo on a CPU and NCCL on GPUs, so
the same command runs on a laptop and on a GPU node. All processes write into one hidden staging folder
that rank 0 creates; after a barrier rank 0 writes the manifest and the summary and renames the folder
into place, so a finished folder never holds half-written images.
"""

from __future__ import annotations

import atexit
import os
import signal
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence, TypeVar

from skingen.errors import SkingenError
from skingen.runs import staged_dir

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Job ``index`` of ``count`` in a scheduler array (``--shard K/N``, K from 0)."""

    index: int = 0
    count: int = 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Shard()
MAX_SHARDS = 100_000  #: more array tasks than any scheduler runs


def parse_shard(text: str | None) -> Shard:
    """``'2/8'`` -> ``Shard(2, 8)``; None -> the whole job."""
    if text is None:
        return WHOLE
    parts = [p.strip() for p in str(text).split("/")]
    # ASCII digits only: '²'.isdigit() is True but int('²') fails, and '١' (Arabic-Indic one) is no one's K
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise SkingenError(f"--shard '{text}' must be K/N, e.g. 0/4 (K counts from 0)")
    index, count = int(parts[0]), int(parts[1])
    if not 1 <= count <= MAX_SHARDS or index >= count:
        raise SkingenError(f"--shard '{text}': K must be one of 0..N-1 and N 1..{MAX_SHARDS:,}")
    return Shard(index, count)


def block(n: int, index: int, count: int) -> tuple[int, int]:
    """The ``index``-th of ``count`` contiguous, as-equal-as-possible slices of ``range(n)`` as (start, stop)."""
    base, extra = divmod(n, count)
    start = index * base + min(index, extra)
    return start, start + base + (index < extra)


def batches(items: Sequence[T], batch: int) -> list[list[T]]:
    """The batches a one-process run makes: consecutive chunks of ``batch`` items."""
    if batch < 1:
        raise SkingenError("--batch must be at least 1")
    return [list(items[i:i + batch]) for i in range(0, len(items), batch)]


def shard_batches(items: Sequence[T], batch: int, shard: Shard = WHOLE, rank: int = 0, world: int = 1
                  ) -> list[list[T]]:
    """The batches of ``items`` that process ``rank`` of ``world`` works on in ``shard``."""
    chunks = batches(items, batch)
    a, b = block(len(chunks), shard.index, shard.count)
    chunks = chunks[a:b]
    a, b = block(len(chunks), rank, world)
    return chunks[a:b]


def shard_items(items: Sequence[T], batch: int, shard: Shard = WHOLE) -> list[T]:
    """All items of ``shard`` (every process's together), in one-process order; empty when the job has fewer
    batches than shards (that shard writes an empty folder that ``skingen merge`` takes)."""
    return [x for chunk in shard_batches(items, batch, shard) for x in chunk]


def idle_shard_note(n: int, batch: int, shard: Shard) -> str:
    """Why ``shard`` has no work, and the ``--batch`` that would give every shard some."""
    return (f"shard {shard} has no work: {n} items in batches of {batch} make {len(batches(range(n), batch))} "
            f"batch(es), and shards split whole batches (a batch is the unit that keeps images byte-identical to "
            f"one process); it writes an empty folder for merge. --batch {max(1, -(-n // shard.count))} would give "
            f"all {shard.count} shards work")


class Processes:
    """This process's place among the launched ones: ``rank``, ``world``, ``device`` and collective helpers.

    One process (no launcher): no process group, the helpers are identities. Launched (``WORLD_SIZE`` > 1):
    the group comes from ``accelerate.PartialState`` (gloo on CPU, NCCL on CUDA) and a ``cuda`` device
    becomes this process's own GPU (``cuda:LOCAL_RANK``)."""

    def __init__(self, device: str = "cpu"):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = device
        if self.world > 1:
            from accelerate import PartialState

            state = PartialState(cpu=device == "cpu")
            self.world, self.rank = state.num_processes, state.process_index
            atexit.unregister(_destroy_process_group)  # one entry however many jobs the process runs
            atexit.register(_destroy_process_group)
            if device != "cpu":
                self.device = str(state.device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """``[obj of rank 0, obj of rank 1, ...]`` on every process."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


def _destroy_process_group() -> None:
    """At interpreter exit, while Python is still whole: a gloo group left to finalisation can abort a process
    whose work succeeded (SIGABRT, "terminate called without an active exception": CI, stop 37). Training
    calls ``accelerator.end_training()``; generation keeps the group for the process's later jobs."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def terminate_cleanly() -> Iterator[None]:
    """SIGTERM (``scancel``, a job's time limit, torchrun stopping the other processes after one failed)
    raises SystemExit, so staging folders are removed instead of left behind. SIGKILL cannot be caught:
    it leaves a hidden ``.OUT.partial-PID`` folder, never a visible half-written ``OUT``."""
    try:
        previous = signal.signal(signal.SIGTERM, _exit_on_term)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_term(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def shared_staging(out: str | Path, what: str, procs: Processes) -> Iterator[Path]:
    """:func:`~skingen.runs.staged_dir` for all processes: rank 0 checks ``out`` and creates the hidden staging
    folder, every process gets its path (or rank 0's error); on success rank 0 renames it to ``out`` after
    the others are done. Write the manifest on rank 0 only, after gathering the rows."""
    with terminate_cleanly(), ExitStack() as stack:
        staging, error = None, None
        if procs.is_main:
            try:
                staging = stack.enter_context(staged_dir(out, what))
            except SkingenError as exc:
                error = str(exc)
        staging, error = procs.broadcast((staging, error))
        if error:
            raise SkingenError(error)
        yield Path(staging)
        procs.barrier()  # rank 0 renames only once every process has written its images
    procs.barrier()      # and the others return only once the folder is in place
