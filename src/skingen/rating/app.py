"""The rating web app (FastAPI): a thin HTTP layer over :mod:`skingen.rating.session`.

Routes (JSON unless said otherwise):

- ``GET /`` the single page (HTML); ``GET /static/rate.js``, ``/static/rate.css`` (read into memory at start:
  no path from a request ever reaches the file system).
- ``GET /api/study`` what the start page needs: the study name, its modes and whether a code is asked.
- ``POST /api/session`` ``{access_code?, resume_code?}``: starts a new pseudonymous rater (or resumes one by
  its code) and sets the session cookie; answers the rater's next question.
- ``GET /api/next`` the next question of the cookie's rater: ``{position, total, done, finished, mode, item,
  images: ["/img/<token>", ...]}`` — tokens only, never a source, a file name or the answer.
- ``POST /api/answer`` ``{position, item, answer, confidence, rt_ms}``; answers the next question.
  404 unknown item, 409 replayed / out-of-order answer, 422 an answer that does not fit the question.
- ``GET /img/<token>`` one image (PNG), for a rater with a session only.

Security: the session key is a random 192-bit token in an HttpOnly, SameSite=Strict cookie; a study with an
access code (required off loopback by the CLI) refuses to start a session without it; wrong access codes
and unknown resume codes are counted per client address (:class:`~skingen.rating.guards.AddressLimit`: 20 in
10 minutes, then 429 with ``Retry-After``; the client address is the TCP peer unless ``skingen rate serve
--forwarded-allow-ips`` names a proxy), and so are new rater sessions (10 a minute). Every reply, errors and 500s included, carries ``Cache-Control: no-store``, ``nosniff`` and a
Content-Security-Policy allowing only this origin. Request bodies are capped at 4 KB (413); a 422 names the
field and the problem, never the value sent. Only the Host names the server was started for are answered
(400 otherwise: a web page cannot reach the study by DNS rebinding). Every image is served padded to one
byte size (:func:`~skingen.rating.guards.pad_png`), so its size says nothing about real or synthetic. Rater
sessions without an answer expire after an hour and are left out of the report.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Literal

from fastapi import Cookie, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from skingen.rating.guards import (HEADERS, MAX_BODY, NEW_RATERS_PER_MINUTE, AddressLimit, BodyLimit, SecurityHeaders,
                                   pad_png, served_hosts)
from skingen.rating.session import (EMPTY_RATER_TTL, Rater, RatingError, expire_empty_raters, find_rater,
                                    next_question, record_answer, start_rater)
from skingen.rating.store import connect, db_path, read_definition

COOKIE = "skingen_rater"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_STATIC = {"rate.js": "text/javascript", "rate.css": "text/css"}


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    access_code: str | None = Field(default=None, max_length=128)
    resume_code: str | None = Field(default=None, max_length=32)


class AnswerIn(BaseModel):
    """One answer; its checks against the question happen in :func:`skingen.rating.session.record_answer`."""

    model_config = ConfigDict(extra="forbid")
    position: int = Field(ge=0, le=1_000_000)
    item: str = Field(pattern=_TOKEN.pattern)
    answer: Literal["real", "synthetic", "left", "right", "1", "2", "3", "4", "5"]
    confidence: int | None = Field(default=None, ge=1, le=5)
    rt_ms: int = Field(ge=0)


def create_app(study: str | Path, access_code: str | None = None, https: bool = False,
               guard: AddressLimit | None = None, hosts: list[str] | None = None, max_body: int = MAX_BODY,
               sessions: AddressLimit | None = None):
    """The app serving one existing study folder (see :func:`skingen.rating.study.create_study`);
    ``https``: served over TLS, so the session cookie is marked ``Secure`` (never sent over plain HTTP);
    ``hosts``: Host names answered (default: the loopback names, :func:`~skingen.rating.guards.served_hosts`);
    ``guard``: wrong codes allowed per address (default 20 in 10 minutes); ``sessions``: new raters allowed per
    address (default :data:`~skingen.rating.guards.NEW_RATERS_PER_MINUTE` a minute)."""
    study = Path(study)
    definition = read_definition(study)  # a clear error now rather than at the first request
    with connect(study) as con:  # every image is served padded to one size: the largest file + one chunk
        files = [study / r["file"] for r in con.execute("SELECT file FROM images")]
    served_size = max((f.stat().st_size for f in files), default=0) + 12

    @asynccontextmanager
    async def lifespan(app):
        # Each request opens its own connection (store.connect); when the last one closes, SQLite
        # checkpoints and deletes the WAL file and syncs, several times per answer. One idle connection
        # held for the server's life avoids that: bench/rate_load.py measured 1 rater at 104-120 -> 161-170
        # answers/s on the 2-core VM. Durability is unchanged.
        keeper = sqlite3.connect(db_path(study))
        keeper.execute("SELECT 1 FROM meta LIMIT 1")
        yield
        keeper.close()

    app = FastAPI(title=f"skingen rating: {definition['name']}", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    # added last = outermost: the headers reach the replies of the two guards inside them as well
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts or served_hosts("127.0.0.1"))
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_middleware(SecurityHeaders)
    _answer_errors(app)
    _serve_pages(app, definition, access_code is not None)
    _serve_rating(app, study, access_code, https, served_size,
                  guard or AddressLimit(20, 600.0, "wrong codes", "then the right code lets you in"),
                  sessions or AddressLimit(NEW_RATERS_PER_MINUTE, 60.0, "new rating sessions",
                                           "then start again (or resume yours with its code)"))
    return app


def _answer_errors(app) -> None:
    """Refusals, invalid requests and crashes as short JSON replies that never echo what was sent."""

    @app.exception_handler(RatingError)
    async def refused(request: Request, exc: RatingError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        # the field and what is wrong, never the value sent (it could be megabytes, or a script)
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: "
                    f"{str(e.get('msg', 'invalid'))[:120]}" for e in exc.errors()[:5]]
        return JSONResponse({"detail": "invalid request: " + "; ".join(problems)}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        # runs in Starlette's outermost error layer, outside SecurityHeaders: add the headers here
        return JSONResponse({"detail": "internal error"}, status_code=500, headers=HEADERS)


def _serve_pages(app, definition: dict, needs_code: bool) -> None:
    """The page, its static files and the study's public description (no session needed)."""
    assets = resources.files("skingen.rating") / "static"
    page = (assets / "index.html").read_text(encoding="utf-8")
    static = {name: (assets / name).read_bytes() for name in _STATIC}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in static:
            raise RatingError(404, "not found")
        return Response(static[name], media_type=_STATIC[name])

    @app.get("/api/study")
    def study_info() -> dict:
        return {"name": definition["name"], "modes": definition["config"]["modes"], "needs_code": needs_code}


