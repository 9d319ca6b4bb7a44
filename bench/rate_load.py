"""Load test of `skingen rate serve`: N simulated raters answering as fast as they can.

Usage: python bench/rate_load.py [--raters 1,10,50] [--seconds 20] [--n 20] [--replay-share 0.2]
                                 [--out bench/results/rate_load.json]

For each rater count: a throwaway study (procedural demo crops, 64 px: ``--n`` real and ``--n`` synthetic
images per mode, so ``5 * n`` questions per rater) is served by the real CLI, ``skingen rate serve``, in its
own process on a free loopback port. Each rater is one ``httpx.AsyncClient`` (its own cookie) doing what the
page does: start a session, load the question's images (``GET /img``), answer (``POST /api/answer``), take the
next question from the answer's response — with no think time, until ``--seconds`` are up. A rater who
finishes the study starts a new session (a new pseudonymous rater), so the study's size does not bound the run.

Double clicks: ``--replay-share`` of the raters send every answer twice, alternately one after the other
(the copy after the first was accepted) and both at once (two requests in flight). The server must accept
exactly one and refuse the other with 409.

Afterwards the database (``skingen.rating.store.answer_rows``) is compared with what the clients sent:
every answer the server accepted (200) must be stored once with the same content (else *lost*), no
stored answer may lack an acceptance (*extra*), no (rater, position) or (rater, item) may be stored or
accepted twice (*duplicated*). Exit code 1 when anything was lost, extra or duplicated.

Latencies are those of every ``POST /api/answer`` (double clicks' refused copies included) and every
``GET /img``. Client and server share the machine's cores: latencies are measured by the client (its event
loop adds its own delay under load) and the table gives the load average and both processes' CPU seconds.
Prints a table and writes the rows as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from skingen.rating.session import CHOICES
from table import RESULTS, print_and_save  # bench/table.py: scripts run with bench/ on sys.path



def demo_sets(out: Path, images: int, size: int = 64) -> tuple[Path, Path]:
    """A prepared demo data folder of at least ``images`` crops (``size`` px) to serve as the real set, and the
    crops of a second one (another seed; its ``images/`` folder, no manifest, so no ``origin=real`` that
    `rate serve` would refuse as --synthetic) as the synthetic set. Procedural images only, never clinical ones."""
    from skingen.data.demo import write_demo_data
    from skingen.data.prepare import PrepareConfig, prepare

    sets = []
    for seed, name in ((0, "real"), (1, "fake")):
        photos = max(4, images // 2)  # prepare makes ~4 crops of a demo photo; twice the need is plenty
        raw = write_demo_data(out / f"{name}-raw", n=photos, seed=seed)
        prepare(raw / "images", out / name, PrepareConfig(size=size), masks=raw / "masks", label="exanthem")
        sets.append(out / name)
    return sets[0], sets[1] / "images"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(study: Path, args: list[str], log: Path, wait_s: float = 120.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``skingen rate serve --study STUDY ARGS`` in its own process on a free loopback port; yields
    (base URL, process) once the server answers, and stops it afterwards."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "skingen.cli", "rate", "serve", "--study", str(study), "--port", str(port), *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited ({proc.returncode}):\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/api/study", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {wait_s:.0f} s:\n{log.read_text()}")
            time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Tally:
    """What the clients saw, shared by all rater coroutines (one event loop: no locks needed)."""

    def __init__(self) -> None:
        self.accepted: dict[tuple[str, int], dict] = {}  # (rater label, position) -> the accepted body
        self.accepted_twice = 0  # a second 200 for the same (rater, position): a duplicate accepted
        self.answer_ms: list[float] = []
        self.img_ms: list[float] = []
        self.sessions = 0
        self.replays = Counter()  # sent, refused (409), accepted (200: a bug), other
        self.errors = Counter()  # "POST /api/answer 500", "GET /img 401", exception names, ...

    def accept(self, label: str, body: dict) -> None:
        key = (label, body["position"])
        if key in self.accepted:
            self.accepted_twice += 1
        self.accepted[key] = body


async def timed(samples: list[float], request):
    """Await ``request`` (an httpx coroutine), append its latency in ms to ``samples``, return the response."""
    t0 = time.perf_counter()
    r = await request
    samples.append((time.perf_counter() - t0) * 1000)
    return r


async def rater(base: str, deadline: float, doubles: bool, seed: int, tally: Tally) -> None:
    """One simulated rater (see the module docstring); errors are tallied, never raised."""
    import httpx

    rng = np.random.default_rng(seed)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        q, turn = None, 0
        while time.monotonic() < deadline:
            try:
                if q is None or q["finished"]:  # first question, or the study is done: a new rater
                    client.cookies.clear()
                    r = await client.post("/api/session", json={})
                    if r.status_code != 200:
                        tally.errors[f"POST /api/session {r.status_code}"] += 1
                        q = None
                        continue
                    tally.sessions += 1
                    q = r.json()
                    continue
                shown = time.perf_counter()
                for url in q["images"]:
                    r = await timed(tally.img_ms, client.get(url))
                    if r.status_code != 200 or r.headers.get("content-type") != "image/png":
                        tally.errors[f"GET /img {r.status_code}"] += 1
                mode = q["mode"]
                body = {"position": q["position"], "item": q["item"], "answer": str(rng.choice(CHOICES[mode])),
                        "confidence": int(rng.integers(1, 6)) if mode == "single" else None,
                        "rt_ms": int((time.perf_counter() - shown) * 1000)}
                at_once, after = doubles and turn % 2 == 1, doubles and turn % 2 == 0
                turn += 1
                if at_once:  # a double click with both requests in flight at once
                    rs = await asyncio.gather(*(timed(tally.answer_ms, client.post("/api/answer", json=body))
                                                for _ in range(2)))
                    tally.replays["sent"] += 1
                    codes = sorted(x.status_code for x in rs)
                    tally.replays["refused" if codes == [200, 409] else
                                  "accepted" if codes == [200, 200] else "other"] += 1
                    r = next((x for x in rs if x.status_code == 200), rs[0])
                else:
                    r = await timed(tally.answer_ms, client.post("/api/answer", json=body))
                if r.status_code == 200:
                    tally.accept(q["rater"], body)
                    if after:  # a double click whose copy leaves after the first was accepted
                        again = await timed(tally.answer_ms, client.post("/api/answer", json=body))
                        tally.replays["sent"] += 1
                        tally.replays[{409: "refused", 200: "accepted"}.get(again.status_code, "other")] += 1
                        if again.status_code == 200:
                            tally.accept(q["rater"], body)
                    q = r.json()
                else:
                    tally.errors[f"POST /api/answer {r.status_code}"] += 1
                    r = await client.get("/api/next")  # continue where the server is, as the page does
                    q = r.json() if r.status_code == 200 else None
            except httpx.HTTPError as exc:
                tally.errors[type(exc).__name__] += 1
                q = None  # start afresh: a new session


def check_database(study: Path, tally: Tally) -> dict:
    """Compare the stored answers with the accepted ones: counts of lost, extra, duplicated, mismatched."""
    from skingen.rating.store import answer_rows

    rows = answer_rows(study)
    stored: dict[tuple[str, int], dict] = {}
    for r in rows:
        handle = r["partner"] if r["mode"] == "pair" and r["real_right"] else r["image"]  # the page's item
        stored[(r["rater"], r["position"])] = {"position": r["position"], "item": handle, "answer": r["answer"],
                                               "confidence": r["confidence"], "rt_ms": r["rt_ms"]}
    by_position = Counter((r["rater"], r["position"]) for r in rows)
    by_item = Counter((r["rater"], r["item"]) for r in rows)
    lost = sum(k not in stored for k in tally.accepted)
    return {"stored": len(rows), "lost": lost,
            "mismatched": sum(k in stored and stored[k] != body for k, body in tally.accepted.items()),
            "extra": sum(k not in tally.accepted for k in stored),
            "duplicated": tally.accepted_twice + sum(c - 1 for c in by_position.values()) +
                          sum(c - 1 for c in by_item.values())}


def percentiles(ms: list[float]) -> list[float]:
    return [round(float(v), 1) for v in np.percentile(ms, [50, 95, 99])] if ms else [float("nan")] * 3


async def drive(base: str, raters: int, seconds: float, doubles: int, tally: Tally) -> float:
    deadline = time.monotonic() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(rater(base, deadline, i < doubles, i, tally) for i in range(raters)))
    return time.perf_counter() - t0


def run(work: Path, real: Path, fake: Path, raters: int, seconds: float, n: int, replay_share: float) -> dict:
    study, log = work / f"study-{raters}", work / f"server-{raters}.log"
    tally = Tally()
    doubles = round(raters * replay_share)
    with serve(study, ["--real", str(real), "--synthetic", f"demo={fake}", "--n", str(n)], log) as (base, proc):
        load_before, server_cpu, client_cpu = os.getloadavg()[0], cpu_seconds(proc.pid), time.process_time()
        wall = asyncio.run(drive(base, raters, seconds, doubles, tally))
        server_cpu, client_cpu = cpu_seconds(proc.pid) - server_cpu, time.process_time() - client_cpu
        load_after = os.getloadavg()[0]
    db = check_database(study, tally)
    server_log = log.read_text(errors="replace")
    answers = len(tally.accepted)
    a50, a95, a99 = percentiles(tally.answer_ms)
    i50, i95, i99 = percentiles(tally.img_ms)
    return {"raters": raters, "seconds": round(wall, 1), "sessions": tally.sessions, "answers": answers,
            "answers_per_s": round(answers / wall, 1), "answer_p50_ms": a50, "answer_p95_ms": a95,
            "answer_p99_ms": a99, "images": len(tally.img_ms), "img_p50_ms": i50, "img_p95_ms": i95,
            "img_p99_ms": i99, "double_clickers": doubles, "replays": tally.replays["sent"],
            "replays_refused": tally.replays["refused"], "replays_accepted": tally.replays["accepted"],
            "replays_other": tally.replays["other"],
            "errors": sum(tally.errors.values()), "error_kinds": dict(tally.errors), **db,
            "db_locked_in_log": server_log.count("database is locked"),
            "server_tracebacks": server_log.count("Traceback"),
            "server_cpu_s": round(server_cpu, 1), "client_cpu_s": round(client_cpu, 1),
            "load1_before": round(load_before, 2), "load1_after": round(load_after, 2),
            "cores": os.cpu_count()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raters", default="1,10,50", help="comma list of concurrent rater counts, one run each")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--n", type=int, default=20, help="study --n: 5*n questions per rater")
    ap.add_argument("--replay-share", type=float, default=0.2, help="share of raters that double-click")
    ap.add_argument("--out", type=Path, default=RESULTS / "rate_load.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        real, fake = demo_sets(work, 3 * args.n)
        for raters in (int(x) for x in args.raters.split(",")):
            rows.append(run(work, real, fake, raters, args.seconds, args.n, args.replay_share))
    cols = ["raters", "seconds", "sessions", "answers", "answers_per_s", "answer_p50_ms", "answer_p95_ms",
            "answer_p99_ms", "img_p50_ms", "img_p95_ms", "img_p99_ms", "replays", "replays_refused", "errors",
            "lost", "extra", "duplicated", "mismatched", "db_locked_in_log", "server_cpu_s", "client_cpu_s",
            "load1_before", "load1_after"]
    print_and_save(rows, cols, out=args.out)
    bad = [f"{r['raters']} raters: {r['lost']} lost, {r['extra']} extra, {r['duplicated']} duplicated, "
           f"{r['mismatched']} mismatched, {r['replays_accepted']} replays accepted"
           for r in rows if r["lost"] or r["extra"] or r["duplicated"] or r["mismatched"] or r["replays_accepted"]]
    if bad:
        print("FAILED: " + "; ".join(bad))
        sys.exit(1)


if __name__ == "__main__":
    main()
