"""The ``skingen`` command line: thin wrappers over library calls, one sub-command per verb.

Options only: each command gathers its options and calls the library (ARCHITECTURE.md, "one shape for
every command"). The commands live by area in this package's modules; importing them registers them.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from skingen import __version__
from skingen.console import console, print_config, user_errors

from skingen.cli.app import app


@app.command()
def version() -> None:
    """Print the skingen version."""
    print(__version__)


@app.command("list")
def list_models() -> None:
    """List the registered generative models, inpainting backends and training presets."""
    from skingen.models.sd_lora import SDLoraModel
    from skingen.registry import models

    table = Table(show_header=True, caption="* required to sample")
    for col in ("model", "what", "conditions", "sampling options"):
        table.add_column(col)
    for name, cls in {**models(), SDLoraModel.name: SDLoraModel}.items():  # sd-lora: trained by its own trainer
        conditions = [f + ("*" if f in cls.requires else "") for f in sorted(cls.supports)]
        table.add_row(name, cls.description, ", ".join(conditions) or "none",
                      ", ".join(sorted(cls.sample_options)) or "none")
    Console().print(table)
    from skingen.generation.backends import backends

    table = Table(show_header=True, title="inpainting backends (skingen inpaint RUN [--backend NAME])")
    for col in ("backend", "RUN"):
        table.add_column(col)
    for backend in backends().values():
        table.add_row(backend.name, backend.help)
    Console().print(table)
    from skingen.train.loop import presets

    Console().print("presets (train --config NAME): " + ", ".join(presets()))


@app.command()
def info(run: Path = typer.Argument(..., help="Run folder or checkpoint folder.")) -> None:
    """Describe a run: model, data, progress, parameters, checkpoints and the latest training stats."""
    from skingen.train.info import describe_run

    with user_errors():
        rows, model_config = describe_run(run)
    table = Table(show_header=False, title=str(run))
    table.add_column(style="bold")
    table.add_column()
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    console.print("resolved model config:")
    print_config(model_config)


# importing the modules registers their commands, after the ones above, in this order in `skingen --help`
from skingen.cli import data, generate, study, rate  # noqa: E402,F401


def main() -> None:
    app(prog_name="skingen")


__all__ = ["app", "main"]