def _serve_rating(app, study: Path, access_code: str | None, https: bool, served_size: int, guard: AddressLimit,
                  sessions: AddressLimit) -> None:
    """A rater's session, questions, answers and images (``served_size``: every image padded to it)."""

    def rater_of(key: str | None) -> Rater:
        rater = find_rater(study, rater_id=key) if key and _TOKEN.match(key) else None
        if rater is None:
            raise RatingError(401, "no rating session: start or resume one on the first page")
        return rater

    def question(rater: Rater) -> dict:
        q = next_question(study, rater)
        if not q["finished"]:
            q["images"] = [f"/img/{t}" for t in q["images"]]
        return q

    @app.post("/api/session")
    def open_session(body: SessionIn, request: Request) -> Response:
        who = request.client.host if request.client else "?"
        guard.check(who)
        if access_code is not None and not secrets.compare_digest((body.access_code or "").encode(),
                                                                  access_code.encode()):
            guard.add(who)
            raise RatingError(403, "wrong access code")
        if body.resume_code:
            rater = find_rater(study, code=body.resume_code)
            if rater is None:
                guard.add(who)
                raise RatingError(404, "no rater with this resume code")
        else:
            sessions.check(who)  # before: 22,000 raters a minute from 4 loopback clients (+61 MB of database)
            expire_empty_raters(study, EMPTY_RATER_TTL)
            rater = start_rater(study)
            sessions.add(who)
        response = JSONResponse(question(rater))
        response.set_cookie(COOKIE, rater.id, httponly=True, samesite="strict", secure=https,
                            max_age=60 * 60 * 24 * 90)
        return response

    @app.get("/api/next")
    def next_(skingen_rater: str | None = Cookie(default=None)) -> dict:
        return question(rater_of(skingen_rater))

    @app.post("/api/answer")
    def answer(body: AnswerIn, skingen_rater: str | None = Cookie(default=None)) -> dict:
        rater = rater_of(skingen_rater)
        record_answer(study, rater, body.position, body.item, body.answer, body.confidence, body.rt_ms)
        return question(rater)

    @app.get("/img/{token}")
    def image(token: str, skingen_rater: str | None = Cookie(default=None)) -> Response:
        rater_of(skingen_rater)
        if not _TOKEN.match(token):
            raise RatingError(404, "not found")
        with connect(study) as con:
            row = con.execute("SELECT file FROM images WHERE token = ?", (token,)).fetchone()
        if row is None:
            raise RatingError(404, "not found")
        # ``file`` comes from the study's own table (written as images/<token>.png), never from the request
        return Response(pad_png((study / row["file"]).read_bytes(), served_size), media_type="image/png")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_host(host: str, allow_remote: bool, access_code: str | None) -> str | None:
    """The access code to require: off loopback only with ``allow_remote``, and then always with a code
    (a new random one when none is given, to be handed to the raters)."""
    from skingen.errors import SkingenError

    if access_code is not None and not (4 <= len(access_code) <= 128 and access_code.isprintable()
                                        and access_code.strip() == access_code):
        raise SkingenError("--access-code must be 4..128 printable characters without surrounding spaces")
    if host in LOOPBACK:
        return access_code
    if not allow_remote:
        raise SkingenError(f"--host {host} lets other machines reach the study; add --allow-remote to mean it "
                           f"(raters then need an access code)")
    return access_code or secrets.token_urlsafe(9)
