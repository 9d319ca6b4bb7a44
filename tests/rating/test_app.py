"""The rating web app through an in-process client: blinding, balanced order, refusals, resume."""

import io
import sqlite3
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from skingen.errors import SkingenError
from skingen.rating.app import check_host, create_app
from skingen.rating.session import RatingError
from skingen.rating.study import RatingStudyConfig, balanced_order, create_or_continue, create_study, sources_from_args
from tests.rating.conftest import write_fakes


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    """Two synthetic sets of 12 random 24 px PNGs (plain folders); the second one named by NAME=DIR."""
    root = tmp_path_factory.mktemp("fakes")
    return [str(write_fakes(root / "dcgan-out", seed=1)), f"bee={write_fakes(root / 'bee', seed=2)}"]


@pytest.fixture(scope="module")
def study(tiny_data, fakes, tmp_path_factory):
    path = tmp_path_factory.mktemp("study") / "s1"
    create_study(path, sources_from_args(str(tiny_data), fakes), RatingStudyConfig(n=3, seed=1))
    return path


def _client(study, **kw) -> TestClient:
    return TestClient(create_app(study, **kw), base_url="http://127.0.0.1:8000")


def _answer_for(q: dict) -> dict:
    mode = q["mode"]
    return {"position": q["position"], "item": q["item"], "rt_ms": 900,
            "answer": {"single": "real", "pair": "left", "likert": "4"}[mode],
            "confidence": 3 if mode == "single" else None}


def _items(study, rater_label):
    con = sqlite3.connect(study / "study.sqlite")
    rows = con.execute("""SELECT i.mode, i.source, im.truth, s.real_right FROM schedule s
                          JOIN raters r ON r.id = s.rater JOIN items i ON i.id = s.item
                          JOIN images im ON im.token = i.image
                          WHERE printf('rater-%02d', r.number) = ? ORDER BY s.position""", (rater_label,)).fetchall()
    con.close()
    return rows


def test_balanced_order_every_prefix_keeps_the_shares():
    rng = np.random.default_rng(0)
    groups = ["real"] * 30 + ["a"] * 10 + ["b"] * 20
    order = balanced_order(groups, rng)
    assert sorted(order) == list(range(60))
    for g, size in (("real", 30), ("a", 10), ("b", 20)):
        counts = np.cumsum([groups[i] == g for i in order])
        expected = np.arange(1, 61) * size / 60
        # item j of a group of g sits at (j + u)/g, so a prefix is off by at most 1 + (groups x share)
        assert np.abs(counts - expected).max() <= 1 + 3 * size / 60
    assert balanced_order(groups, np.random.default_rng(0)) == order


def test_each_rater_gets_a_balanced_order_of_every_item_once(study):
    client = _client(study)
    labels = [client.post("/api/session", json={}).json()["rater"] for _ in range(2)]
    orders = [_items(study, label) for label in labels]
    assert orders[0] != orders[1]  # each rater its own order
    for rows in orders:
        modes = [r[0] for r in rows]
        assert modes == sorted(modes, key=["single", "pair", "likert"].index)  # one section per mode
        assert modes.count("single") == 12 and modes.count("pair") == 6 and modes.count("likert") == 9
        single = [r[2] for r in rows if r[0] == "single"]
        real = np.cumsum([t == "real" for t in single])
        assert np.abs(real - np.arange(1, 13) / 2).max() <= 2  # real/synthetic balanced in every prefix
        for src in ("dcgan-out", "bee"):  # the real image sits on the right in half of each set's pairs
            assert sum(r[3] for r in rows if r[0] == "pair" and r[1] == src) in (1, 2)


def test_nothing_in_a_response_reveals_the_source(study, tiny_data, fakes):
    client = _client(study)
    secrets_ = ["dcgan-out", "bee", "synthetic\"", "real\"", str(tiny_data), "seed0", ".jpg", "truth", "source"]
    con = sqlite3.connect(study / "study.sqlite")
    secrets_ += [r[0] for r in con.execute("SELECT image_id FROM images")]
    con.close()
    q = client.post("/api/session", json={}).json()
    texts = [client.get("/").text, client.get("/static/rate.js").text]
    sizes = set()
    while not q["finished"]:
        assert set(q) == {"rater", "code", "position", "total", "done", "finished", "mode", "images", "item"}
        text = str(q)
        for s in secrets_:
            assert s not in text.replace("'", '"'), s
        for url in q["images"]:
            r = client.get(url)
            assert r.headers["content-type"] == "image/png" and r.headers["cache-control"] == "no-store"
            im = Image.open(io.BytesIO(r.content))
            assert im.format == "PNG" and not set(im.info) - {"dpi"}  # no text chunks, no file names
            sizes.add(im.size)
        r = client.post("/api/answer", json=_answer_for(q))
        assert r.status_code == 200
        q = r.json()
    assert sizes == {(24, 24)}  # real 32 px crops shown at the fakes' 24 px: size gives nothing away
    assert "truth" not in texts[1] and "source" not in texts[1]


