"""The command-line reference page of the documentation (``docs/cli.md``), generated from the Typer app when the
site is built (``scripts/mkdocs_hooks.py``): it is made from the same objects ``skingen COMMAND --help`` prints, so the two
cannot drift. Hidden options (old names kept for one release) are left out, as ``--help`` leaves them out."""

from __future__ import annotations


def reference_markdown() -> str:
    """Markdown for every command: usage, arguments, options with their help, defaults and ranges."""
    import typer
    from typer.cli import get_docs_for_click

    from skingen.cli import app

    command = typer.main.get_command(app)
    return get_docs_for_click(obj=command, ctx=typer.Context(command), name="skingen", title="Command-line reference")


def registry_markdown() -> str:
    """The registered model families, inpainting backends and training presets (what ``skingen list`` prints) as
    Markdown tables, for the documentation's models page."""
    from skingen.generation.backends import backends
    from skingen.registry import models
    from skingen.train.loop import presets

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| model | what | conditions (* required to sample) | sampling options |", "|---|---|---|---|"]
    for name, cls in models().items():
        conditions = [f + ("*" if f in cls.requires else "") for f in sorted(cls.supports)]
        lines.append(f"| `{name}` | {cell(cls.description)} | {', '.join(conditions) or 'none'} | "
                     f"{', '.join(sorted(cls.sample_options)) or 'none'} |")
    lines += ["", "| inpainting backend | RUN |", "|---|---|"]
    lines += [f"| `{b.name}` | {cell(b.help)} |" for b in backends().values()]
    lines += ["", "Training presets (`skingen train MODEL --config NAME`): "
              + ", ".join(f"`{p}`" for p in presets()) + "."]
    return "\n".join(lines)
