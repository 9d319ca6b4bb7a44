"""Result tables fit the terminal: too wide for it, they are printed vertically with every header whole."""

import io

from rich.console import Console

from skingen.console import print_table, table_width

HEADER = ["set", "N", "FID", "FID floor", "KID×10³", "KID floor ×10³", "precision", "recall", "density", "coverage",
          "SWD worst level", "memorised", "MS-SSIM", "s/image"]
ROWS = [["dermgan-trainmasks", "200", "296.1", "123 ± 1.4", "199 ± 3", "3.13 ± 0.64", "0.012", "0.000", "0.004",
         "0.010", "3.1× floor (256 px)", "0.0% (0/200)", "0.281", "0.0123"]]


def shown(width: int) -> str:
    out = Console(file=io.StringIO(), width=width, color_system=None)
    print_table(HEADER, ROWS, title="evaluation", caption="N = 200", out=out)
    return out.file.getvalue()


def test_a_wide_table_is_vertical_in_80_columns_with_every_header_and_number_whole():
    assert table_width(HEADER, ROWS) > 80
    text = shown(80)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    for name, value in zip(HEADER[1:], ROWS[0][1:]):
        assert any(line.split() == [*name.split(), *value.split()] for line in text.splitlines()), name
    assert text.splitlines()[1] == "dermgan-trainmasks" and "N = 200" in text


def test_it_is_one_table_when_the_terminal_is_wide_enough():
    text = shown(table_width(HEADER, ROWS))
    header_line = next(line for line in text.splitlines() if "FID floor" in line)
    assert all(name in header_line for name in HEADER)  # every header on one line: a table, not blocks
    assert "…" not in text
