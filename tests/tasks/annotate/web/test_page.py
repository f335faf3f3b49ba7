"""The labelling page in a real browser (Debian's Chromium, headless, driven by Playwright): log in with a
token, the clip plays in a loop with its face box drawn, a word is chosen by click and by key, submitted,
the next clip appears and the progress advances; a video title with HTML in it stays text."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tasks.annotate.web import auth, service
from tasks.annotate.web.app import COOKIE, create_app
from tasks.annotate.web.db import Answer, Task
from tasks.annotate.web.settings import ServerSettings
from tests.tasks.annotate.web.conftest import TEST_CFG, TITLE, running_server

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def site(loaded):
    """The app on loopback with a CA and a PR registered and the gold items labelled."""
    with loaded.session() as s:
        pr, pr_token = service.add_annotator(s, "Prof", "PR", "pr1")
        _, ca_token = service.add_annotator(s, "Crowd <b>One</b>", "CA", "ca1")
        gold = s.scalars(select(Task).where(Task.gold.is_(True), Task.copy == 0)).all()
        for t in gold:
            service.submit_answer(s, pr, t.task_id, "sadness", 1.0, TEST_CFG)
    with running_server(create_app(loaded, TEST_CFG)) as base:
        yield base, {"CA": ca_token, "PR": pr_token}, loaded


@pytest.fixture
def page(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    profile = tmp_path / "profile"
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=ARGS,
            viewport={"width": 1200, "height": 900},
        )  # fmt: skip
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        context.close()
        assert not errors, errors
    shutil.rmtree(profile, ignore_errors=True)


def log_in(page, base: str, token: str) -> None:
    page.goto(base + "/")
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")


def expected_box(boxes: list[list[float]], t: float) -> list[float]:
    """The page's interpolation, written again: linear between sampled frames, nearest outside."""
    if t <= boxes[0][0]:
        return boxes[0][1:]
    if t >= boxes[-1][0]:
        return boxes[-1][1:]
    i = next(k for k in range(1, len(boxes)) if boxes[k][0] >= t)
    a, b = boxes[i - 1], boxes[i]
    w = (t - a[0]) / (b[0] - a[0])
    return [a[k] + w * (b[k] - a[k]) for k in range(1, 5)]


