"""The labelling server under abuse: huge and malformed bodies, non-finite numbers, huge ids, stolen or
expired tokens, cross-site writes, and reads while a writer holds SQLite's lock."""

from __future__ import annotations

import re
import select
import socket
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from tasks.annotate.web.app import COOKIE, SECURITY_HEADERS, create_app
from tasks.annotate.web.db import Annotator, LoginSession, utcnow
from tasks.annotate.web.settings import ServerSettings
from tests.tasks.annotate.web.conftest import RIGHT, TEST_CFG, ferv, label_gold, running_server

ORIGIN = {"Origin": "http://testserver"}
MB = 1024 * 1024


def assert_headers(r) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, (name, r.status_code, dict(r.headers))


def raw_request(base: str, head: str, body_parts=()) -> tuple[int, bytes]:
    """Send ``head`` (and then ``body_parts`` while the server reads them) on a plain socket; the status
    and the whole response."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        data = b""
        try:
            for part in body_parts:
                if select.select([sock], [], [], 0.01)[0]:
                    break  # the server answered before reading it all: what a cap should do
                sock.sendall(part)
            while chunk := sock.recv(65536):
                data += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass  # it closed the connection with our bytes unread; its answer came first
    return int(data.split(b" ", 2)[1]), data


# ---------------------------------------------------------------------------------------- 9: body size


@pytest.mark.slow
def test_a_100mb_login_body_is_refused_unread_and_never_echoed(loaded):
    with running_server(create_app(loaded, TEST_CFG)) as base:
        head = (
            "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {100 * MB}\r\nConnection: close\r\n\r\n"
        )
        status, data = raw_request(base, head, [b'{"token": "' + b"A" * 4096])
    assert status == 413
    assert b"AAAA" not in data and b"65536 bytes" in data
    assert b"content-security-policy" in data.lower()


@pytest.mark.slow
def test_a_chunked_body_is_cut_off_at_the_cap(loaded):
    chunk = b"B" * 4096
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 256  # 1 MiB in chunks, no Content-Length
    with running_server(create_app(loaded, TEST_CFG, ServerSettings(max_body_kb=32))) as base:
        head = (
            "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        status, data = raw_request(base, head, parts)
    assert status == 413 and b"32768 bytes" in data and b"BBBB" not in data


def test_the_body_cap_is_a_setting(loaded):
    body = {"token": "x" * 150, "pad": "y" * 3000}
    small = TestClient(create_app(loaded, TEST_CFG, ServerSettings(max_body_kb=2)))
    r = small.post("/api/login", json=body)
    assert r.status_code == 413 and "2048 bytes" in r.json()["detail"]
    assert_headers(r)
    default = TestClient(create_app(loaded, TEST_CFG))
    assert default.post("/api/login", json=body).status_code == 422  # read, and refused for what it says
    r = default.post("/api/login", content=b"{}", headers={"Content-Length": "12x"})
    assert r.status_code == 400


def test_validation_errors_never_echo_the_body(started):
    _team, ca1, *_ = started
    secret = "SECRET-" + "z" * 300
    r = TestClient(ca1.app).post("/api/login", json={"token": secret})
    assert r.status_code == 422 and "token" in r.text and "SECRET" not in r.text
    r = ca1.post("/api/answers", json={"task_id": secret, "word": secret, "time_spent_s": 1})
    assert r.status_code == 422 and "SECRET" not in r.text


# ---------------------------------------------------------------------------------------- 10: no 500s


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_time_spent_is_a_422(started, number):
    _team, ca1, *_rest, item1, _ = started
    body = f'{{"task_id": "{item1["task_id"]}", "word": "{RIGHT}", "time_spent_s": {number}}}'
    r = ca1.post("/api/answers", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "time_spent_s" in r.text
    assert_headers(r)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999"])
def test_a_non_finite_login_token_is_a_422(team, number):
    r = TestClient(team.app).post(
        "/api/login", content=f'{{"token": {number}}}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422 and "token" in r.text
    assert_headers(r)


@pytest.mark.parametrize("big", [2**31, 2**63 - 1, 2**63, 2**64, 10**40])
def test_huge_path_ids_are_a_422(started, big):
    *_rest, pr, _i1, _i2 = started
    for r in (
        pr.post(f"/api/pr/reviews/{big}", json={"decision": "accept"}),
        pr.get(f"/api/pr/assignments/{big}/answers"),
    ):
        assert r.status_code == 422, (big, r.status_code, r.text)
        assert_headers(r)


def test_an_unexpected_failure_is_a_plain_500_with_the_headers(team, caplog):
    ca1 = team.add("ca1", "CA")
    path = team.db.engine.url.database
    team.db.dispose()
    with open(path, "r+b") as f:  # the database file is destroyed under the running app
        f.write(b"this is not a database" * 100)
    r = ca1.get("/api/me")
    assert r.status_code == 500 and r.json() == {"detail": "internal server error"}
    assert_headers(r)
    assert "GET /api/me failed" in caplog.text  # logged for the operator, not sent to the client


# ---------------------------------------------------------------------------------------- 11: tokens


def test_openapi_and_the_docs_are_not_served(team):
    client = TestClient(team.app)
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert client.get(path).status_code == 404


def test_a_ca_cannot_tell_missing_tasks_from_other_peoples(started):
    _team, ca1, _ca2, _pr, _item1, item2 = started
    theirs, missing = item2["task_id"], item2["task_id"][:-1] + "9999"
    videos = [ca1.get(f"/api/tasks/{t}/video") for t in (theirs, missing)]
    answers = [
        ca1.post("/api/answers", json={"task_id": t, "word": RIGHT, "time_spent_s": 1})
        for t in (theirs, missing)
    ]
    for pair in (videos, answers):
        assert [r.status_code for r in pair] == [404, 404]
        assert [r.json()["detail"].replace(theirs, "ID").replace(missing, "ID") for r in pair] == [
            pair[0].json()["detail"].replace(theirs, "ID")
        ] * 2


def test_logout_ends_the_session_on_the_server(team):
    team.add("ca1", "CA")
    client = TestClient(team.app)
    client.post("/api/login", json={"token": team.tokens["ca1"]})
    stolen = client.cookies[COOKIE]
    assert stolen != team.tokens["ca1"]  # the cookie never carries the annotator's token
    assert client.post("/api/logout", headers=ORIGIN).json() == {"ok": True, "ended": True}
    thief = TestClient(team.app, cookies={COOKIE: stolen})
    assert thief.get("/api/me").status_code == 401
    # A session token cannot start another session either.
    assert TestClient(team.app).post("/api/login", json={"token": stolen}).status_code == 401


def test_tokens_and_logins_expire(team):
    team.add("ca1", "CA")
    client = TestClient(team.app)
    client.post("/api/login", json={"token": team.tokens["ca1"]})
    bearer = team.client("ca1")
    assert bearer.get("/api/me").status_code == 200 and client.get("/api/me").status_code == 200
    with team.db.session() as s:
        s.execute(update(LoginSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/api/me").status_code == 401
    with team.db.session() as s:  # issued 91 days ago: past the default 90
        s.execute(update(Annotator).values(token_issued_at=utcnow() - timedelta(days=91)))
    r = bearer.get("/api/me")
    assert r.status_code == 401 and "90 days" in r.json()["detail"]
    assert TestClient(team.app).post("/api/login", json={"token": team.tokens["ca1"]}).status_code == 401
    longer = create_app(team.db, TEST_CFG, ServerSettings(token_days=100))
    assert TestClient(longer, headers=bearer.headers).get("/api/me").status_code == 200


def test_revoke_ends_the_token_and_every_login(project):
    r = ferv(project, "add-annotator", "Bo", "--role", "CA", "--id", "ca1")
    token = re.search(r"token: (\S+)$", r.output, re.M).group(1)
    from tasks.annotate.web.db import open_database

    db = open_database(f"sqlite:///{project / 'annotate.db'}", migrate=False)
    try:
        page = TestClient(create_app(db, TEST_CFG))
        assert page.post("/api/login", json={"token": token}).status_code == 200
        r = ferv(project, "revoke", "ca1")
        assert r.exit_code == 0 and "token revoked" in r.output, r.output
        api = TestClient(page.app, headers={"Authorization": f"Bearer {token}"})
        assert page.get("/api/me").status_code == 401 and api.get("/api/me").status_code == 401
        r = ferv(project, "revoke", "ca1", "--new-token")
        fresh = re.search(r"new token: (\S+)$", r.output, re.M).group(1)
        assert fresh != token
        assert (
            TestClient(page.app, headers={"Authorization": f"Bearer {fresh}"}).get("/api/me").status_code
            == 200
        )
        assert api.get("/api/me").status_code == 401
    finally:
        db.dispose()
    r = ferv(project, "revoke", "nobody")
    assert isinstance(r.exception, ValueError) and "no annotator 'nobody'" in str(r.exception)


def test_serve_refuses_bad_settings(project):
    for flag, value, says in (
        ("--token-days", "inf", "token_days"),
        ("--session-hours", "nan", "session_hours"),
        ("--max-body-kb", "0", "max_body_kb"),
        ("--allow-origin", "evil.example", "evil.example"),
    ):
        r = ferv(project, "serve", flag, value)
        assert isinstance(r.exception, ValueError) and says in str(r.exception), (flag, r.output)


def test_cookie_writes_must_come_from_the_servers_origin(started):
    team, _ca1, _ca2, _pr, _item1, _ = started
    page = TestClient(team.app)
    page.post("/api/login", json={"token": team.tokens["ca2"]})
    item = page.get("/api/next").json()["item"]  # reads need no Origin
    body = {"task_id": item["task_id"], "word": RIGHT, "time_spent_s": 1}
    for headers in ({}, {"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"}):
        r = page.post("/api/answers", json=body, headers=headers)
        assert r.status_code == 403 and "Origin" in r.json()["detail"], headers
    assert page.post("/api/logout", headers={"Origin": "https://evil.example"}).status_code == 403
    assert page.get("/api/me").status_code == 200  # the forged logout did nothing
    assert (
        TestClient(team.app)
        .post("/api/login", json={"token": "x"}, headers={"Origin": "https://evil.example"})
        .status_code
        == 403
    )
    assert page.post("/api/answers", json=body, headers={"Referer": "http://testserver/"}).status_code == 201
    # An API client with a bearer token is not a browser: no Origin needed.
    assert (
        team.client("ca1").post("/api/answers", json={**body, "task_id": _item1["task_id"]}).status_code
        == 201
    )
    # Another origin is accepted when the server is told to (a reverse proxy's public address).
    proxied = TestClient(
        create_app(team.db, TEST_CFG, ServerSettings(allowed_origins=("https://label.example",)))
    )
    proxied.post(
        "/api/login", json={"token": team.tokens["ca2"]}, headers={"Origin": "https://label.example"}
    )
    assert proxied.post("/api/logout", headers={"Origin": "https://label.example"}).json()["ended"] is True


def test_the_cookie_is_secure_over_https_or_when_asked(team):
    team.add("ca1", "CA")
    token = {"token": team.tokens["ca1"]}
    plain = TestClient(team.app).post("/api/login", json=token).headers["set-cookie"].lower()
    assert "secure" not in plain and "samesite=strict" in plain and "max-age=43200" in plain
    https = TestClient(team.app, base_url="https://testserver").post("/api/login", json=token)
    assert "secure" in https.headers["set-cookie"].lower()
    asked = TestClient(create_app(team.db, TEST_CFG, ServerSettings(secure_cookie=True)))
    assert "secure" in asked.post("/api/login", json=token).headers["set-cookie"].lower()


# ---------------------------------------------------------------------------------------- 12: reads


def test_reads_go_on_while_a_writer_holds_the_lock(started):
    team, ca1, _ca2, pr, *_ = started
    writer = team.db.engine.raw_connection()
    writer.driver_connection.isolation_level = None
    writer.driver_connection.execute("BEGIN IMMEDIATE")  # SQLite's one write lock, held
    writer.driver_connection.execute("UPDATE annotators SET name = name")
    results: dict[str, int] = {}

    def read_all() -> None:
        for name, client, path in (
            ("me", ca1, "/api/me"),
            ("next", ca1, "/api/next"),
            ("mine", ca1, "/api/answers/mine"),
            ("feedback", ca1, "/api/feedback"),
            ("status", pr, "/api/pr/status"),
            ("reviews", pr, "/api/pr/reviews"),
        ):
            results[name] = client.get(path).status_code

    try:
        reader = threading.Thread(target=read_all, daemon=True)
        reader.start()
        reader.join(timeout=10)  # with the write lock taken by reads, each would wait for the writer
        assert not reader.is_alive(), f"reads waited for the writer; done: {results}"
    finally:
        writer.driver_connection.execute("ROLLBACK")
        writer.close()
    assert set(results.values()) == {200}, results


def test_a_read_that_must_claim_a_copy_writes(team):
    ca = team.add("ca9", "CA")
    pr = team.add("pr9", "PR")
    label_gold(pr)
    item = ca.get("/api/next").json()["item"]  # claims a copy: a read that turned into a write
    assert item is not None
    with team.db.read() as s:
        held = s.execute(text("SELECT count(*) FROM assignments WHERE annotator_id = 'ca9'")).scalar()
    assert held == 1
