"""The annotation workflow through the HTTP API (paper 3.2, Figure 3(c)): gold first, a copy scored when
complete, UA copies back to another CA, PR review with feedback the CA sees, relabelling by a PR."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tasks.annotate.web.db import Answer, Assignment, Task
from tests.tasks.annotate.web.conftest import BATCH, RIGHT, TEST_CFG, answer_copy, label_gold


def assignments(db, **where) -> list[Assignment]:
    with db.session() as s:
        q = select(Assignment).order_by(Assignment.id)
        for k, v in where.items():
            q = q.where(getattr(Assignment, k) == v)
        return list(s.scalars(q))


def test_gold_items_are_labelled_by_a_pr_before_any_copy_is_handed_out(team):
    ca = team.add("ca1", "CA")
    pr = team.add("pr1", "PR")
    assert ca.get("/api/next").json() == {"item": None}
    first = pr.get("/api/next", params={"queue": "gold"}).json()["item"]
    assert first["progress"] == {"index": 1, "total": 4}  # 2 groups x 2 gold clips, labelled once each
    assert label_gold(pr) == 4
    item = ca.get("/api/next").json()["item"]
    assert item["progress"] == {"index": 1, "total": 4}
    assert item["scene"]["scene"] == "Talkshow" and item["scene"]["description"]
    assert item["boxes"] and len(item["boxes"][0]) == 5


def test_each_group_waits_for_its_own_gold_items_only(team):
    ca, pr = team.add("ca1", "CA"), team.add("pr1", "PR")
    group, labelled = None, 0
    while (item := pr.get("/api/next", params={"queue": "gold"}).json()["item"]) is not None:
        with team.db.read() as s:
            item_group = s.scalar(select(Task.group_id).where(Task.task_id == item["task_id"]))
        if item_group != (group := group or item_group):
            break  # the other group's gold items stay unlabelled
        r = pr.post("/api/answers", json={"task_id": item["task_id"], "word": RIGHT, "time_spent_s": 1})
        labelled += r.status_code == 201
    assert labelled == 2
    # Only copies of the labelled group are handed out, however many of the other are open.
    held = ca.get("/api/next").json()["item"]["copy"]
    assert held["group_id"] == group
    answer_copy(ca, team.db, gold_right=2)
    assert ca.get("/api/next").json() == {"item": None}
    # A copy of the waiting group that a CA holds anyway (pre-assigned at load) takes no answer yet.
    with team.db.session() as s:
        other = s.scalars(select(Assignment).where(Assignment.group_id != group).limit(1)).one()
        other.annotator_id = "ca1"
        task = s.scalars(
            select(Task).where(Task.group_id == other.group_id, Task.copy == other.copy).limit(1)
        ).one()
    r = ca.post("/api/answers", json={"task_id": task.task_id, "word": RIGHT, "time_spent_s": 1})
    assert r.status_code == 409 and "gold" in r.json()["detail"]
    label_gold(pr)
    assert ca.get("/api/next").json()["item"]["copy"]["group_id"] == other.group_id


def test_a_finished_copy_is_scored_and_goes_to_pr_review(team):
    ca, pr = team.add("ca1", "CA"), team.add("pr1", "PR")
    label_gold(pr)
    states = [r["copy_state"] for r in answer_copy(ca, team.db, gold_right=2)]
    assert states == ["labelling"] * 3 + ["pr_review"]
    (a,) = assignments(team.db, annotator_id="ca1")
    assert (a.verdict, a.n_items, a.n_gold, a.n_gold_answered, a.n_gold_correct) == ("AC", 4, 2, 2, 2)
    assert a.estimate == pytest.approx(0.9167, abs=1e-3) and a.ci_low == 0.5 and a.ci_high == 1.0
    # The CA moves on to a copy of the other group (never a second copy of the same group).
    nxt = ca.get("/api/next").json()["item"]
    assert nxt["copy"]["group_id"] != a.group_id


def test_ua_copy_goes_back_to_a_ca_who_holds_no_copy_of_the_group(team):
    cas = [team.add(f"ca{i}", "CA") for i in range(1, 5)]
    pr = team.add("pr1", "PR")
    label_gold(pr)
    for c in cas[1:3]:  # ca2 and ca3 hold the other copies of the first group
        c.get("/api/next")
    answer_copy(cas[0], team.db, gold_right=0)
    first = assignments(team.db, annotator_id="ca1")[0]
    assert (first.verdict, first.state) == ("UA", "back_to_ca")
    (again,) = assignments(team.db, group_id=first.group_id, copy=first.copy, round=2)
    assert again.annotator_id == "ca4" and again.state == "labelling"
    item = cas[3].get("/api/next").json()["item"]
    assert item["copy"] == {"group_id": first.group_id, "copy": first.copy, "round": 2}
    # ca4 labels the copy again: this time it passes the check, round 2 goes to review.
    answer_copy(cas[3], team.db, gold_right=2)
    (again,) = assignments(team.db, group_id=first.group_id, copy=first.copy, round=2)
    assert (again.verdict, again.state) == ("AC", "pr_review")
    holders = {}
    for a in assignments(team.db):
        if a.annotator_id:
            holders.setdefault((a.group_id, a.annotator_id), set()).add(a.copy)
    assert all(len(copies) == 1 for copies in holders.values())


def test_pr_review_feedback_is_visible_to_the_ca(team):
    ca, pr = team.add("ca1", "CA"), team.add("pr1", "PR")
    label_gold(pr)
    answer_copy(ca, team.db, gold_right=2)
    queue = pr.get("/api/pr/reviews").json()
    assert [c["annotator_id"] for c in queue] == ["ca1"] and queue[0]["needs_decision"]
    gold_items = [it for it in queue[0]["items"] if it["gold"]]
    assert [it["gold_label"] for it in gold_items] == ["Sad", "Sad"]
    assert ca.get("/api/feedback").json() == []
    url = f"/api/pr/reviews/{queue[0]['assignment_id']}"
    r = pr.post(url, json={"decision": "accept", "feedback": "Good eye."})
    assert r.status_code == 200 and r.json()["state"] == "done"
    fb = ca.get("/api/feedback").json()
    assert [(f["decision"], f["feedback"], f["verdict"]) for f in fb] == [("accept", "Good eye.", "AC")]
    assert pr.get("/api/pr/reviews").json() == []
    # A second, different review of the same copy is refused.
    r = pr.post(url, json={"decision": "reject"})
    assert r.status_code == 409


def test_ua_copy_gets_feedback_without_a_decision(team):
    ca, pr = team.add("ca1", "CA"), team.add("pr1", "PR")
    team.add("ca2", "CA")
    label_gold(pr)
    answer_copy(ca, team.db, gold_right=0)
    (ua,) = [c for c in pr.get("/api/pr/reviews").json() if c["verdict"] == "UA"]
    assert not ua["needs_decision"]
    assert pr.post(f"/api/pr/reviews/{ua['assignment_id']}", json={"decision": "accept"}).status_code == 422
    r = pr.post(f"/api/pr/reviews/{ua['assignment_id']}", json={"feedback": "Watch the mouth, not the eyes."})
    assert r.status_code == 200
    assert [f["feedback"] for f in ca.get("/api/feedback").json()] == ["Watch the mouth, not the eyes."]


def test_rejected_improper_copy_is_relabelled_by_a_pr(team):
    ca, pr = team.add("ca1", "CA"), team.add("pr1", "PR")
    label_gold(pr)
    answer_copy(ca, team.db, gold_right=1)
    (a,) = assignments(team.db, annotator_id="ca1")
    assert (a.verdict, a.state) == ("IP", "pr_review")
    assert pr.get("/api/next", params={"queue": "relabel"}).json() == {"item": None}
    r = pr.post(f"/api/pr/reviews/{a.id}", json={"decision": "reject", "feedback": "Too many guesses."})
    assert r.json()["state"] == "pr_relabel"
    responses = answer_copy(pr, team.db, gold_right=0, queue="relabel")
    assert len(responses) == 2  # the copy's non-gold items; the gold ones keep their gold label
    assert responses[-1]["copy_state"] == "done"
    (a,) = assignments(team.db, annotator_id="ca1")
    assert (a.state, a.relabeller_id, a.round) == ("done", "pr1", 1)
    with team.db.session() as s:
        relabels = s.scalars(select(Answer).where(Answer.assignment_id == a.id, Answer.role == "PR")).all()
    assert {r.round for r in relabels} == {1} and len(relabels) == 2


def test_export_lands_answers_and_checks_that_the_aggregation_reads(team, batch, tmp_path):
    from data_catalog.io import Catalog
    from tasks.annotate.web.manifests import write_exports
    from tasks.annotate.web.service import export_frames
    from tasks.annotate.workflow import accepted_answers

    ca, pr = team.add("ca1", "CA"), team.add("pr1", "PR")
    label_gold(pr)
    answer_copy(ca, team.db, gold_right=2)  # AC, then accepted
    answer_copy(ca, team.db, gold_right=1)  # IP, then rejected and relabelled
    ac, ip = assignments(team.db, annotator_id="ca1")
    pr.post(f"/api/pr/reviews/{ac.id}", json={"decision": "accept"})
    pr.post(f"/api/pr/reviews/{ip.id}", json={"decision": "reject", "feedback": "no"})
    answer_copy(pr, team.db, gold_right=0, queue="relabel")
    catalog = Catalog(tmp_path / "catalog")
    for _ in range(2):  # exporting again replaces the parts: nothing is duplicated
        with team.db.session() as s:
            answers, checks = export_frames(s, [BATCH])
        write_exports(catalog, answers, checks, {"annotate": TEST_CFG.model_dump(mode="json")})
    got = catalog.read("answers")
    checks = catalog.read("group_checks")
    assert len(got) == 4 + 4 + 4 + 2 and got["answer_id"].is_unique
    assert set(got["role"]) == {"CA", "PR"} and set(got["source"]) == {"web"}
    decided = sorted(zip(checks["verdict"], checks["pr_decision"], strict=True))
    assert decided == [("AC", "accept"), ("IP", "reject")]
    tasks = batch.read("annotation_tasks")
    accepted = accepted_answers(got, checks, tasks, TEST_CFG.max_ca_rounds)
    # The gold labels, the accepted copy's 4 CA answers and the 2 relabels; not the rejected CA answers.
    assert len(accepted) == 4 + 4 + 2
    assert set(accepted.loc[accepted["role"] == "CA", "group_id"]) == {ac.group_id}
