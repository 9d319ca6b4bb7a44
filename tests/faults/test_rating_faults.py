"""The rating server as a hostile client sees it, driven through the app *and* the uvicorn options the CLI
starts it with (proxy headers), from a loopback peer."""

import io

import numpy as np
from starlette.testclient import TestClient
from typer.testing import CliRunner

from skingen.cli import app as cli
from skingen.rating.app import create_app

runner = CliRunner()
LOCAL = "http://127.0.0.1:8000"  # a Host the server answers by default
SECURITY = ("content-security-policy", "x-content-type-options", "cache-control")


def served(study, monkeypatch, *args: str) -> TestClient:
    """The ASGI app exactly as `skingen rate serve` would run it (uvicorn's middleware included), as a client
    connecting from 127.0.0.1 to http://127.0.0.1:8000."""
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app_, **kw: seen.update(app=app_, kw=kw))
    res = runner.invoke(cli, ["rate", "serve", "--study", str(study), *args])
    assert res.exit_code == 0, res.output
    kw = {k: v for k, v in seen["kw"].items() if k not in ("host", "port", "log_level")}
    config = uvicorn.Config(seen["app"], **kw)
    config.load()
    return TestClient(config.loaded_app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 40000),
                      raise_server_exceptions=False)


def _start(client) -> dict:
    r = client.post("/api/session", json={})
    assert r.status_code == 200, r.text
    return r.json()


