"""Who may do what: tokens, what a crowd annotator (CA) may read, duplicate and malformed submissions."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tasks.annotate.web.app import COOKIE
from tasks.annotate.web.db import Answer, Task
from tests.tasks.annotate.web.conftest import RIGHT

ENDPOINTS = [
    ("get", "/api/me"),
    ("get", "/api/next"),
    ("get", "/api/vocabulary"),
    ("get", "/api/feedback"),
    ("get", "/api/answers/mine"),
    ("post", "/api/answers"),
    ("get", "/api/tasks/anything/video"),
    ("get", "/api/pr/reviews"),
    ("post", "/api/pr/reviews/1"),
    ("get", "/api/pr/status"),
]


def test_requests_without_a_valid_token_are_refused(team):
    team.add("ca1", "CA")
    for token in (None, "not-a-token", team.tokens["ca1"] + "x"):
        client = TestClient(team.app)
        if token:
            client.headers["Authorization"] = f"Bearer {token}"
        for method, path in ENDPOINTS:
            body = {"json": {"task_id": "x", "word": RIGHT, "time_spent_s": 1}} if method == "post" else {}
            r = getattr(client, method)(path, **body)
            assert r.status_code == 401, (token, path, r.status_code, r.text)
            assert "token" in r.json()["detail"]


def test_login_sets_a_cookie_that_authenticates_the_page(team):
    team.add("ca1", "CA")
    client = TestClient(team.app)
    assert client.post("/api/login", json={"token": "wrong"}).status_code == 401
    r = client.post("/api/login", json={"token": team.tokens["ca1"]})
    assert r.status_code == 200 and r.json()["role"] == "CA"
    assert "httponly" in r.headers["set-cookie"].lower() and COOKIE in client.cookies
    assert client.get("/api/me").json()["id"] == "ca1"
    assert client.post("/api/logout", headers={"Origin": "http://testserver"}).json()["ended"] is True
    assert client.get("/api/me").status_code == 401


def test_ca_cannot_reach_pr_endpoints_or_queues(started):
    _, ca1, *_ = started
    for path in ("/api/pr/reviews", "/api/pr/status", "/api/pr/assignments/1/answers"):
        assert ca1.get(path).status_code == 403, path
    assert ca1.post("/api/pr/reviews/1", json={"decision": "accept"}).status_code == 403
    for queue in ("gold", "relabel"):
        assert ca1.get("/api/next", params={"queue": queue}).status_code == 403


def test_ca_cannot_read_gold_answers_or_other_annotators_answers(started):
    team, ca1, ca2, _pr, item1, item2 = started
    # What a CA is shown never says which item is gold, nor anyone's answer.
    assert not {"gold", "gold_label", "word", "label", "predicted_label"} & set(item1)
    ca2.post("/api/answers", json={"task_id": item2["task_id"], "word": "shock", "time_spent_s": 1})
    mine = ca1.get("/api/answers/mine").json()
    assert mine == []  # not ca2's answer, nor the PR's gold labels
    assert [a["word"] for a in ca2.get("/api/answers/mine").json()] == ["shock"]
    # A CA cannot even fetch the clip of a copy they do not hold (nor tell it from one that does not exist).
    assert ca1.get(item2["video_url"]).status_code == 404
    own = ca1.get(item1["video_url"])
    assert own.status_code == 200 and own.headers["content-type"] == "video/mp4"
    assert own.content[4:8] == b"ftyp"  # an mp4
    # Answering an item of someone else's copy is refused, and stores nothing.
    r = ca1.post("/api/answers", json={"task_id": item2["task_id"], "word": "shock", "time_spent_s": 1})
    assert r.status_code == 404
    with team.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Answer).where(Answer.annotator_id == "ca1")) == 0


def test_video_supports_range_requests_for_looping(started):
    _, ca1, *_rest, item1, _ = started
    r = ca1.get(item1["video_url"], headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100


def test_the_same_answer_submitted_twice_is_stored_once(started):
    team, ca1, *_rest, item1, _ = started
    body = {"task_id": item1["task_id"], "word": "relief", "time_spent_s": 4.2}
    first = ca1.post("/api/answers", json=body)
    again = ca1.post("/api/answers", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["answer_id"] == again.json()["answer_id"] and again.json()["created"] is False
    changed = ca1.post("/api/answers", json={**body, "word": "pride"})
    assert changed.status_code == 409 and "relief" in changed.json()["detail"]
    with team.db.session() as s:
        rows = s.scalars(select(Answer).where(Answer.task_id == item1["task_id"])).all()
    ca_rows = [a for a in rows if a.annotator_id == "ca1"]
    assert len(ca_rows) == 1
    a = ca_rows[0]
    assert (a.word, a.label, a.role, a.round) == ("relief", "Happy", "CA", 1)
    assert (a.time_spent_s, a.source) == (4.2, "web")
    assert a.answered_at.tzinfo is not None
    # The item moved on: the CA now sees the copy's next item.
    assert ca1.get("/api/next").json()["item"]["progress"]["index"] == 2


@pytest.mark.parametrize(
    ("payload", "status", "says"),
    [
        ("not json at all", 422, "JSON"),
        ({"task_id": "T", "time_spent_s": 1}, 422, "word"),
        ({"task_id": "T", "word": "joy", "time_spent_s": 1}, 422, "not one of the 26 words"),
        ({"task_id": "T", "word": "relief", "time_spent_s": -3}, 422, "time_spent_s"),
        ({"task_id": "T", "word": "relief", "time_spent_s": "soon"}, 422, "time_spent_s"),
        ({"task_id": "T", "word": "relief", "time_spent_s": 1, "gold": True}, 422, "gold"),
        ({"task_id": "T", "word": "x" * 500, "time_spent_s": 1}, 422, "word"),
        ({"task_id": "no-such-task", "word": "relief", "time_spent_s": 1}, 404, "no-such-task"),
        ([1, 2, 3], 422, "body"),
    ],
)
def test_malformed_payloads_get_a_clear_4xx(started, payload, status, says):
    team, ca1, *_rest, item1, _ = started
    if isinstance(payload, dict) and payload.get("task_id") == "T":
        payload = {**payload, "task_id": item1["task_id"]}
    if isinstance(payload, str):
        r = ca1.post("/api/answers", content=payload, headers={"Content-Type": "application/json"})
    else:
        r = ca1.post("/api/answers", json=payload)
    assert r.status_code == status, r.text
    assert says in r.text
    with team.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Answer).where(Answer.annotator_id == "ca1")) == 0


def test_malformed_review_and_queue_requests(started):
    _, ca1, _ca2, pr, *_ = started
    assert pr.post("/api/pr/reviews/1", json={"decision": "maybe"}).status_code == 422
    assert pr.post("/api/pr/reviews/999999", json={"decision": "accept"}).status_code == 404
    assert pr.post("/api/pr/reviews/abc", json={"decision": "accept"}).status_code == 422
    r = ca1.get("/api/next", params={"queue": "everything"})
    assert r.status_code == 403 and "label" in r.json()["detail"]


def test_the_page_is_served_with_a_strict_content_security_policy(team):
    client = TestClient(team.app)
    r = client.get("/")
    assert r.status_code == 200 and "<title>" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


def test_gold_labels_are_one_per_clip_and_pr_answers_them_once(started):
    team, _ca1, _ca2, pr, *_ = started
    with team.db.session() as s:
        gold = s.scalars(select(Task).where(Task.gold.is_(True), Task.copy == 1)).first()
    # A gold task of another copy maps to the same gold label: the same answer again stores nothing.
    r = pr.post("/api/answers", json={"task_id": gold.task_id, "word": RIGHT, "time_spent_s": 1})
    assert r.status_code == 200 and r.json()["created"] is False
    r = pr.post("/api/answers", json={"task_id": gold.task_id, "word": "shock", "time_spent_s": 1})
    assert r.status_code == 409
