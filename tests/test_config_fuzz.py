"""Every key of every command's config, fed hostile values as ``--set key=value`` text (issue 29): the answer is
a config or one :class:`SkingenError` line, never another exception; a number outside its declared range or not
finite is always refused."""

import dataclasses
import math
import types
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skingen.config import Range, _field_types, load_config
from skingen.errors import SkingenError


def command_configs() -> dict[str, type]:
    from skingen.analysis.measure import AnalyzeConfig
    from skingen.data.layouts import LayoutParams
    from skingen.data.prepare import PrepareConfig
    from skingen.downstream.study import StudyConfig
    from skingen.eval.evaluate import EvaluateConfig
    from skingen.generation.inpaint_folder import InpaintConfig
    from skingen.generation.sample_folder import SampleConfig
    from skingen.inpaint.iterative import IterativeParams
    from skingen.rating.study import RatingStudyConfig
    from skingen.registry import models
    from skingen.train.loop import run_config_class
    from skingen.train.sd_lora import SDLoraRunConfig

    found = {c.__name__: c for c in (AnalyzeConfig, LayoutParams, PrepareConfig, StudyConfig, EvaluateConfig,
                                     InpaintConfig, SampleConfig, IterativeParams, RatingStudyConfig)}
    found |= {f"train {name}": run_config_class(name) for name in models()} | {"train sd-lora": SDLoraRunConfig}
    return found


def leaf_keys(cls: type, prefix: str = "") -> list[tuple[str, typing.Any]]:
    """(dotted key, annotated type) of every non-section key."""
    out = []
    for name, typ in _field_types(cls).items():
        inner = [a for a in typing.get_args(typ) if a is not type(None)] or [typ]
        if dataclasses.is_dataclass(inner[0]):
            out += leaf_keys(inner[0], f"{prefix}{name}.")
        else:
            out.append((prefix + name, typ))
    return out


CASES = [(cname, key, typ) for cname, cls in command_configs().items() for key, typ in leaf_keys(cls)]
HOSTILE = st.sampled_from([".nan", ".inf", "-.inf", "nan", "inf", "0", "-1", "-5", "1e400", "1" + "0" * 400, "",
                           "é", "٣", "[]", "{}", "[1, .nan]", "true", "null", "1e-400", "-0.0", "2147483648"])
VALUES = st.one_of(HOSTILE, st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                   st.text(max_size=8))


def ranges(typ) -> list[Range]:
    for t in [typ, *typing.get_args(typ)]:
        if typing.get_origin(t) is typing.Annotated:
            return [r for r in t.__metadata__ if isinstance(r, Range)]
    return []


@pytest.mark.parametrize("cname,key,typ", CASES, ids=[f"{c}:{k}" for c, k, _ in CASES])
@settings(max_examples=40, deadline=None)
@given(text=VALUES)
def test_a_hostile_value_is_a_config_or_one_clear_error(cname, key, typ, text):
    cls = command_configs()[cname]
    if "\n" in text or "\r" in text:
        text = text.replace("\n", " ").replace("\r", " ")
    try:
        cfg = load_config(cls, overrides=[f"{key}={text}"])
    except SkingenError as exc:
        assert "\n" not in str(exc).strip(), str(exc)
        return
    value = cfg
    for part in key.split("."):
        value = getattr(value, part)
    if isinstance(value, float):
        assert math.isfinite(value), f"{cname} {key}={text!r} accepted as {value}"
    for rule in ranges(typ):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rule.check(value, key)  # raises if a value outside the declared range got through


def _number_type(typ) -> type | None:
    """int or float when ``typ`` is a (possibly optional, possibly annotated) number, else None."""
    args = [a for a in typing.get_args(typ) if a is not type(None)]
    if typing.get_origin(typ) in (typing.Union, types.UnionType) and len(args) == 1:
        typ = args[0]
    base = typing.get_args(typ)[0] if typing.get_origin(typ) is typing.Annotated else typ
    return base if base in (int, float) else None


def test_every_numeric_key_declares_its_range():
    # a key without a range takes 99999999999 px or a negative seed and fails deep inside the work (issue 29)
    missing = [f"{cname}:{key}" for cname, key, typ in CASES if _number_type(typ) and not ranges(typ)]
    assert not missing, f"declare a Range for: {', '.join(missing)}"
