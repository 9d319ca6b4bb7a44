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
