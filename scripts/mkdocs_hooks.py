"""mkdocs hook: the CLI reference page is generated from the code when the site is built."""

MARKER = "<!-- cli-reference -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    from skingen.cli.reference import reference_markdown

    return markdown.replace(MARKER, reference_markdown())
