"""A blinded rating study: which images, which questions, stored once in ``STUDY/``.

``create_study`` draws the images, copies each one re-encoded under a random token to
``STUDY/images/<token>.png`` and writes ``study.json`` and ``study.sqlite`` (:mod:`skingen.rating.store`).
A study folder is never overwritten: serving an existing study continues it.

Blinding: every image is shown as a PNG of one display size (by default the smallest native size among
the chosen images: real 256 px crops are shrunk to a 64 px model's size rather than the model's images
blown up), so neither the file format, the pixel size nor a file name gives the answer away.

Questions (``modes``; each rater answers them in this order, one section per mode):

- ``single``: *real or synthetic?* for one image, then a 1-5 confidence. For each synthetic set ``n``
  images, and as many real images as synthetic ones in all, so chance is 50%.
- ``pair``: *which one is real?* for a real and a synthetic image side by side (two-alternative forced
  choice); ``n`` pairs per synthetic set. Chance is 50% whatever a rater's bias towards "real".
- ``likert``: *how realistic?* 1-5 for one image; ``n`` images per set, real included.

Images are drawn without replacement across modes, so no image is seen twice by a rater (a second look
would be a memory test, not a judgement).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Callable

import numpy as np

from skingen.config import Range, Seed, check_fields
from skingen.data.imagesets import parse_set_spec
from skingen.errors import SkingenError
from skingen.rating.store import MODES, SCHEMA_VERSION, connect, db_path, read_definition, transaction

STUDY_JSON = "study.json"
REAL = "real"
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class RatingStudyConfig:
    modes: tuple[str, ...] = MODES
    n: Annotated[int, Range(1, 100_000)] = 10  #: images (or pairs) per synthetic set and mode; see the module docstring for real ones
    size: Annotated[int, Range(16, 1024)] | None = None  #: display size in px; None = smallest native size among the chosen images
    seed: Seed = 0  #: draws the images, and with the rater's number, each rater's order

    def __post_init__(self) -> None:
        check_fields(self)  # built from the options of `rate serve`, not through load_config
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes or len(set(self.modes)) != len(self.modes):
            raise SkingenError(f"study modes must be distinct values among {', '.join(MODES)}; got "
                               f"{', '.join(self.modes) or 'none'}")


@dataclass(frozen=True)
class Source:
    """One set of images taking part: ``spec`` as given on the command line (``DATA[:split]`` or a folder)."""

    name: str
    spec: str
    truth: str  # real | synthetic


@dataclass
class StudyDefinition:
    name: str
    config: RatingStudyConfig
    sources: list[Source]
    display_size: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # mode -> source -> items
    created: str = ""
    manifests: dict[str, str | None] = field(default_factory=dict)  # source -> manifest sha256
    environment: dict = field(default_factory=dict)  # versions, git sha, command line (runs.environment_info)

    def to_json(self) -> dict:
        return asdict(self)


def sources_from_args(real: str, fakes: list[str]) -> list[Source]:
    """The study's sources from ``--real DATA[:split]`` and ``--synthetic [NAME=]DIR`` options; names unique."""
    from skingen.data.imagesets import open_any

    if not fakes:
        raise SkingenError("give at least one --synthetic folder of synthetic images")
    sources = [Source(REAL, str(real), "real")]
    for spec in fakes:
        parsed = parse_set_spec(spec)
        if parsed.label is not None:
            raise SkingenError(f"--synthetic {spec}: a class label only applies to augment and downstream")
        name, folder = parsed.name, spec.partition("=")[2] if parsed.name else spec  # the folder as typed
        if name is None:
            images = open_any(folder)
            models = images.column_values("model")
            name = models[0] if len(models) == 1 else images.root.name
        sources.append(Source(name, str(folder), "synthetic"))
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SkingenError(f"two sets are both called {', '.join(dupes)}; name them with --synthetic NAME=DIR "
                           f"('{REAL}' is the real set's name)")
    return sources


