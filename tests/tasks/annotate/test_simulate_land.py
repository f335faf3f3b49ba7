"""The whole workflow on simulated annotators ends with labels for every clip and the event emitted."""

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from flows.labels_event import announce_landing
from tasks.annotate.land import LABELS_EVENT, land
from tasks.annotate.simulate import evaluate, simulate, write_simulation


@pytest.fixture(scope="module")
def sim():
    return simulate(n_clips=160, quality="mixed", seed=2)


def test_simulated_workflow_follows_the_rules(sim):
    checks, answers, tasks = sim.checks, sim.answers, sim.tasks
    assert set(checks["verdict"]) <= {"AC", "IP", "UA"}
    assert checks.loc[checks["verdict"] == "UA", "pr_decision"].isna().all()  # PRs do not review UA
    reviewed = checks[checks["verdict"].isin(["AC", "IP"])]
    assert reviewed["pr_decision"].notna().all() and reviewed["feedback"].notna().all()
    ca = answers[answers["role"] == "CA"]
    holders = ca.groupby("group_id")["annotator_id"].agg(list)
    per_copy = ca.drop_duplicates(["group_id", "copy", "round"]).groupby("group_id")["annotator_id"].agg(list)
    assert all(len(set(v)) == len(v) for v in per_copy)  # never one CA on two copies (or rounds) of a group
    assert holders.map(len).sum() == len(ca)
    gold_tasks = set(tasks.loc[tasks["gold"], "task_id"])
    pr_gold = answers[(answers["role"] == "PR") & answers["task_id"].isin(gold_tasks)]
    assert pr_gold["clip_id"].nunique() == tasks.loc[tasks["gold"], "clip_id"].nunique()
    assert pr_gold["answered_at"].max() < ca["answered_at"].min()  # PRs label the gold first


def test_quality_control_beats_no_quality_control_on_a_mixed_crowd(sim):
    acc = evaluate(sim)
    for method in ("wwta", "majority", "dawid_skene"):
        assert acc[method] > acc[f"{method}_no_qc"]
    assert acc["wwta"] > 0.9


@pytest.mark.slow
def test_evaluation_compares_every_method_registered_now(sim):
    """The methods compared are the registry's at the time of the call, one registered late included."""
    from tasks.annotate.aggregation import AGGREGATORS, MajorityVote

    AGGREGATORS.register("first_vote")(lambda labels, cfg: MajorityVote(labels=labels))
    try:
        acc = evaluate(sim)
    finally:
        AGGREGATORS._factories.pop("first_vote")
    assert set(acc.index) == {
        f"{m}{qc}" for m in [*AGGREGATORS.names(), "first_vote"] for qc in ("", "_no_qc")
    }
    assert acc["first_vote"] == acc["majority"]


@pytest.mark.slow
def test_landing_writes_labels_for_every_clip_and_emits_the_event(sim, tmp_path):
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    catalog = Catalog(tmp_path / "catalog")
    write_simulation(catalog, sim, RunContext.create({}, run_id=sim.batch_id))
    # Prefect's in-memory events client records what would go to the server at PREFECT_API_URL.
    EventsWorker.set_client_override(AssertingEventsClient)
    try:
        with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
            result = announce_landing(
                land(catalog, sim.cfg, RunContext.create({}, run_id="labels-sim"), sim.batch_id)
            )
            EventsWorker.drain_all()
        events = [e for client in AssertingEventsClient.all for e in client.events]
    finally:
        EventsWorker.set_client_override(None)
        AssertingEventsClient.reset()
    labels = catalog.read("labels", latest=True)
    assert sorted(labels["clip_id"]) == sorted(sim.truth.index) and not result.aggregation.unlabelled
    # The hidden truth is in the catalog: anyone can score the landed labels without re-simulating.
    truth = catalog.read("simulated_truth", run_id=sim.batch_id).set_index("clip_id")["label"]
    assert truth.sort_index().equals(sim.truth.sort_index().rename("label"))
    assert (labels["method"] == "wwta").all() and labels["vote_share"].between(0, 1).all()
    assert labels["confidence"].between(0, 1).all() and (labels["n_votes"] >= 1).all()
    first = labels.iloc[0]
    assert sum(v for _, v in first["word_distribution"]) == pytest.approx(1.0)
    assert (labels.set_index("clip_id")["label"].reindex(sim.truth.index) == sim.truth).mean() > 0.9
    assert result.event.sent
    [event] = [e for e in events if e.event == LABELS_EVENT]
    assert dict(event.resource) == {
        "prefect.resource.id": "ferv.labels.labels-sim",
        "ferv.catalog": str(catalog.root),
        "ferv.manifest": "labels",
        "ferv.run_id": "labels-sim",
    }
    assert event.payload["n_labels"] == len(labels)
    # a rerun replaces the same parts: nothing duplicates
    land(catalog, sim.cfg, RunContext.create({}, run_id="labels-sim"), sim.batch_id)
    assert len(catalog.read("labels")) == len(labels)