def test_refusals(study):
    client = _client(study)
    assert client.get("/api/next").status_code == 401
    q = client.post("/api/session", json={}).json()
    assert client.get("/img/" + q["item"] + "x").status_code == 404
    assert client.get("/img/..%2F..%2Fstudy.sqlite").status_code == 404
    assert client.get("/static/..%2Fapp.py").status_code == 404
    assert TestClient(client.app, base_url="http://127.0.0.1:8000").get(q["images"][0]).status_code == 401  # no session, no image
    good = _answer_for(q)
    assert client.post("/api/answer", json={**good, "item": "A" * 22}).status_code == 404  # unknown item
    assert client.post("/api/answer", json={**good, "position": 1}).status_code == 409  # out of order
    assert client.post("/api/answer", json={**good, "answer": "left"}).status_code == 422  # not a single answer
    assert client.post("/api/answer", json={**good, "confidence": None}).status_code == 422
    assert client.post("/api/answer", json={**good, "confidence": 9}).status_code == 422
    assert client.post("/api/answer", json={**good, "extra": 1}).status_code == 422
    assert client.post("/api/answer", json={**good, "rt_ms": -5}).status_code == 422
    second = client.post("/api/answer", json=good)
    assert second.status_code == 200 and second.json()["done"] == 1
    replay = client.post("/api/answer", json=good)
    assert replay.status_code == 409 and "already answered" in replay.json()["detail"]
    other = second.json()
    if other["mode"] == "single":  # an answer naming another study image than the question's
        assert client.post("/api/answer", json={**_answer_for(other), "item": q["item"]}).status_code == 409
    assert client.get("/api/next").json()["done"] == 1


def test_correct_is_decided_on_the_server(study):
    client = _client(study)
    q = client.post("/api/session", json={}).json()
    answers = []
    while not q["finished"]:
        a = _answer_for(q)
        answers.append((q["mode"], a["answer"]))
        q = client.post("/api/answer", json=a).json()
    con = sqlite3.connect(study / "study.sqlite")
    rows = con.execute("""SELECT i.mode, a.answer, a.correct, im.truth, s.real_right FROM answers a
        JOIN raters r ON r.id = a.rater JOIN items i ON i.id = a.item JOIN images im ON im.token = i.image
        JOIN schedule s ON s.rater = a.rater AND s.position = a.position
        WHERE printf('rater-%02d', r.number) = ? ORDER BY a.position""", (q["rater"],)).fetchall()
    con.close()
    assert [(m, a) for m, a, *_ in rows] == answers
    for mode, answer, correct, truth, right in rows:
        expected = {"single": int(answer == truth), "pair": int(right == 0), "likert": None}[mode]  # "left" said
        assert correct == expected


def test_resume_after_restart_by_cookie_and_by_code(study):
    client = _client(study)
    q = client.post("/api/session", json={}).json()
    for _ in range(3):
        q = client.post("/api/answer", json=_answer_for(q)).json()
    restarted = TestClient(create_app(study), base_url="http://127.0.0.1:8000")  # a new server process on the same study
    restarted.cookies = client.cookies
    again = restarted.get("/api/next").json()
    assert again == q and again["done"] == 3
    fresh = TestClient(create_app(study), base_url="http://127.0.0.1:8000")  # another device: no cookie, only the resume code
    by_code = fresh.post("/api/session", json={"resume_code": q["code"].lower()}).json()
    assert by_code == q
    assert fresh.post("/api/session", json={"resume_code": "NOPE1234"}).status_code == 404


def test_raters_are_isolated_and_the_cookie_is_locked_down(study):
    a, b = _client(study), _client(study, https=True)
    qa = a.post("/api/session", json={}).json()
    a.post("/api/answer", json=_answer_for(qa))
    started = b.post("/api/session", json={})
    qb = started.json()
    assert qb["done"] == 0 and qb["rater"] != qa["rater"] and qb["code"] != qa["code"]
    cookie = started.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    assert "secure" not in a.post("/api/session", json={}).headers["set-cookie"].lower()  # plain http