def test_request_bodies_are_capped(make_study, monkeypatch):
    # before: a 20 MB body was parsed in full and answered with an 80 MB echo
    client = served(make_study(), monkeypatch)
    _start(client)
    big = b'{"position": 0, "item": "' + b"A" * 2_000_000 + b'"}'
    r = client.post("/api/answer", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and len(r.content) < 500
    assert all(h in r.headers for h in SECURITY)


def test_a_chunked_body_without_length_is_capped_too(make_study):
    client = TestClient(create_app(make_study()), base_url=LOCAL)
    _start(client)
    chunks = (b"x" * 10_000 for _ in range(100))
    r = client.post("/api/answer", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_validation_errors_never_echo_the_input(make_study):
    # before: the 422 repeated every field as sent
    client = TestClient(create_app(make_study()), base_url=LOCAL)
    q = _start(client)
    marker = "<script>MARKER</script>"
    r = client.post("/api/answer", json={"position": 0, "item": q["item"], "answer": marker, "rt_ms": 5})
    assert r.status_code == 422 and "MARKER" not in r.text and "answer" in r.text


def test_unknown_host_headers_are_refused(make_study, monkeypatch):
    # before: any Host was served (DNS rebinding: a web page's script could create raters and post answers)
    client = served(make_study(), monkeypatch)
    assert client.get("/api/study").status_code == 200
    assert client.get("/api/study", headers={"host": "localhost:8000"}).status_code == 200
    evil = client.get("/api/study", headers={"host": "attacker.example:8000"})
    assert evil.status_code == 400 and all(h in evil.headers for h in SECURITY)


def test_allowed_host_option_adds_a_name(make_study, monkeypatch):
    client = served(make_study(), monkeypatch, "--allowed-host", "rating.example.org")
    assert client.get("/api/study", headers={"host": "rating.example.org"}).status_code == 200


def test_nan_response_time_is_a_4xx_with_security_headers(make_study):
    # before: 500 without the security headers
    client = TestClient(create_app(make_study()), base_url=LOCAL, raise_server_exceptions=False)
    q = _start(client)
    body = '{"position": 0, "item": "%s", "answer": "real", "confidence": 3, "rt_ms": NaN}' % q["item"]
    r = client.post("/api/answer", content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    assert all(h in r.headers for h in SECURITY)


def test_an_internal_error_is_a_500_with_security_headers_and_no_details(make_study, monkeypatch):
    import skingen.rating.app as A

    client = TestClient(create_app(make_study()), base_url=LOCAL, raise_server_exceptions=False)
    _start(client)
    monkeypatch.setattr(A, "next_question", lambda *a: (_ for _ in ()).throw(RuntimeError("secret path /x/y")))
    r = client.get("/api/next")
    assert r.status_code == 500 and "secret" not in r.text
    assert all(h in r.headers for h in SECURITY)


def test_forwarded_for_does_not_bypass_the_code_limit(make_study, monkeypatch):
    # before: uvicorn trusted X-Forwarded-For from loopback, so each forged address got 20 fresh tries
    client = served(make_study(), monkeypatch, "--access-code", "right")
    codes = [client.post("/api/session", json={"access_code": "wrong"},
                         headers={"x-forwarded-for": f"10.0.0.{i}"}).status_code for i in range(25)]
    assert codes[:20] == [403] * 20 and codes[20:] == [429] * 5


def test_forwarded_for_is_used_behind_a_named_proxy(make_study, monkeypatch):
    client = served(make_study(), monkeypatch, "--access-code", "right", "--forwarded-allow-ips", "127.0.0.1")
    codes = [client.post("/api/session", json={"access_code": "wrong"},
                         headers={"x-forwarded-for": f"10.0.0.{i}"}).status_code for i in range(25)]
    assert codes == [403] * 25  # each forwarded client counted on its own


def test_lock_out_says_when_it_ends_and_then_lets_the_right_code_in(make_study):
    from skingen.rating.guards import AddressLimit

    now = [1000.0]
    guard = AddressLimit(3, 600, "wrong codes", "then the right code lets you in", clock=lambda: now[0])
    client = TestClient(create_app(make_study(), access_code="right", guard=guard), base_url=LOCAL)
    for _ in range(3):
        assert client.post("/api/session", json={"access_code": "wrong"}).status_code == 403
    locked = client.post("/api/session", json={"access_code": "right"})
    assert locked.status_code == 429 and "600 s" in locked.json()["detail"]
    assert locked.headers["retry-after"] == "600"
    now[0] += 601
    assert client.post("/api/session", json={"access_code": "right"}).status_code == 200


def test_empty_raters_are_left_out_of_the_report_and_expire(make_study):
    # before: 187 probing sessions were 187 raters in the report
    from skingen.rating import session as S
    from skingen.rating.results import build_report
    from skingen.rating.store import connect

    study = make_study()
    empty = [S.start_rater(study) for _ in range(4)]
    rater = S.start_rater(study)
    q = S.next_question(study, rater)
    S.record_answer(study, rater, 0, q["item"], "real" if q["mode"] == "single" else "left",
                    3 if q["mode"] == "single" else None, 900)
    report = build_report(study, min_answers=1)
    assert [r["rater"] for r in report.raters] == [rater.label]
    assert any("4 rater session(s) without an answer" in n for n in report.notes)
    # issue 29: by default a rater counts from 5 answers; one answer is a probe, left out and said so
    report = build_report(study)
    assert report.raters == [] and report.answers == [] and report.summary == []
    assert any("1 rater(s) with fewer than 5 answers (1 answers in all) left out" in n for n in report.notes)
    assert S.expire_empty_raters(study, older_than=0) == 4
    with connect(study) as con:
        assert con.execute("SELECT COUNT(*) FROM raters").fetchone()[0] == 1
        assert con.execute("SELECT COUNT(DISTINCT rater) FROM schedule").fetchone()[0] == 1
    assert S.find_rater(study, rater_id=empty[0].id) is None and S.find_rater(study, rater_id=rater.id)


def _best_threshold_accuracy(sizes: np.ndarray, truth: np.ndarray) -> float:
    """Accuracy of the best rule 'size > t means synthetic' or 'size > t means real' over all thresholds."""
    best = 0.5
    for t in np.unique(sizes):
        above = sizes > t
        acc = float(np.mean(above == truth))
        best = max(best, acc, 1 - acc)
    return best


def test_file_size_carries_no_real_or_synthetic_signal(rating_sources, tmp_path):
    # before: PNG size alone told real from synthetic 84% of the time (here 100%: planted smooth fakes)
    from PIL import Image

    from skingen.imageio import read_image, write_image
    from skingen.rating.study import RatingStudyConfig, create_study, sources_from_args
    from skingen.rating.store import connect

    real, _ = rating_sources
    smooth = tmp_path / "smooth"
    rng = np.random.default_rng(3)
    for i in range(12):  # flat colours compress far better than real skin texture
        write_image(smooth / f"seed{i:06d}.png", np.full((32, 32, 3), rng.integers(0, 256, 3), np.uint8))
    study = tmp_path / "study"
    create_study(study, sources_from_args(str(real), [str(smooth)]), RatingStudyConfig(modes=("single",), n=6))
    with connect(study) as con:
        truth = {r["token"]: r["truth"] for r in con.execute("SELECT token, truth FROM images")}
        stored = {r["token"]: r["file"] for r in con.execute("SELECT token, file FROM images")}
    on_disk = np.array([(study / stored[t]).stat().st_size for t in truth])
    labels = np.array([v == "synthetic" for v in truth.values()])
    assert _best_threshold_accuracy(on_disk, labels) > 0.9  # the planted signal is there in the files

    client = TestClient(create_app(study), base_url=LOCAL)
    _start(client)
    served_sizes = []
    for token in truth:
        r = client.get(f"/img/{token}")
        assert r.status_code == 200
        served_sizes.append(len(r.content))
        pixels = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
        assert np.array_equal(pixels, read_image(study / stored[token]))  # the same picture
    accuracy = _best_threshold_accuracy(np.array(served_sizes), labels)
    assert accuracy <= 0.6, accuracy


def test_served_hosts_follow_the_listening_address():
    import socket

    from skingen.rating.guards import served_hosts

    assert served_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert served_hosts("192.168.1.20", ["Rating.Example.org"]) == ["192.168.1.20", "rating.example.org"]
    assert served_hosts("fe80::1") == ["[fe80::1]"]
    wildcard = served_hosts("0.0.0.0")
    assert "localhost" in wildcard and socket.gethostname().lower() in wildcard


def test_ipv6_loopback_host_header_is_answered(make_study):
    client = TestClient(create_app(make_study()), base_url="http://[::1]:8000")
    assert client.get("/api/study").status_code == 200
