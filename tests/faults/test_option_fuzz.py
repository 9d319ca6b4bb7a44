"""Every option of every command, fed hostile values: a one-line error or success, never a traceback.

Each command has a small valid invocation (``_bases``); one option at a time is replaced by NaN, infinities, 0,
negatives, huge numbers, empty and non-ASCII strings (``HOSTILE``), and by values Hypothesis draws. A value that
is accepted starts the command's work, which is cut off after ``CAP_S`` seconds (the work itself is covered by
the other tests; here an accepted value only has to get past every check without a traceback). A command added
to the CLI without a base invocation fails ``test_every_command_has_a_base``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from skingen.cli import app

runner = CliRunner()

#: seconds an accepted value may run before it is cut off
CAP_S = 3.0

HOSTILE = ("nan", "inf", "-inf", "0", "-1", "-5", "1e308", "99999999999", "", " ", "٣", "１/２", "é", "1/0",
           "0/0", "a,b", "-", "..", "\x00")


#: (command, option, value, outcome) of every hostile value tried in this process (for counting)
OUTCOMES: list[tuple] = []


class _Capped(BaseException):
    """The accepted value's work ran past CAP_S (not an Exception, so no `except Exception` swallows it)."""


@contextmanager
def _cap(seconds: float):
    def fire(*_):
        raise _Capped()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _commands(cmd=None, path=()):
    """(("rate", "serve"), click command) for every leaf command of the app."""
    cmd = cmd or typer.main.get_command(app)
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield path, cmd


COMMANDS = dict(_commands())


def _valued_params(path):
    """The parameters of a command that take a value (flags have none to spoil)."""
    return [p for p in COMMANDS[path].params if not getattr(p, "is_flag", False)]


def _name(param) -> str:
    return param.opts[0] if param.opts[0].startswith("-") else param.name


def outcome(args: list[str]) -> str:
    """Run ``skingen ARGS``: 'ok', 'error' (one line, exit 1), 'usage' (click's error, exit 2), 'ran' (accepted, cut
    off at CAP_S); anything else raises AssertionError with the output."""
    try:
        with _cap(CAP_S):
            res = runner.invoke(app, args)
    except _Capped:
        res = None
    if res is None or isinstance(res.exception, _Capped):
        import matplotlib.pyplot as plt

        plt.close("all")  # a figure cut off half-drawn would spoil the next command's plots
        return "ran"
    text = res.output
    assert "Traceback" not in text, text
    if res.exit_code == 0:
        return "ok"
    assert res.exception is None or isinstance(res.exception, SystemExit), (args, repr(res.exception), text)
    if res.exit_code == 2:
        return "usage"
    assert res.exit_code == 1, (args, text)
    errors = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, (args, text)
    return "error"


def _replace(path, base: list[str], param, value: str) -> list[str]:
    """``base`` (``skingen PATH ...``) with ``param``'s value(s) replaced by ``value`` (or added)."""
    args = list(base)
    if param.opts[0].startswith("-"):
        names = set(param.opts) | set(param.secondary_opts)
        out, skip = [], False
        for a in args:
            if skip:
                skip = False
                continue
            if a in names:
                skip = True
                continue
            out.append(a)
        return [*out, param.opts[0], value]
    # a positional argument: bases give the positionals right after the command, in the command's order
    positionals = [p for p in COMMANDS[path].params if not p.opts[0].startswith("-")]
    args[len(path) + positionals.index(param)] = value
    return args


