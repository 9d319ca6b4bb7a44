"""ASGI guards around the rating app: request-body cap, allowed Host names, security headers on every reply,
and PNG padding so a served image's byte size says nothing about it.

Why by hand: Starlette has no body-size limit (its ``Request.body()`` reads everything), and its
``@app.middleware("http")`` layer sits inside the error handler, so 500s and the replies of other middleware
went out without the headers; a plain ASGI wrapper outside them sees every reply.
"""

from __future__ import annotations

import json
import math
import re
import socket
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Iterable

from skingen.errors import SkingenError
from skingen.rating.session import RatingError

HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'self'; img-src 'self'; frame-ancestors 'none'"}
MAX_BODY = 4096  #: bytes: an answer or a session request is under 300
NEW_RATERS_PER_MINUTE = 10  #: per client address: a lab behind one NAT starts a few raters a minute, a script thousands


class AddressLimit:
    """At most ``limit`` events (wrong codes, new rater sessions) per client address within ``window`` seconds;
    past it that address is refused (429, with Retry-After) until its oldest event leaves the window. Wrong
    codes: neither the access code nor a resume code (which opens another rater's session) can be guessed by
    trying. New sessions: a script cannot fill the study database with empty raters."""

    def __init__(self, limit: int, window: float, what: str, then: str, clock=time.monotonic):
        self.limit, self.window, self.what, self.then, self.clock = limit, window, what, then, clock
        self._events: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def check(self, who: str) -> None:
        now = self.clock()
        with self._lock:
            recent = [t for t in self._events.get(who, []) if now - t < self.window]
            self._events[who] = recent
            if len(recent) >= self.limit:
                wait = max(1, math.ceil(self.window - (now - recent[0])))
                until = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + wait))
                raise RatingError(429, f"too many {self.what} from this address; locked out for {wait} s more "
                                       f"(until {until}), {self.then}", headers={"Retry-After": str(wait)})

    def add(self, who: str) -> None:
        with self._lock:
            self._events.setdefault(who, []).append(self.clock())


async def _send_json(send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds :data:`HEADERS` to every HTTP reply that passes through (set as the outermost user middleware)."""

    def __init__(self, app, headers: dict[str, str] = HEADERS):
        self.app = app
        self.raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *(h for h in self.raw if h[0] not in present)]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuses (413) a request whose body exceeds ``limit`` bytes, by its Content-Length or, without one,
    while it streams in; the app then gets the body replayed from memory (at most ``limit`` bytes)."""

    def __init__(self, app, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = f"request body larger than {self.limit} bytes"
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await _send_json(send, 413, too_big)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return await _send_json(send, 413, too_big)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)


def check_listen(port: int, certfile: Path | None, keyfile: Path | None) -> bool:
    """Check ``rate serve``'s port and TLS files (both or neither, and present); True when serving https."""
    if not 1 <= port <= 65535:
        raise SkingenError(f"--port must be 1..65535, got {port}")
    https = certfile is not None
    if https != (keyfile is not None):
        raise SkingenError("--ssl-certfile and --ssl-keyfile go together")
    for f in (certfile, keyfile):
        if f is not None and not f.is_file():
            raise SkingenError(f"TLS file not found: {f}")
    return https


def check_proxies(text: str | None) -> None:
    """``--forwarded-allow-ips``: a comma list of proxy addresses or networks (or ``*``), else one line."""
    import ipaddress

    for item in (text.split(",") if text is not None else []):
        try:
            if item.strip() != "*":
                ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            raise SkingenError(f"--forwarded-allow-ips: '{item}' is not an IP address or network") from None


def served_hosts(host: str, extra: Iterable[str] = ()) -> list[str]:
    """Host names a browser may use to reach a server listening on ``host`` (for the Host-header check that
    stops DNS rebinding): loopback names for a loopback address; for a wildcard (0.0.0.0, ::) also this
    machine's name and addresses; otherwise ``host`` itself; plus ``extra`` (``--allowed-host``)."""
    loopback = ["127.0.0.1", "localhost", "[::1]"]
    if host in ("127.0.0.1", "localhost", "::1"):
        names = loopback
    elif host in ("0.0.0.0", "::", ""):
        names = [*loopback, socket.gethostname(), socket.getfqdn()]
        try:
            names += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)]
        except OSError:
            pass
    else:
        names = [host]
    for name in extra:  # a Host header value: a DNS name or an address, nothing else
        if not re.fullmatch(r"[A-Za-z0-9.\-]+|\[?[0-9A-Fa-f:.]+\]?", name):
            raise SkingenError(f"--allowed-host '{name}' is not a host name or address (e.g. rating.example.org)")
    names = [f"[{n}]" if ":" in n and not n.startswith("[") else n for n in [*names, *extra]]
    return list(dict.fromkeys(n.lower() for n in names))


def pad_png(data: bytes, size: int) -> bytes:
    """``data`` (a PNG) grown to exactly ``size`` bytes by one private ancillary chunk (``paDd``, zeros) before
    IEND; decoders skip such chunks, so the picture is unchanged. ``size`` must be >= len(data) + 12.
    By hand because Pillow would have to re-encode the image to add a chunk."""
    pad = size - len(data) - 12  # a chunk costs 12 bytes: length, type, CRC
    if pad < 0 or data[-12:-8] != b"\0\0\0\0" or data[-8:-4] != b"IEND":
        raise ValueError("cannot pad: not a PNG ending in IEND, or already larger than the target")
    kind, payload = b"paDd", bytes(pad)
    chunk = struct.pack(">I", pad) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return data[:-12] + chunk + data[-12:]


#: seconds a connection may take to send a whole request head, from opening or from its last reply
HEAD_TIMEOUT = 10.0


def idle_timeout_protocol(timeout: float = HEAD_TIMEOUT):
    """uvicorn's h11 protocol with a deadline for each request head: a connection that sends no complete request
    head within ``timeout`` seconds of opening (or of its last reply) is closed. Why by hand: uvicorn's
    keep-alive timeout starts only after a first reply and restarts on every byte, so a client that opens
    connections and sends nothing, or a byte now and then, held them open for ever; no uvicorn setting bounds it.
    Passed as ``uvicorn.run(..., http=idle_timeout_protocol())``."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadDeadline(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def _arm(self) -> None:
            self.loop.call_later(timeout, self._expire, self.cycle)

        def _expire(self, cycle_then) -> None:
            # no new request head since the deadline was set (``cycle`` is replaced by each one)
            if self.cycle is cycle_then and not self.transport.is_closing():
                self.transport.close()

    return HeadDeadline
