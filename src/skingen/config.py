"""Dataclass configs: defaults < YAML file < ``--set key=value`` overrides; unknown keys are an error.

Configs are frozen dataclasses, possibly nested (a field whose type is another dataclass). Keys are
addressed with dots: ``crop.max_per_photo=6``. Values in ``--set`` are parsed as YAML scalars/lists,
so ``--set split=[0.7,0.15,0.15]`` and ``--set auto_mask=true`` work.

Ranges live with the field: ``margin: Annotated[float, Range(0, 1)] = 0.25`` (or an alias below, e.g.
``Fraction``), and every float must be finite (no config key means anything by NaN or infinity). Both are
checked when a config is resolved (:func:`from_dict`, so :func:`load_config` and every ``--set`` / option that
becomes a key), before any work starts, as one line naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml

from skingen.seeding import MAX_SEED

from skingen.errors import SkingenError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric config key takes: ``lo <= value <= hi`` (``<`` where ``open_lo`` / ``open_hi``);
    None = unbounded on that side."""

    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    open_hi: bool = False

    def check(self, value: Any, key: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        low_bad = self.lo is not None and (value <= self.lo if self.open_lo else value < self.lo)
        high_bad = self.hi is not None and (value >= self.hi if self.open_hi else value > self.hi)
        if low_bad or high_bad:
            raise SkingenError(f"config key '{key}' must be {self}, got {_show(value)}")

    def __str__(self) -> str:
        lo = None if self.lo is None else f"{'>' if self.open_lo else '>='} {self.lo:g}"
        hi = None if self.hi is None else f"{'<' if self.open_hi else '<='} {self.hi:g}"
        return " and ".join(t for t in (lo, hi) if t) or "any number"


def _show(value: Any) -> str:
    """A value for an error line: a 400-digit number is cut, not printed (nor turned into a float)."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} characters)"


Fraction = Annotated[float, Range(0, 1)]                  #: a share, 0..1
Probability = Fraction
Positive = Annotated[float, Range(0, None, open_lo=True)]
NonNegative = Annotated[float, Range(0, None)]
PositiveInt = Annotated[int, Range(1, None)]
NonNegativeInt = Annotated[int, Range(0, None)]
Seed = Annotated[int, Range(0, MAX_SEED)]                 #: a seed


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Convert a YAML value to the annotated type (tuples from lists, floats from ints) and check its range."""
    origin = typing.get_origin(typ)
    if origin is Annotated:
        value = _coerce(value, typing.get_args(typ)[0], key)
        for rule in typ.__metadata__:
            if isinstance(rule, Range):
                rule.check(value, key)
        return value
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise SkingenError(f"config key '{key}' is a section; expected a mapping, got {value!r}")
        return from_dict(typ, value, prefix=f"{key}.")
    if origin is tuple:
        return _coerce_tuple(value, typ, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise SkingenError(f"config key '{key}' expects a mapping, got {_show(value)}")
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, typ, key)
    return _coerce_scalar(value, typ, key)


def _coerce_tuple(value: Any, typ: Any, key: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise SkingenError(f"config key '{key}' expects a list, got {_show(value)}")
    args = typing.get_args(typ)
    if len(args) == 2 and args[1] is Ellipsis or not args:
        return tuple(_coerce(v, args[0] if args else Any, key) for v in value)
    if len(value) != len(args):  # a fixed-length tuple, e.g. a (min, max) range
        raise SkingenError(f"config key '{key}' expects a list of {len(args)} values, got {_show(value)}")
    return tuple(_coerce(v, a, key) for v, a in zip(value, args))


def _coerce_union(value: Any, typ: Any, key: str) -> Any:
    args = [a for a in typing.get_args(typ) if a is not type(None)]
    if value is None:
        return None
    if len(args) == 1:
        return _coerce(value, args[0], key)
    for a in args:  # e.g. bool | str: the first type the value is (no conversion between them)
        base = typing.get_args(a)[0] if typing.get_origin(a) is Annotated else a
        if isinstance(value, typing.get_origin(base) or base):
            return _coerce(value, a, key)
    raise SkingenError(f"config key '{key}' expects {' or '.join(getattr(a, '__name__', str(a)) for a in args)}, "
                       f"got {_show(value)}")


def _coerce_scalar(value: Any, typ: Any, key: str) -> Any:
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value) if abs(value) < 1e300 else math.inf  # float() of a 400-digit int raises
    if typ is float and isinstance(value, str):
        # YAML 1.1 reads 2e-4 (no dot) as a string; take every spelling Python's float() takes
        try:
            value = float(value)
        except ValueError:
            pass
    if typ in (int, float, str, bool) and not isinstance(value, typ):
        # YAML 1.1 reads no/yes/on/off as booleans: train.mixed_precision=no arrives as False
        hint = f" (YAML reads no/yes/on/off as true/false: quote the text, e.g. {key}='no')" \
            if typ is str and isinstance(value, bool) else ""
        raise SkingenError(f"config key '{key}' expects {typ.__name__}, got {_show(value)}{hint}")
    if typ is float and not math.isfinite(value):
        raise SkingenError(f"config key '{key}' must be a finite number, got {_show(value)}")
    return value


def check_fields(config: Any, prefix: str = "") -> None:
    """The range and finiteness checks of :func:`from_dict` on an already built config (for one built in code
    from user values: call it in its ``__post_init__``)."""
    for name, typ in _field_types(type(config)).items():
        value = getattr(config, name)
        if not dataclasses.is_dataclass(value) and not isinstance(value, (tuple, list, dict)):
            _coerce(value, typ, prefix + name)


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build ``cls`` from a (nested) mapping. Unknown keys raise an error listing the valid ones."""
    types = _field_types(cls)
    unknown = sorted(set(data) - set(types))
    if unknown:
        valid = ", ".join(prefix + k for k in types)
        raise SkingenError(f"unknown config key '{prefix}{unknown[0]}' (valid keys: {valid})")
    kwargs = {k: _coerce(v, types[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict (tuples become lists) — what YAML/JSON files store."""

    def plain(v: Any) -> Any:
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(config))


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'crop.max_per_photo=6'`` -> (['crop', 'max_per_photo'], 6)."""
    if "=" not in text:
        raise SkingenError(f"override '{text}' must look like key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise SkingenError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise SkingenError(f"override '{text}': cannot parse value ({exc.__class__.__name__})") from None
    return key.split("."), value


def with_options(overrides: list[str], **given: object) -> list[str | tuple[list[str], Any]]:
    """Config overrides from a command's options: the ``--set`` ones (``key=value`` text, read as YAML), then one
    ``(keys, value)`` pair per named option the user gave (None = not given, so a ``--config`` file's value stays),
    which therefore wins. An option's value stays as typed: ``--faces off`` is the text 'off', never YAML's False.
    ``__`` in a key is a dot (``train__size=64`` -> ``train.size``); paths become text."""
    typed = [(k.split("__"), str(v) if isinstance(v, Path) else v) for k, v in given.items() if v is not None]
    return [*overrides, *typed]


def comma_list(text: str | None) -> list[str] | None:
    """``'a, b'`` -> ``['a', 'b']`` (an option's comma list, empty items dropped); None stays None."""
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def parse_floats(text: str, what: str) -> list[float]:
    """``'0.1,0.5'`` -> ``[0.1, 0.5]`` (finite numbers); a one-line error naming the option ``what`` otherwise."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SkingenError(f"{what}: expected comma-separated numbers, got '{text}'") from None
    if not all(math.isfinite(v) for v in values):
        raise SkingenError(f"{what}: expected finite numbers, got '{text}'")
    return values


def parse_counts(text: str, what: str, most: int = 1_000_000) -> list[int]:
    """``'1,8'`` -> ``[1, 8]``: whole numbers 1..``most``; a one-line error naming the option ``what`` otherwise."""
    values = parse_floats(text, what)
    if not values or any(v != int(v) or not 1 <= v <= most for v in values):
        raise SkingenError(f"{what}: expected whole numbers 1..{most:,}, got '{text}'")
    return [int(v) for v in values]


def load_config(cls: type[T], path: str | Path | None = None,
                overrides: list[str | tuple[list[str], Any]] | None = None,
                base: dict[str, Any] | None = None) -> T:
    """Resolve a config: dataclass defaults, then ``base`` (typed values: a model being fine-tuned, or the options of
    a command that takes no ``--config``, as ``sample`` and ``inpaint``), then the YAML file at ``path``, then
    ``overrides`` (``key=value`` text, or the ``(keys, value)`` pairs of :func:`with_options`)."""
    data: dict[str, Any] = to_dict(cls())
    if base:
        _merge(data, base)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise SkingenError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_bytes()) or {}  # bytes: PyYAML reports bad encodings itself
        except yaml.YAMLError as exc:
            raise SkingenError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
        if not isinstance(loaded, dict):
            raise SkingenError(f"{path}: expected a mapping of config keys at the top level")
        _merge(data, loaded)
    for override in overrides or []:
        keys, value = parse_override(override) if isinstance(override, str) else override
        _merge(data, _nest(keys, value))
    return from_dict(cls, data)


def _nest(keys: list[str], value: Any) -> dict[str, Any]:
    out: Any = value
    for k in reversed(keys):
        out = {k: out}
    return out


def _merge(base: dict[str, Any], new: dict[str, Any]) -> None:
    """Deep-merge ``new`` into ``base``; ``from_dict`` then checks every key against the dataclass."""
    for k, v in new.items():
        if isinstance(base.get(k), dict) and isinstance(v, dict):
            _merge(base[k], v)
        else:
            base[k] = v
