"""The documentation site: the generated CLI reference lists every command and option `--help` shows (issue 33)."""

import re


def _commands(group, path=("skingen",)):
    """(path, command) of every command under ``group`` (a Typer-built click group), itself included."""
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _section(text: str, path: tuple[str, ...]) -> str:
    """The reference's text for one command: from its heading to the next command's."""
    if len(path) == 1:  # the root is the page's title
        return text.split("\n## ", 1)[0]
    head = re.search(rf"^#+ `{re.escape(' '.join(path))}`$", text, re.M)
    assert head, f"{' '.join(path)} is not in the reference"
    rest = text[head.end():]
    nxt = re.search(r"^#+ `skingen", rest, re.M)
    return rest[:nxt.start()] if nxt else rest


def test_the_cli_reference_lists_every_command_and_visible_option_and_no_hidden_one():
    import typer

    from skingen.cli import app
    from skingen.cli.reference import reference_markdown

    text = reference_markdown()
    shown = hidden = 0
    for path, cmd in _commands(typer.main.get_command(app)):
        if cmd.hidden:
            continue
        section = _section(text, path)
        for param in cmd.params:
            for opt in getattr(param, "opts", []):
                listed = re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", section) is not None
                if getattr(param, "hidden", False):
                    assert not listed, f"{' '.join(path)}: hidden {opt} is listed"
                    hidden += 1
                elif opt.startswith("-"):
                    assert listed, f"{' '.join(path)} {opt} is not in the reference"
                    shown += 1
    assert shown > 150 and hidden >= 4  # every command's options; --fake, --size, --size-end, --no-download...