def _needed(cfg: RatingStudyConfig, source: Source, n_fake: int) -> dict[str, int]:
    """Images each mode takes from ``source``."""
    per_fake = {"single": cfg.n, "pair": cfg.n, "likert": cfg.n}
    per_real = {"single": cfg.n * n_fake, "pair": cfg.n * n_fake, "likert": cfg.n}
    return {m: (per_real if source.truth == "real" else per_fake)[m] for m in cfg.modes}


def _tone(row: dict) -> str:
    """A row's skin-tone category: ``ita_category`` from ``skingen analyze``, else the category of the
    ``condition_ita`` a mask-conditioned sample was painted for, else ``unknown``."""
    from skingen.data.skintone import UNKNOWN, ita_category

    if row.get("ita_category"):
        return row["ita_category"]
    try:
        return ita_category(float(row["condition_ita"]))
    except (KeyError, TypeError, ValueError):
        return UNKNOWN


def create_study(study: str | Path, sources: list[Source], cfg: RatingStudyConfig,
                 progress: Progress | None = None) -> StudyDefinition:
    """Draw the images, write ``STUDY/{study.json, study.sqlite, images/}``; ``STUDY`` must not exist
    (or be empty). Built under a staging name, so an interrupted creation leaves nothing behind."""
    from skingen.data.imagesets import open_any, square_resize
    from skingen.imageio import image_size, read_image, write_image
    from skingen.runs import environment_info, staged_dir, write_json

    study = Path(study)
    sets = {s.name: open_any(s.spec) for s in sources}
    for s in sources:  # a mixed-up option would silently turn the study's key upside down
        wrong = "real" if s.truth == "synthetic" else "synthetic"
        if any(r.get("origin") == wrong for r in sets[s.name].rows):
            raise SkingenError(f"{s.spec} holds {wrong} images (manifest origin={wrong}) but was given as "
                               f"{'--synthetic' if s.truth == 'synthetic' else '--real'}")
    n_fake = sum(s.truth == "synthetic" for s in sources)
    rng = np.random.default_rng(cfg.seed)
    drawn: dict[str, dict[str, list[int]]] = {}
    for s in sources:
        need = _needed(cfg, s, n_fake)
        have = len(sets[s.name])
        if have < sum(need.values()):
            raise SkingenError(f"{s.spec} has {have} images; the study needs {sum(need.values())} from it "
                               f"({', '.join(f'{m} {k}' for m, k in need.items())}, none shown twice): "
                               f"lower --n or use fewer --mode")
        order = rng.permutation(have).tolist()
        drawn[s.name] = {}
        for m, k in need.items():
            drawn[s.name][m], order = order[:k], order[k:]
    chosen = sorted({(name, i) for name, by_mode in drawn.items() for idx in by_mode.values() for i in idx})
    size = cfg.size or min(min(image_size(sets[name].paths[i])) for name, i in chosen)

    definition = StudyDefinition(
        name=study.name, config=cfg, sources=sources, display_size=size,
        counts={m: {s.name: len(drawn[s.name][m]) for s in sources} for m in cfg.modes},
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        manifests={s.name: sets[s.name].manifest_sha256 for s in sources}, environment=environment_info())
    with staged_dir(study, "rating study") as tmp:
        (tmp / "images").mkdir()
        tokens: dict[tuple[str, int], str] = {}
        with connect(tmp, create=True) as con, transaction(con):
            con.execute("INSERT INTO meta VALUES ('schema', ?), ('definition', ?)",
                        (str(SCHEMA_VERSION), json.dumps(definition.to_json())))
            for done, (name, i) in enumerate(chosen):
                images, token = sets[name], secrets.token_urlsafe(16)
                file = f"images/{token}.png"
                write_image(tmp / file, square_resize(read_image(images.paths[i]), size))
                row = images.rows[i] if images.rows else {}
                truth = next(s.truth for s in sources if s.name == name)
                con.execute("INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (token, truth, name, images.ids[i], str(images.paths[i]), _tone(row), file))
                tokens[name, i] = token
                if progress:
                    progress(done + 1, len(chosen), "images")
            for mode in cfg.modes:
                real = iter(drawn[REAL][mode])
                for s in sources:
                    if mode == "pair" and s.truth == "synthetic":
                        for i in drawn[s.name][mode]:
                            con.execute("INSERT INTO items (mode, source, image, partner) VALUES (?, ?, ?, ?)",
                                        (mode, s.name, tokens[REAL, next(real)], tokens[s.name, i]))
                    elif mode != "pair":
                        for i in drawn[s.name][mode]:
                            con.execute("INSERT INTO items (mode, source, image) VALUES (?, ?, ?)",
                                        (mode, s.name, tokens[s.name, i]))
        write_json(tmp / STUDY_JSON, definition.to_json())
    return definition


def balanced_order(groups: list[str], rng: np.random.Generator) -> list[int]:
    """Indices of ``groups`` (one group label per item) in a random order in which every prefix holds each
    group in about its overall share (within one item): a rater who stops early still leaves a balanced set.

    Each group's items are shuffled and spread evenly over [0, 1) with a random jitter (item j of a group
    of g at (j + u)/g, u ~ U(0, 1)); sorting all items by that key interleaves the groups.
    """
    labels = np.asarray(groups)
    keys = np.empty(len(labels))
    for g in dict.fromkeys(groups):
        idx = np.flatnonzero(labels == g)
        idx = idx[rng.permutation(len(idx))]
        keys[idx] = (np.arange(len(idx)) + rng.random(len(idx))) / len(idx)
    return np.argsort(keys, kind="stable").tolist()


def draw_schedule(items: list[dict], modes: tuple[str, ...], rng: np.random.Generator) -> list[tuple[int, int]]:
    """``items`` (dicts with ``id, mode, source, truth``) -> ``[(item id, real_right)]`` in the order a rater
    sees them: the modes' sections in order; within each, balanced by real/synthetic and set
    (:func:`balanced_order`); in pairs, the real image on the right in half of each set's pairs."""
    out: list[tuple[int, int]] = []
    for mode in modes:
        section = [it for it in items if it["mode"] == mode]
        order = balanced_order([f"{it['truth']}/{it['source']}" for it in section], rng)
        right = {}
        for src in dict.fromkeys(it["source"] for it in section):
            ids = [it["id"] for it in section if it["source"] == src]
            # half of the pairs each way; with an odd count the extra one falls on a random side, so a rater
            # who always says "left" scores 50% on average, whatever n is
            sides = rng.permutation((np.arange(len(ids)) + rng.integers(2)) % 2) if mode == "pair" \
                else np.zeros(len(ids), int)
            right.update(zip(ids, sides.tolist()))
        out.extend((section[k]["id"], int(right[section[k]["id"]])) for k in order)
    return out


def create_or_continue(study: str | Path, real: str | None, fakes: list[str], options: dict | None = None,
                       progress: Progress | None = None) -> tuple[dict, bool]:
    """(definition, created): a new study from ``real``/``fakes`` and ``options`` (:class:`RatingStudyConfig`
    keys), or the existing one in ``study`` — which must then be given the same sets and options or none
    (continuing with other images or questions would mix two studies in one database)."""
    study, options = Path(study), {k: v for k, v in (options or {}).items() if v is not None}
    if "modes" in options:
        options["modes"] = tuple(options["modes"])
    if db_path(study).is_file():
        saved = read_definition(study)
        if (real is not None or fakes) and [[s.name, s.spec] for s in sources_from_args(real or "", fakes)] != \
                [[s["name"], s["spec"]] for s in saved["sources"]]:
            raise SkingenError(f"{study} is a study of other image sets; continue it without --real/--synthetic, "
                               f"or give a new --study")
        differ = [k for k, v in options.items() if (tuple(saved["config"][k]) if k == "modes" else saved["config"][k]) != v]
        if differ:
            raise SkingenError(f"{study} was made with other {', '.join(differ)} ({saved['config']}); continue it "
                               f"without them, or give a new --study")
        return saved, False
    if real is None or not fakes:
        raise SkingenError(f"no study in {study} yet: give --real DATA[:split] and --synthetic DIR to create it")
    create_study(study, sources_from_args(real, fakes), RatingStudyConfig(**options), progress)
    return read_definition(study), True
