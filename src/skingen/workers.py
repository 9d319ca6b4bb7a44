"""Worker processes, all started one way: ``spawn``, never Linux's default ``fork``.

Why: once torch has run in a process (a matmul, a training step, a sample) its OpenMP / intra-op thread pools
exist, and a ``fork``ed child inherits their locks but not their threads; the child's first parallel op then
waits forever (``make demo`` hung in ``prepare``'s face detector, MTCNN ``load_state_dict``, after the demo had
trained and sampled). ``forkserver`` would also be safe, but its server imports the parent's ``__main__`` and
is Linux-only; ``spawn`` starts a fresh interpreter on every platform (macOS and Windows default to it). The cost
is start-up: each worker imports what it runs (about a second), which is why callers use a pool only for
enough work. Every process pool comes from :func:`process_pool`; DataLoader workers take :data:`START_METHOD`.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

START_METHOD = "spawn"


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` processes started with :data:`START_METHOD`."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(START_METHOD))
