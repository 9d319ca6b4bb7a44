"""Contact sheets and self-contained HTML pages (figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from skingen.runs import atomic_write_text


def contact_sheet(images: list[np.ndarray], captions: list[str] | None = None, columns: int = 8,
                  cell: int = 128) -> np.ndarray:
    """Tile ``uint8 [H,W,3]`` (or ``bool``/``uint8 [H,W]``) images into one ``uint8`` sheet, with captions
    under each image (``\n`` starts a second line). Images larger than ``cell`` are shrunk; those at most
    half of it are enlarged by a whole factor."""
    from PIL import Image, ImageDraw

    if not images:
        return np.full((cell, cell, 3), 255, np.uint8)
    rows = -(-len(images) // columns)
    lines = max((c.count("\n") + 1 for c in captions), default=0) if captions else 0
    caption_h = 12 * lines + 2 if lines else 0
    sheet = Image.new("RGB", (columns * cell, rows * (cell + caption_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, arr in enumerate(images):
        arr = np.asarray(arr)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        im = Image.fromarray(arr).convert("RGB")
        if max(im.size) * 2 <= cell:  # small images (16-64 px samples) are enlarged, pixels kept sharp
            factor = cell // max(im.size)
            im = im.resize((im.width * factor, im.height * factor), Image.NEAREST)
        im.thumbnail((cell, cell))
        x, y = (i % columns) * cell, (i // columns) * (cell + caption_h)
        sheet.paste(im, (x, y))
        if captions:
            for k, line in enumerate(captions[i].split("\n")):
                draw.text((x + 2, y + cell + 12 * k), line[: cell // 6], fill=(0, 0, 0))
    return np.asarray(sheet)


def png_data_uri(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def write_html(path: str | Path, title: str, sections: list[tuple[str, str, np.ndarray | str | None]]) -> None:
    """Write a one-file HTML page. Each section is (heading, caption, image array or HTML snippet or None)."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "img{max-width:100%;border:1px solid #ccc}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style>",
             f"<h1>{html.escape(title)}</h1>"]
    for heading, caption, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><p>{html.escape(caption)}</p>")
        if isinstance(body, np.ndarray):
            parts.append(f"<img src='{png_data_uri(body)}'>")
        elif isinstance(body, str):
            parts.append(body)
    atomic_write_text(path, "\n".join(parts) + "\n")


def html_table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure_to_image(fig) -> np.ndarray:
    """Render a ``matplotlib.figure.Figure`` to ``uint8 [H,W,3]`` with the Agg canvas.

    Figures made with ``Figure(...)`` rather than ``pyplot`` need no display, change no global backend
    and are freed with the object, so library code can draw them safely."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def img_tag(image: np.ndarray, alt: str = "") -> str:
    """An ``<img>`` element with ``uint8`` ``image`` embedded as a PNG data URI."""
    return f"<img alt='{html.escape(alt, quote=True)}' src='{png_data_uri(image)}'>"
