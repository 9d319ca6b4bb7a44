"""A real server process killed mid-study (SIGKILL: no clean shutdown) and started again loses no answer
and continues each rater where they were."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest


def _serve(study, port):
    return subprocess.Popen([sys.executable, "-m", "skingen.cli", "rate", "serve", "--study", str(study),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait(base, proc):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(f"{base}/api/study", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail("server did not answer within 60 s")


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_killed_server_loses_nothing(make_study):
    study = make_study(n=2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    answers = {"single": ("synthetic", 4), "pair": ("right", None), "likert": ("2", None)}
    proc = _serve(study, port)
    try:
        _wait(base, proc)
        client = httpx.Client(base_url=base)
        q = client.post("/api/session", json={}).json()
        for _ in range(5):
            a, c = answers[q["mode"]]
            q = client.post("/api/answer", json={"position": q["position"], "item": q["item"], "answer": a,
                                                 "confidence": c, "rt_ms": 800}).json()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = _serve(study, port)
        _wait(base, proc)
        again = client.get("/api/next").json()  # same cookie, new process
        assert again == q and again["done"] == 5
        while not q["finished"]:
            a, c = answers[q["mode"]]
            q = client.post("/api/answer", json={"position": q["position"], "item": q["item"], "answer": a,
                                                 "confidence": c, "rt_ms": 800}).json()
    finally:
        proc.kill()
        proc.wait(10)
    con = sqlite3.connect(study / "study.sqlite")
    positions = [r[0] for r in con.execute("SELECT position FROM answers ORDER BY position")]
    con.close()
    assert positions == list(range(q["total"]))
