"""What the command line shows: one-line errors, progress bars and result tables (the CLI's only output code).

Tables fit the terminal: a result table that is wider than the terminal is shown vertically instead, one
block per row with a ``column: value`` line per cell, never with headers squeezed to "KID…". The full table
is always in the command's report files.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from skingen.errors import SkingenError

console = Console(stderr=True, soft_wrap=True)  # soft wrap: an error stays one line


@contextmanager
def user_errors() -> Iterator[None]:
    """Bad input and refusals end in one clear line and exit code 1, not a traceback."""
    try:
        yield
    except SkingenError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    except OSError as exc:  # disk full, permissions, a vanished file: the system's words and the file, one line
        where = f" ({exc.filename})" if exc.filename else ""
        console.print(f"[bold red]error:[/] {escape(exc.strerror or str(exc))}{escape(where)}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/] — nothing half-written was kept")
        raise typer.Exit(130) from None


@contextmanager
def progress_bar(description: str) -> Iterator:
    """A transient rich progress bar; yields ``update(done, total, stage=None)``."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int, stage: str | None = None) -> None:
            bar.update(task, completed=done, total=total, **({"description": stage} if stage else {}))

        yield update


def status(line: str) -> None:
    """One plain line (training ticks, study progress): no markup, no highlighting."""
    console.print(line, highlight=False, markup=False)


def note(text: str) -> None:
    console.print(f"[yellow]note:[/] {escape(text)}", highlight=False)


def warning(text: str) -> None:
    console.print(f"[bold yellow]warning:[/] {escape(text)}", highlight=False)


def is_main_process() -> bool:
    """False in the other processes of a torchrun / accelerate launch job, so a summary prints once."""
    return os.environ.get("RANK", "0") == "0"


def print_config(cfg: object) -> None:
    """A resolved config as YAML on stdout (``--dry-run``)."""
    import yaml

    from skingen.config import to_dict

    print(yaml.safe_dump(to_dict(cfg) if not isinstance(cfg, dict) else cfg, sort_keys=False), end="")


def default_device(cpu: bool) -> str:
    """``cuda`` when a GPU is there and ``--cpu`` was not given, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() and not cpu else "cpu"


def default_workers() -> int:
    """Worker processes when ``--workers`` is 0: the CPUs this process may use, at most 8."""
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def table_width(header: list[str], rows: list[list[str]]) -> int:
    """Characters a rich table of these cells needs on one line each (borders and one space of padding)."""
    cells = [header, *rows]
    widths = [max(len(str(r[i])) for r in cells if i < len(r)) for i in range(len(header))]
    return sum(widths) + 3 * len(widths) + 1


def print_table(header: list[str], rows: list[list[str]], title: str | None = None, caption: str | None = None,
                keys: int = 1, out: Console | None = None) -> None:
    """Print ``rows`` as a table when it fits the terminal, else vertically: per row a heading of its first
    ``keys`` cells, then one ``column  value`` line per other cell (so an 80-column terminal shows every
    header and number whole)."""
    out = out or console
    if table_width(header, rows) <= out.width:
        table = Table(title=title, caption=caption, show_header=True)
        for i, col in enumerate(header):
            table.add_column(col, justify="left" if i < keys else "right", no_wrap=True)
        for row in rows:
            table.add_row(*row)
        out.print(table)
        return
    if title:
        out.print(f"[bold]{escape(title)}[/]", highlight=False)
    label = max((len(h) for h in header[keys:]), default=0)
    for row in rows:
        out.print(f"[bold]{escape(' · '.join(row[:keys]))}[/]", highlight=False)
        for name, value in zip(header[keys:], row[keys:]):
            out.print(f"  {name:<{label}}  {value}", highlight=False, markup=False)
    if caption:
        out.print(caption, highlight=False, markup=False)