def _import_everything_skingen_imports() -> None:
    """Import, up front, every module any skingen file imports (also inside functions): a cut-off that landed in
    the middle of a first import would leave a half-made module behind for the next invocation."""
    import ast
    import importlib

    import skingen

    for file in Path(skingen.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                try:
                    importlib.import_module(name)
                except Exception:  # optional extras (peft, ...) that are not installed
                    pass


@pytest.fixture(scope="module", autouse=True)
def count_outcomes():
    """With $SKINGEN_FUZZ_COUNTS=FILE, write how the hostile values ended there: outcome -> count, and the
    accepted ones (to read for silent no-ops)."""
    yield
    if os.environ.get("SKINGEN_FUZZ_COUNTS"):
        from collections import Counter

        accepted = [" ".join((*path, name, repr(value), end)) for path, name, value, end in OUTCOMES
                    if end in ("ok", "ran")]
        Path(os.environ["SKINGEN_FUZZ_COUNTS"]).write_text(json.dumps(
            {"counts": Counter(o[-1] for o in OUTCOMES), "accepted": accepted}, indent=1))


@pytest.fixture(scope="module", autouse=True)
def isolated(tmp_path_factory):
    """Run in an empty folder (a hostile value given as a path, `--out nan`, is a relative folder that must not
    land in the repository), and `rate serve` checks everything, then must not start a server here."""
    import uvicorn

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        mp.setattr(uvicorn, "run", lambda *a, **k: None)
        yield


@pytest.fixture(scope="module")
def bases(tiny_data, demo_raw, trained_run, tmp_path_factory):
    """path -> callable(tmp) -> a valid, quick invocation of that command writing under ``tmp``."""
    from skingen.rating.study import RatingStudyConfig, create_study, sources_from_args

    from tests.downstream.conftest import write_planted

    _import_everything_skingen_imports()
    root = tmp_path_factory.mktemp("fuzz")
    tiny_data = Path(shutil.copytree(tiny_data, root / "data"))  # `analyze` adds columns to its manifest
    two_classes = write_planted(root / "planted", {"a": 12, "b": 12})
    shard = root / "shard"
    res = runner.invoke(app, ["sample", str(trained_run), "--out", str(shard), "--n", "8", "--batch", "8", "--cpu",
                              "--shard", "0/1"])
    assert res.exit_code == 0, res.output
    study = root / "study"
    create_study(study, sources_from_args(str(tiny_data), [str(shard)]), RatingStudyConfig(n=2))
    run, data = str(trained_run), str(tiny_data)
    return {
        ("version",): lambda t: ["version"],
        ("list",): lambda t: ["list"],
        ("info",): lambda t: ["info", run],
        ("prepare",): lambda t: ["prepare", str(demo_raw / "images"), "--out", f"{t}/o", "--masks", str(demo_raw / "masks"),
                                 "--size", "32", "--workers", "1", "--faces", "keep"],
        ("analyze",): lambda t: ["analyze", data, "--out", f"{t}/o", "--no-autoencoder", "--workers", "1"],
        ("demo-data",): lambda t: ["demo-data", f"{t}/o", "--n", "2"],
        ("demo",): lambda t: ["demo", "--out", f"{t}/o", "--n", "4", "--size", "32", "--train-images", "8"],
        ("train",): lambda t: ["train", "dcgan", "--data", data, "--config", "tiny/dcgan", "--set", "model.size=16",
                               "--set", "train.images=8", "--set", "train.batch=4", "--outdir", f"{t}/o", "--cpu"],
        ("sample",): lambda t: ["sample", run, "--out", f"{t}/o", "--n", "1", "--batch", "1", "--cpu"],
        ("inpaint",): lambda t: ["inpaint", "opencv:telea", "--from", data, "--out", f"{t}/o", "--n", "1", "--steps", "1"],
        ("tone",): lambda t: ["tone", data, "--ita", "-20..0", "--out", f"{t}/o", "--n", "2"],
        ("merge",): lambda t: ["merge", f"{t}/o", str(shard)],
        ("plan",): lambda t: ["plan", run, "--n", "1", "--calibrate", "1", "--cpu"],
        ("evaluate",): lambda t: ["evaluate", "--real", data, "--synthetic", str(shard), "--out", f"{t}/o", "--features",
                                  "pixels:8", "--metrics", "fid", "--no-cache", "--device", "cpu"],
        ("augment",): lambda t: ["augment", "--real", data, "--synthetic", str(shard), "--out", f"{t}/o",
                                 "--gate-features", "pixels:8"],
        ("downstream",): lambda t: ["downstream", "--data", str(two_classes), "--out", f"{t}/o", "--fractions", "1", "--seeds", "1",
                                    "--ratios", "0", "--no-classical", "--cpu"],
        ("rate", "serve"): lambda t: ["rate", "serve", "--study", f"{t}/study", "--real", data, "--synthetic", str(shard),
                                      "--n", "2"],
        ("rate", "report"): lambda t: ["rate", "report", str(study), "--out", f"{t}/o"],
    }


def test_every_command_has_a_base(bases):
    assert set(COMMANDS) == set(bases), "give the new command a quick valid invocation in bases()"


def test_every_base_succeeds(bases):
    """The bases are valid: a hostile value, not the rest of the line, is what the other tests spoil."""
    for path, base in bases.items():
        with tempfile.TemporaryDirectory() as t:
            args = base(t)
            assert outcome(args) in ("ok", "ran"), runner.invoke(app, args).output


PARAMS = [(path, _name(p)) for path in COMMANDS for p in _valued_params(path)]


def _param(path, name):
    return next(p for p in _valued_params(path) if _name(p) == name)


@pytest.mark.parametrize(("path", "name"), PARAMS, ids=[" ".join(p) + " " + n for p, n in PARAMS])
def test_hostile_values(bases, path, name):
    param = _param(path, name)
    failures = []
    for value in HOSTILE:
        with tempfile.TemporaryDirectory() as t:
            try:
                OUTCOMES.append((path, name, value, outcome(_replace(path, bases[path](t), param, value))))
            except AssertionError as e:
                failures.append(f"{value!r}: {str(e)[-600:]}")
    assert not failures, "\n\n".join(failures)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_drawn_values(bases, data):
    path, name = data.draw(st.sampled_from(PARAMS))
    value = data.draw(st.one_of(st.floats().map(repr), st.integers().map(str), st.text(max_size=12),
                                st.builds(lambda a, b: f"{a}/{b}", st.integers(-3, 1 << 40), st.integers(-3, 1 << 40))))
    with tempfile.TemporaryDirectory() as t:
        outcome(_replace(path, bases[path](t), _param(path, name), value))