def test_access_code(study):
    client = _client(study, access_code="open-sesame")
    assert client.get("/api/study").json()["needs_code"] is True
    assert client.post("/api/session", json={}).status_code == 403
    assert client.post("/api/session", json={"access_code": "wrong"}).status_code == 403
    assert client.post("/api/session", json={"access_code": "open-sesame"}).status_code == 200


def code_limit(limit: int, window: float):
    from skingen.rating.guards import AddressLimit

    return AddressLimit(limit, window, "wrong codes", "then the right code lets you in")


def test_guessing_codes_is_cut_off(study):
    client = _client(study, access_code="open-sesame", guard=code_limit(3, 600))
    assert [client.post("/api/session", json={"access_code": f"guess{i}"}).status_code for i in range(3)] == [403] * 3
    assert client.post("/api/session", json={"access_code": "guess4"}).status_code == 429
    assert client.post("/api/session", json={"access_code": "open-sesame"}).status_code == 429  # locked out
    other = _client(study, guard=code_limit(2, 600))  # resume codes count too
    assert [other.post("/api/session", json={"resume_code": c}).status_code for c in ("AAAA2222", "BBBB3333")] == [404] * 2
    assert other.post("/api/session", json={"resume_code": "CCCC4444"}).status_code == 429
    guard = code_limit(1, 0.05)
    guard.add("x")
    with pytest.raises(RatingError):
        guard.check("x")
    guard.check("y")  # per address
    time.sleep(0.06)
    guard.check("x")  # the window has passed: allowed again


def test_host_rules():
    assert check_host("127.0.0.1", False, None) is None
    with pytest.raises(SkingenError, match="--allow-remote"):
        check_host("0.0.0.0", False, None)
    assert len(check_host("0.0.0.0", True, None)) >= 12
    assert check_host("0.0.0.0", True, "given") == "given"


def test_create_or_continue(study, tiny_data, fakes, tmp_path):
    saved, created = create_or_continue(study, None, [], {})
    assert not created and saved["counts"]["pair"]["bee"] == 3
    assert create_or_continue(study, str(tiny_data), fakes, {"n": 3, "seed": 1})[1] is False
    with pytest.raises(SkingenError, match="other image sets"):
        create_or_continue(study, str(tiny_data), fakes[:1], {})
    with pytest.raises(SkingenError, match="other n"):
        create_or_continue(study, None, [], {"n": 4})
    with pytest.raises(SkingenError, match="lower --n"):
        create_or_continue(tmp_path / "big", str(tiny_data), fakes, {"n": 20})
    assert not (tmp_path / "big").exists()  # nothing half-made left behind
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(SkingenError, match="not empty"):
        create_or_continue(tmp_path / "taken", str(tiny_data), fakes, {"n": 1})
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    with pytest.raises(SkingenError, match="both called"):
        sources_from_args(str(tiny_data), [fakes[0], fakes[0]])
    with pytest.raises(SkingenError, match="modes"):
        RatingStudyConfig(modes=("single", "vote"))


def test_sets_given_the_wrong_way_round_are_refused(tiny_data, fakes, tmp_path):
    with pytest.raises(SkingenError, match="holds real images"):
        create_study(tmp_path / "s", sources_from_args(str(tiny_data), [f"oops={tiny_data}"]), RatingStudyConfig(n=1))
    assert not (tmp_path / "s").exists()


def test_cli_serve_refuses_before_serving(study, tmp_path):
    from typer.testing import CliRunner

    from skingen.cli import app

    runner = CliRunner()
    remote = runner.invoke(app, ["rate", "serve", "--study", str(study), "--host", "0.0.0.0"])
    assert remote.exit_code == 1 and "--allow-remote" in remote.output
    empty = runner.invoke(app, ["rate", "serve", "--study", str(tmp_path / "new")])
    assert empty.exit_code == 1 and "give --real" in empty.output and not (tmp_path / "new").exists()
    other = runner.invoke(app, ["rate", "serve", "--study", str(study), "--mode", "pair"])
    assert other.exit_code == 1 and "other modes" in other.output
    half = runner.invoke(app, ["rate", "serve", "--study", str(study), "--ssl-certfile", str(tmp_path / "c.pem")])
    assert half.exit_code == 1 and "go together" in half.output


