"""A rater's way through a study: start (or resume), the next question, an answer. No HTTP here:
:mod:`skingen.rating.app` is a thin web layer over these functions, and tests call them directly too.

What a rater is shown never holds the answer: a question carries only image tokens, its position and
the mode. Whether an answer is right is decided here, on the server, from the ``images`` table.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skingen.rating.store import connect, read_definition, transaction
from skingen.rating.study import draw_schedule

CHOICES = {"single": ("real", "synthetic"), "pair": ("left", "right"), "likert": ("1", "2", "3", "4", "5")}
MAX_RT_MS = 3_600_000  # an hour: longer is a tab left open, not a response time
EMPTY_RATER_TTL = 3600.0  # seconds a rater session without an answer is kept (it has nothing to lose)
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud or typed on a phone


class RatingError(Exception):
    """A request the study refuses; ``status`` is the HTTP status the web layer answers with (and ``headers``
    any it adds, e.g. ``Retry-After``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers


@dataclass(frozen=True)
class Rater:
    id: str  #: secret session key (cookie); never shown
    label: str  #: pseudonym, e.g. rater-03
    code: str  #: resume code shown to the rater


def _rater(row) -> Rater:
    return Rater(row["id"], f"rater-{row['number']:02d}", row["code"])


def _display(row) -> list[str]:
    """Image tokens of a question in display order: ``[image]``, or a pair's ``[left, right]``."""
    if row["partner"] is None:
        return [row["image"]]
    return [row["partner"], row["image"]] if row["real_right"] else [row["image"], row["partner"]]


def start_rater(study: str | Path) -> Rater:
    """A new pseudonymous rater with its own balanced order (drawn from the study seed and its number)."""
    definition = read_definition(study)
    with connect(study) as con, transaction(con, immediate=True):
        number = con.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM raters").fetchone()[0]
        while True:  # resume codes are short, so check the rare collision
            code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
            if not con.execute("SELECT 1 FROM raters WHERE code = ?", (code,)).fetchone():
                break
        rater = Rater(secrets.token_urlsafe(24), f"rater-{number:02d}", code)
        con.execute("INSERT INTO raters VALUES (?, ?, ?, ?)", (rater.id, number, code, time.time()))
        items = [dict(r) for r in con.execute(
            "SELECT i.id, i.mode, i.source, im.truth FROM items i JOIN images im ON im.token = i.image ORDER BY i.id")]
        rng = np.random.default_rng([definition["config"]["seed"], number])
        schedule = draw_schedule(items, tuple(definition["config"]["modes"]), rng)
        con.executemany("INSERT INTO schedule VALUES (?, ?, ?, ?)",
                        [(rater.id, pos, item, right) for pos, (item, right) in enumerate(schedule)])
    return rater


def expire_empty_raters(study: str | Path, older_than: float = EMPTY_RATER_TTL) -> int:
    """Delete rater sessions started more than ``older_than`` seconds ago that hold no answer (probes, tabs
    opened and left); returns how many. Raters with answers are never touched."""
    cutoff = time.time() - older_than
    with connect(study) as con, transaction(con, immediate=True):
        empty = [r[0] for r in con.execute(
            "SELECT id FROM raters r WHERE created <= ? AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.rater = r.id)",
            (cutoff,))]
        con.executemany("DELETE FROM schedule WHERE rater = ?", [(r,) for r in empty])
        con.executemany("DELETE FROM raters WHERE id = ?", [(r,) for r in empty])
    return len(empty)


def find_rater(study: str | Path, rater_id: str | None = None, code: str | None = None) -> Rater | None:
    """The rater with this session key or resume code (case and spaces ignored), or None."""
    with connect(study) as con:
        if rater_id:
            row = con.execute("SELECT * FROM raters WHERE id = ?", (rater_id,)).fetchone()
        else:
            clean = "".join((code or "").split()).upper().replace("-", "")
            row = con.execute("SELECT * FROM raters WHERE code = ?", (clean,)).fetchone()
    return _rater(row) if row else None


def next_question(study: str | Path, rater: Rater) -> dict:
    """``{position, total, done, finished, mode, item, images}``: the first unanswered question of the
    rater's schedule. ``images`` are tokens in display order (pairs: left, right); ``item`` is an opaque
    handle the answer must carry (the first image's token), so an answer names what it answers."""
    with connect(study) as con:
        total = con.execute("SELECT COUNT(*) FROM schedule WHERE rater = ?", (rater.id,)).fetchone()[0]
        done = con.execute("SELECT COUNT(*) FROM answers WHERE rater = ?", (rater.id,)).fetchone()[0]
        row = con.execute(
            "SELECT s.position, s.real_right, i.mode, i.image, i.partner FROM schedule s JOIN items i ON i.id = s.item "
            "WHERE s.rater = ? AND s.position = ?", (rater.id, done)).fetchone()
    out = {"rater": rater.label, "code": rater.code, "position": done, "total": total, "done": done,
           "finished": row is None}
    if row is not None:
        images = _display(row)
        out.update(mode=row["mode"], images=images, item=images[0])
    return out


def record_answer(study: str | Path, rater: Rater, position: int, item: str, answer: str,
                  confidence: int | None, rt_ms: int) -> None:
    """Store one answer. Refused (:class:`RatingError`): an item handle not in the study (404); a position
    or item other than the rater's next question (409: replayed, skipped ahead or out of order); an answer,
    confidence or response time that does not fit the question (422)."""
    with connect(study) as con, transaction(con, immediate=True):
        done = con.execute("SELECT COUNT(*) FROM answers WHERE rater = ?", (rater.id,)).fetchone()[0]
        row = con.execute(
            "SELECT s.item, s.real_right, i.mode, i.image, i.partner, im.truth FROM schedule s "
            "JOIN items i ON i.id = s.item JOIN images im ON im.token = i.image "
            "WHERE s.rater = ? AND s.position = ?", (rater.id, position)).fetchone()
        if not con.execute("SELECT 1 FROM images WHERE token = ?", (item,)).fetchone():
            raise RatingError(404, "unknown item")
        if position != done:
            why = "already answered" if position < done else "not reached yet"
            raise RatingError(409, f"answer to question {position + 1} refused ({why}); the next is {done + 1}")
        if row is None:
            raise RatingError(409, "every question of this study is answered")
        if item != _display(row)[0]:
            raise RatingError(409, f"answer names another image than question {position + 1}")
        mode = row["mode"]
        if answer not in CHOICES[mode]:
            raise RatingError(422, f"answer must be one of {', '.join(CHOICES[mode])} for a {mode} question")
        if mode == "single":
            if confidence is None or not 1 <= confidence <= 5:
                raise RatingError(422, "a real-or-synthetic answer needs a confidence 1..5")
            correct = int(answer == row["truth"])
        else:
            if confidence is not None:
                raise RatingError(422, f"a {mode} question takes no confidence")
            correct = int((answer == "right") == bool(row["real_right"])) if mode == "pair" else None
        if not 0 <= rt_ms <= MAX_RT_MS:
            raise RatingError(422, f"response time must be 0..{MAX_RT_MS} ms")
        con.execute("INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (rater.id, position, row["item"], answer, correct, confidence, rt_ms, time.time()))
