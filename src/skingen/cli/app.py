"""The typer application every command module registers on."""

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Synthetic skin-illness images to augment small clinical data sets.")