def test_pair_sides_are_fair_for_an_odd_number_of_pairs():
    from skingen.rating.study import draw_schedule

    items = [{"id": i, "mode": "pair", "source": "gan", "truth": "real"} for i in range(3)]
    right = [sum(r for _, r in draw_schedule(items, ("pair",), np.random.default_rng(s))) for s in range(40)]
    assert set(right) == {1, 2}  # the odd pair falls on either side...
    assert 1.3 < np.mean(right) < 1.7  # ...about equally often (1.5 expected), not always on the left


@pytest.mark.shared_data
def test_real_photos_of_mixed_sizes_are_shown_square_at_one_size(fakes, tmp_path):
    from tests.conftest import shared_data

    photos = shared_data() / "exanthem" / "viral_rash_measles"  # a plain folder of real photos, sizes vary
    study = tmp_path / "real"
    definition = create_study(study, sources_from_args(str(photos), fakes[:1]), RatingStudyConfig(n=2, modes=("pair",)))
    assert definition.display_size == 24  # the fakes' size, not the photos'
    files = sorted((study / "images").glob("*.png"))
    assert len(files) == 2 * 2  # 2 pairs: 2 real photos + 2 synthetic
    for f in files:
        with Image.open(f) as im:
            assert im.size == (24, 24) and im.mode == "RGB"


def test_new_raters_are_limited_per_address_and_minute(study):
    # issue 29: 4 loopback clients made 22,000 raters a minute (+61 MB of database)
    from skingen.rating.guards import NEW_RATERS_PER_MINUTE, AddressLimit
    from skingen.rating.store import connect

    now = [0.0]
    limit = AddressLimit(NEW_RATERS_PER_MINUTE, 60.0, "new rating sessions", "then start again", clock=lambda: now[0])
    client = _client(study, sessions=limit)
    with connect(study) as con:
        before = con.execute("SELECT COUNT(*) FROM raters").fetchone()[0]
    codes = [client.post("/api/session", json={}).status_code for _ in range(NEW_RATERS_PER_MINUTE + 3)]
    assert codes == [200] * NEW_RATERS_PER_MINUTE + [429] * 3
    with connect(study) as con:
        assert con.execute("SELECT COUNT(*) FROM raters").fetchone()[0] == before + NEW_RATERS_PER_MINUTE
    now[0] += 61
    assert client.post("/api/session", json={}).status_code == 200  # a minute later: allowed again


def test_connections_that_send_no_request_head_are_closed():
    # issue 29: uvicorn's keep-alive timeout starts after a first reply, so silent connections stayed open
    import socket
    import threading

    import uvicorn
    from fastapi import FastAPI

    from skingen.rating.guards import idle_timeout_protocol

    app = FastAPI()
    app.get("/")(lambda: {"ok": True})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                          http=idle_timeout_protocol(0.5)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(400):
            if server.started:
                break
            time.sleep(0.05)
        silent, trickle, polite = (socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3))
        polite.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reply = b""
        while not reply.endswith(b'{"ok":true}'):  # the head and the body may come in separate reads
            chunk = polite.recv(4096)
            assert chunk, reply  # closed before the whole reply
            reply += chunk
        assert b"200 OK" in reply
        start = time.monotonic()
        try:
            for byte in b"GET / HT":  # a byte at a time: still no whole head when the deadline comes
                trickle.sendall(bytes([byte]))
                time.sleep(0.1)
            assert trickle.recv(1) == b""  # closed by the server
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the server while it trickled
        assert silent.recv(1) == b""
        assert time.monotonic() - start < 15  # 0.5 s deadline; generous for a loaded CI machine
        assert polite.recv(1) == b""  # and idle after its reply, too
    finally:
        server.should_exit = True
        thread.join(5)


@pytest.mark.parametrize("option,value", [("--allowed-host", "a,b"), ("--allowed-host", ""), ("--access-code", ""),
                                          ("--access-code", " code "), ("--forwarded-allow-ips", "nan")])
def test_serve_refuses_malformed_names_and_codes(study, option, value, monkeypatch):
    # issue 29: the option fuzz found these accepted without a word
    import uvicorn
    from typer.testing import CliRunner

    from skingen.cli import app

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start a server"))
    res = CliRunner().invoke(app, ["rate", "serve", "--study", str(study), option, value])
    assert res.exit_code == 1 and option in res.output and "Traceback" not in res.output, res.output