def land_in_a_fresh_interpreter(sim, tmp_path, then: str, env=None) -> list[str]:
    """Land the simulated batch as ``r`` in a new Python process, run ``then``; the words it printed."""
    catalog = Catalog(tmp_path / "catalog")
    write_simulation(catalog, sim, RunContext.create({}, run_id=sim.batch_id))
    code = (
        "import sys; from data_catalog.io import Catalog; from data_catalog.lineage import RunContext;"
        "from tasks.annotate.config import AnnotateConfig; from tasks.annotate.land import land;"
        f"r = land(Catalog({str(catalog.root)!r}), AnnotateConfig(), RunContext.create({{}}, run_id='l1'));"
        + then
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.slow
def test_landing_without_a_prefect_server_neither_fails_nor_hangs(sim, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    start = time.monotonic()
    announce = "from flows.labels_event import announce_landing; r = announce_landing(r);"
    printed = land_in_a_fresh_interpreter(
        sim, tmp_path, announce + "print(len(r.aggregation.labels), r.event.sent)", env
    )
    assert printed == [str(sim.truth.size), "False"]
    assert time.monotonic() - start < 30


@pytest.mark.slow
def test_landing_builds_the_event_and_leaves_sending_it_to_the_flow(sim, tmp_path):
    show = "e = r.event; print(e.event, e.resource['prefect.resource.id'], e.sent, 'prefect' in sys.modules)"
    # built for run l1, not sent, and Prefect never imported
    assert land_in_a_fresh_interpreter(sim, tmp_path, show) == [
        LABELS_EVENT,
        "ferv.labels.l1",
        "False",
        "False",
    ]


def test_no_task_module_imports_prefect():
    """Talking to Prefect (events included) is the flows' business: tasks/ stays plain functions."""
    root = Path(__file__).resolve().parents[3]
    assert (root / "tasks").is_dir()
    offenders = []
    for path in sorted((root / "tasks").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] == "prefect"]
    assert not offenders


def test_landing_an_unknown_batch_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no annotation tasks for batch 'nope'"):
        land(Catalog(tmp_path), simulate(n_clips=4, seed=0).cfg, RunContext.create({}, run_id="x"), "nope")


def test_write_simulation_round_trips_through_the_catalog(sim, tmp_path):
    catalog = Catalog(tmp_path)
    write_simulation(catalog, sim, RunContext.create({}, run_id=sim.batch_id))
    back = catalog.read("answers").sort_values("answer_id").reset_index(drop=True)
    expected = sim.answers.sort_values("answer_id").reset_index(drop=True)
    pd.testing.assert_series_equal(back["word"], expected["word"])
    assert len(catalog.read("group_checks")) == len(sim.checks)


def test_landing_with_no_accepted_answer_writes_nothing_and_sends_no_event(sim, tmp_path):
    catalog = Catalog(tmp_path)
    ctx = RunContext.create({}, run_id=sim.batch_id)
    write_simulation(catalog, sim, ctx)
    for part in catalog.part_files("answers"):
        part.unlink()  # the batch is packaged, nobody has answered yet
    with pytest.raises(ValueError, match="no accepted answers .* nothing landed"):
        land(catalog, sim.cfg, RunContext.create({}, run_id="labels-x"), sim.batch_id)
    assert not catalog.part_files("labels")
