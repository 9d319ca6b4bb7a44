import dataclasses
from dataclasses import dataclass, field

import pytest

from skingen.config import load_config, to_dict
from skingen.errors import SkingenError


@dataclass(frozen=True)
class Inner:
    k: int = 3
    scales: tuple[float, ...] = (1.0, 0.5)


@dataclass(frozen=True)
class Outer:
    size: int = 256
    rate: float = 0.1
    name: str = "x"
    inner: Inner = field(default_factory=Inner)


def test_defaults_then_yaml_then_overrides(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("size: 64\ninner:\n  k: 5\n")
    cfg = load_config(Outer, cfg_file, ["inner.k=7", "rate=1", "inner.scales=[0.25]"])
    assert cfg == Outer(size=64, rate=1.0, name="x", inner=Inner(k=7, scales=(0.25,)))
    assert isinstance(cfg.rate, float)
    assert to_dict(cfg)["inner"]["scales"] == [0.25]


def test_unknown_key_names_key_and_valid_keys(tmp_path):
    with pytest.raises(SkingenError) as err:
        load_config(Outer, None, ["inner.kk=1"])
    assert "inner.kk" in str(err.value) and "inner.k" in str(err.value) and "inner.scales" in str(err.value)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("sise: 64\n")
    with pytest.raises(SkingenError, match="'sise'.*size"):
        load_config(Outer, cfg_file)


def test_bad_values_are_clear_errors(tmp_path):
    with pytest.raises(SkingenError, match="size.*expects int"):
        load_config(Outer, None, ["size=big"])
    with pytest.raises(SkingenError, match="key=value"):
        load_config(Outer, None, ["size"])
    with pytest.raises(SkingenError, match="not found"):
        load_config(Outer, tmp_path / "missing.yaml")
    with pytest.raises(SkingenError, match=r"expects str, got False \(YAML reads no/yes.*name='no'"):
        load_config(Outer, None, ["name=no"])
    assert load_config(Outer, None, ["name='no'"]).name == "no"


def test_ranges_and_finite_floats_are_checked_where_the_key_is_declared():
    from typing import Annotated

    from skingen.config import Fraction, PositiveInt, Range, check_fields

    @dataclasses.dataclass(frozen=True)
    class Inner:
        share: Fraction = 0.5

    @dataclasses.dataclass(frozen=True)
    class Outer:
        count: PositiveInt = 1
        width: Annotated[float, Range(0, 10, open_lo=True)] = 1.0
        maybe: PositiveInt | None = None
        inner: Inner = dataclasses.field(default_factory=Inner)

    assert load_config(Outer, overrides=["count=3", "width=10", "maybe=2", "inner.share=0"]) == Outer(3, 10.0, 2, Inner(0.0))
    for override, message in [("count=0", "'count' must be >= 1, got 0"), ("width=0", "'width' must be > 0 and <= 10"),
                              ("width=.nan", "'width' must be a finite number"), ("width=-.inf", "finite"),
                              ("maybe=-5", "'maybe' must be >= 1"), ("inner.share=2", "'inner.share' must be >= 0 and <= 1"),
                              ("width=1e400", "finite")]:
        with pytest.raises(SkingenError, match=message):
            load_config(Outer, overrides=[override])
    with pytest.raises(SkingenError, match="'share' must be"):
        check_fields(Inner(share=-1))