def test_label_clips_in_the_browser(site, page):
    base, tokens, db = site
    log_in(page, base, tokens["CA"])
    page.wait_for_selector("#labeller:not([hidden])")
    assert page.text_content("#progress") == "1 of 4"
    assert page.text_content("#who").startswith("Crowd <b>One</b>")  # a name is text too
    first_task = page.get_attribute("body", "data-task-id")

    # The clip plays in a loop: its time moves (and wraps around) while we watch.
    page.wait_for_function("() => document.getElementById('clip').currentTime > 0")
    times = []
    for _ in range(6):
        times.append(page.evaluate("document.getElementById('clip').currentTime"))
        page.wait_for_timeout(150)
    assert len(set(times)) >= 3, times
    assert page.evaluate(
        "(() => { const v = document.getElementById('clip'); return v.loop && !v.paused })()"
    )

    # The face box is redrawn on every frame, where the face track says at that frame's time.
    page.wait_for_function("() => Number(document.getElementById('overlay').dataset.frames) > 5")
    state = page.evaluate(
        """(() => {
            const v = document.getElementById('clip'), c = document.getElementById('overlay');
            const [x1, y1, x2, y2] = c.dataset.box.split(',').map(Number);
            const px = (x, y) => Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);
            return {box: [x1, y1, x2, y2], t: Number(c.dataset.mediaTime), frames: Number(c.dataset.frames),
                    cw: v.clientWidth, ch: v.clientHeight, vw: v.videoWidth, vh: v.videoHeight,
                    canvas: [c.width, c.height], edge: px(Math.round(x1), Math.round((y1 + y2) / 2)),
                    inside: px(Math.round((x1 + x2) / 2), Math.round((y1 + y2) / 2))};
        })()"""
    )
    assert state["canvas"] == [state["cw"], state["ch"]]
    assert state["edge"][1] > 200 and state["edge"][3] > 200, state["edge"]  # the green stroke
    assert state["inside"][3] == 0  # the face itself is not covered
    with db.session() as s:
        boxes = s.get(Task, first_task).boxes
    scale = min(state["cw"] / state["vw"], state["ch"] / state["vh"])
    ox, oy = (state["cw"] - state["vw"] * scale) / 2, (state["ch"] - state["vh"] * scale) / 2
    want = expected_box(boxes, state["t"])
    want_px = [ox + want[0] * state["vw"] * scale, oy + want[1] * state["vh"] * scale,
               ox + want[2] * state["vw"] * scale, oy + want[3] * state["vh"] * scale]  # fmt: skip
    assert state["box"] == pytest.approx(want_px, abs=0.2)
    page.wait_for_timeout(300)
    assert page.evaluate("Number(document.getElementById('overlay').dataset.frames)") > state["frames"]

    # The scene's and the expressions' introductions; a title with HTML shown as text, never run.
    assert page.text_content("#scene-name") == "Talkshow (Weak-Interactive Shows)"
    assert "Talk shows" in page.text_content("#scene-desc")
    assert page.text_content("#title") == f"From the video: {TITLE}"
    assert page.locator("#title img, #title b").count() == 0
    assert page.evaluate("document.body.dataset.pwned") is None
    assert page.locator("fieldset[data-expression]").count() == 7
    assert page.locator("button.word").count() == 27  # 26 words + PASS
    assert "Lip corners pulled up" in page.text_content("fieldset[data-expression=Happy] .desc")
    assert page.text_content("button[data-word=rage] kbd") == "a"

    # Choose by click, change the choice by key, submit with Enter: the next clip appears.
    page.click("button[data-word=sadness]")
    assert page.text_content("#chosen") == "sadness"
    assert page.get_attribute("button[data-word=sadness]", "aria-pressed") == "true"
    page.keyboard.press("a")
    assert page.text_content("#chosen") == "rage"
    assert page.get_attribute("button[data-word=sadness]", "aria-pressed") == "false"
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => document.body.dataset.taskId && document.body.dataset.taskId !== {first_task!r}"
    )
    assert page.text_content("#progress") == "2 of 4"
    assert page.text_content("#chosen") == ""
    second_task = page.get_attribute("body", "data-task-id")
    page.wait_for_function("() => document.getElementById('clip').currentTime > 0")
    assert second_task in page.evaluate("document.getElementById('clip').currentSrc")

    # Choose by key only, submit by clicking; PASS has its own key.
    page.keyboard.press("0")
    assert page.text_content("#chosen") == "PASS"
    page.click("#submit")
    page.wait_for_function("() => document.getElementById('progress').textContent === '3 of 4'")

    with db.session() as s:
        got = s.scalars(select(Answer).where(Answer.annotator_id == "ca1").order_by(Answer.answered_at)).all()
    assert [(a.task_id, a.word, a.label) for a in got] == [
        (first_task, "rage", "Angry"),
        (second_task, "PASS", None),
    ]
    assert all(0 < a.time_spent_s < 120 for a in got)


def test_pr_reviews_a_copy_and_the_ca_sees_the_feedback(site, page):
    base, tokens, db = site
    with db.session() as s:  # the CA labels a whole copy (through the service: the page is tested above)
        ca = auth.authenticate(s, tokens["CA"], ServerSettings())
        for _ in range(4):
            item = service.next_item(s, ca, "label")
            service.submit_answer(s, ca, item.task_id, "sadness", 2.0, TEST_CFG)
    log_in(page, base, tokens["PR"])
    page.wait_for_selector("nav button[data-queue=review]")
    page.wait_for_selector("#empty:not([hidden])")  # the gold queue is empty: all gold items are labelled
    page.click("nav button[data-queue=review]")
    card = page.locator(".copy").first
    card.wait_for()
    assert "AC (annotator ca1)" in card.text_content()
    card.locator("textarea").fill("Well judged; <i>keep</i> going.")
    card.locator("button", has_text="Accept").click()
    page.wait_for_selector("#reviews-empty:not([hidden])")

    (session,) = [c["value"] for c in page.context.cookies() if c["name"] == COOKIE]
    page.click("#logout")
    page.wait_for_selector("#token")
    # The browser's logout (a cookie-authenticated write from the page's own Origin) ended the session.
    assert httpx.get(f"{base}/api/me", cookies={COOKIE: session}).status_code == 401
    log_in(page, base, tokens["CA"])
    page.wait_for_selector("#feedback:not([hidden])")
    assert "Well judged; <i>keep</i> going." in page.text_content("#feedback-list")
    assert page.locator("#feedback-list i").count() == 0
