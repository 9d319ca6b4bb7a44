"""The rating study's database: one SQLite file (WAL mode) per study, ``STUDY/study.sqlite``.

Tables (all written by :mod:`skingen.rating.study` and :mod:`skingen.rating.app`, read by
:mod:`skingen.rating.report`):

- ``meta(key, value)``: ``schema`` version and ``definition`` (the study definition as JSON, the same
  as ``study.json``).
- ``images(token, truth, source, image_id, path, ita_category, file)``: every image shown. ``token`` is a
  random opaque name (the only thing a page ever sees); ``truth`` is ``real`` or ``synthetic``;
  ``source`` the set's name (``real`` or the synthetic set's name, usually its model); ``path`` the
  original file (never served); ``file`` the re-encoded copy under ``STUDY/images/`` that is served.
- ``items(id, mode, source, image, partner)``: one question. ``single`` and ``likert`` show ``image``;
  ``pair`` shows the real ``image`` and the synthetic ``partner`` side by side (``source`` = the
  synthetic set), in an order fixed per rater by ``schedule.real_right``.
- ``raters(id, number, code, created)``: ``id`` is the secret session key held in the rater's cookie;
  ``number`` gives the pseudonym (``rater-03``); ``code`` is the short resume code shown to the rater.
- ``schedule(rater, position, item, real_right)``: each rater's own balanced order, drawn once when the
  rater starts and stored, so a resumed session (or a restarted server) continues the same order.
- ``answers(rater, position, item, answer, correct, confidence, rt_ms, ts)``: the primary key
  ``(rater, position)`` makes a replayed answer impossible at the database level, not only in the app.
  ``correct`` is 1/0 for ``single`` and ``pair`` (``NULL`` for ``likert``), decided on the server.

Every connection is opened per use (``connect``): SQLite connections are cheap and this keeps the
server's worker threads independent; WAL lets readers go on while one answer is written.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

from skingen.errors import SkingenError

DB_NAME = "study.sqlite"
SCHEMA_VERSION = 1
MODES = ("single", "pair", "likert")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    token TEXT PRIMARY KEY, truth TEXT NOT NULL CHECK (truth IN ('real', 'synthetic')),
    source TEXT NOT NULL, image_id TEXT NOT NULL, path TEXT NOT NULL, ita_category TEXT NOT NULL,
    file TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, mode TEXT NOT NULL CHECK (mode IN ('single', 'pair', 'likert')),
    source TEXT NOT NULL, image TEXT NOT NULL REFERENCES images, partner TEXT REFERENCES images);
CREATE TABLE IF NOT EXISTS raters (
    id TEXT PRIMARY KEY, number INTEGER NOT NULL UNIQUE, code TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS schedule (
    rater TEXT NOT NULL REFERENCES raters, position INTEGER NOT NULL, item INTEGER NOT NULL REFERENCES items,
    real_right INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (rater, position), UNIQUE (rater, item));
CREATE TABLE IF NOT EXISTS answers (
    rater TEXT NOT NULL REFERENCES raters, position INTEGER NOT NULL, item INTEGER NOT NULL REFERENCES items,
    answer TEXT NOT NULL, correct INTEGER, confidence INTEGER, rt_ms INTEGER NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY (rater, position), UNIQUE (rater, item));
"""


def db_path(study: str | Path) -> Path:
    return Path(study) / DB_NAME


@contextmanager
def connect(study: str | Path, create: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection to ``STUDY/study.sqlite`` in WAL mode; commits on success, rolls back on error."""
    path = db_path(study)
    if not create and not path.is_file():
        raise SkingenError(f"no rating study in {study} (no {DB_NAME}); create one with `skingen rate serve "
                           f"--real ... --synthetic ... --study {study}`")
    try:
        con = sqlite3.connect(path, timeout=30, isolation_level=None)  # explicit BEGIN/COMMIT below
    except sqlite3.Error as exc:
        raise SkingenError(f"{path}: cannot open the study database ({exc})") from None
    con.row_factory = sqlite3.Row
    try:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed answer survives a process crash
            con.execute("PRAGMA foreign_keys=ON")
            if create:
                con.executescript(_SCHEMA)
            else:
                _check_schema(con, path)
        except sqlite3.DatabaseError as exc:  # a damaged or foreign file, a read-only folder
            raise SkingenError(f"{path}: not a usable skingen study database ({exc})") from None
        yield con
    finally:
        con.close()


# Writers of one process queue here rather than in SQLite's busy handler, which sleeps with a growing
# back-off and lets later writers overtake: with 50 simulated raters flooding the server the p95 / p99 of
# an answer were 0.79 / 1.62 s that way and 0.35 / 0.44 s with this lock (bench/rate_load.py, 2-core VM).
# SQLite's own lock still guards against other processes.
_WRITE_LOCK = threading.Lock()


@contextmanager
def transaction(con: sqlite3.Connection, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    """``BEGIN [IMMEDIATE]`` ... ``COMMIT`` (``ROLLBACK`` on error). IMMEDIATE takes the write lock at once,
    so a read-check-insert sequence (the next position of a rater) cannot interleave with another."""
    with _WRITE_LOCK if immediate else nullcontext():
        con.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def _check_schema(con: sqlite3.Connection, path: Path) -> None:
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise SkingenError(f"{path}: not a skingen study database ({exc})") from None
    if row is None or str(row["value"]) != str(SCHEMA_VERSION):
        raise SkingenError(f"{path}: study schema {row and row['value']} is not {SCHEMA_VERSION} "
                           f"(made by another skingen version)")


def read_definition(study: str | Path) -> dict:
    """The study definition stored with the answers (see :func:`skingen.rating.study.create_study`)."""
    with connect(study) as con:
        row = con.execute("SELECT value FROM meta WHERE key = 'definition'").fetchone()
    if row is None:
        raise SkingenError(f"{db_path(study)}: holds no study definition (not made by `skingen rate serve`)")
    return json.loads(row["value"])


def answer_rows(study: str | Path) -> list[dict]:
    """Every answer joined with its item and images, in (rater, position) order: the report's input.

    Keys: ``rater`` (pseudonym ``rater-NN``), ``position``, ``mode``, ``source`` (``real`` or the synthetic
    set), ``truth`` (of the image for single/likert; ``pair`` for pairs), ``image``/``partner`` (tokens),
    ``image_id``/``partner_id``, ``ita_category``/``partner_ita_category``, ``answer``, ``correct``
    (1/0/None), ``confidence`` (1-5/None), ``rt_ms``, ``ts``, ``real_right`` (pairs: 1 = real on the right).
    """
    sql = """
        SELECT printf('rater-%02d', r.number) AS rater, a.position, i.mode, i.source,
               CASE WHEN i.mode = 'pair' THEN 'pair' ELSE im.truth END AS truth,
               i.image, i.partner, im.image_id, p.image_id AS partner_id,
               im.ita_category, p.ita_category AS partner_ita_category,
               a.answer, a.correct, a.confidence, a.rt_ms, a.ts, s.real_right, i.id AS item
        FROM answers a JOIN raters r ON r.id = a.rater JOIN items i ON i.id = a.item
        JOIN images im ON im.token = i.image LEFT JOIN images p ON p.token = i.partner
        JOIN schedule s ON s.rater = a.rater AND s.position = a.position
        ORDER BY r.number, a.position"""
    with connect(study) as con:
        return [dict(r) for r in con.execute(sql)]
