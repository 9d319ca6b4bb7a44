"""mkdocs hook: pages generated from the code when the site is built (the CLI reference, the registry tables)."""

MARKERS = {"<!-- cli-reference -->": "reference_markdown", "<!-- registry -->": "registry_markdown"}


def on_page_markdown(markdown: str, page, config, files) -> str:
    from skingen.cli import reference

    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, getattr(reference, make)())
    return markdown
