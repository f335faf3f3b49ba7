"""Packaging: groups, gold items, shuffled copies, copy assignment (paper 3.2)."""

import pandas as pd
import pytest

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from tasks.annotate.config import AnnotateConfig
from tasks.annotate.package import (
    assign_copies,
    gold_count,
    package,
    package_stage,
    reassign_copy,
)


def selections(n: int = 130, scenes=("Interview", "Talkshow")) -> pd.DataFrame:
    labels = ["Happy", "Sad", "Neutral", "Angry"]
    return pd.DataFrame(
        {
            "clip_id": [f"v{i:04d}_0-30" for i in range(n)],
            "scene": [scenes[i % len(scenes)] for i in range(n)],
            "label": [labels[i % len(labels)] for i in range(n)],
            "selected": [i % 13 != 0 for i in range(n)],
            "clip_path": [f"clips/v{i:04d}.mp4" for i in range(n)],
        }
    )


def test_groups_hold_one_scene_near_equal_sizes_and_five_percent_gold():
    sel = selections()
    tasks = package(sel, AnnotateConfig(group_size=25), "b1")
    kept = sel[sel["selected"]]
    copy0 = tasks[tasks["copy"] == 0]
    assert sorted(copy0["clip_id"]) == sorted(kept["clip_id"])  # every selected clip once per copy
    assert (copy0.groupby("group_id")["scene"].nunique() == 1).all()
    sizes = copy0.groupby("group_id").size()
    scene_of = copy0.groupby("group_id")["scene"].first()
    for _, group_sizes in sizes.groupby(scene_of):
        assert group_sizes.max() - group_sizes.min() <= 1
    assert sizes.max() <= 25
    gold = copy0.groupby("group_id")["gold"].sum()
    assert (gold == sizes.map(lambda n: gold_count(n, 0.05))).all()
    assert (gold >= 1).all()
    assert tasks["task_id"].is_unique
    first = tasks.iloc[0]
    assert first["task_id"] == f"{first['group_id']}-c0-{first['clip_id']}"
    assert first["group_id"].startswith("b1-g0")


def test_gold_count_rounds_half_up_and_keeps_at_least_one():
    assert gold_count(50, 0.05) == 3
    assert gold_count(20, 0.05) == 1
    assert gold_count(10, 0.05) == 1
    assert gold_count(100, 0.05) == 5
    assert gold_count(2, 0.9) == 1  # never the whole group


def test_copies_are_shuffled_permutations_with_the_same_gold():
    tasks = package(selections(60, ("Interview",)), AnnotateConfig(group_size=60, n_copies=3), "b1")
    orders = [c.sort_values("position")["clip_id"].tolist() for _, c in tasks.groupby("copy")]
    assert len({tuple(o) for o in orders}) == 3
    assert all(sorted(o) == sorted(orders[0]) for o in orders)
    gold = [set(c.loc[c["gold"], "clip_id"]) for _, c in tasks.groupby("copy")]
    assert gold[0] == gold[1] == gold[2]
    positions = tasks.groupby("copy")["position"].apply(sorted)
    assert all(p == list(range(len(orders[0]))) for p in positions)


def test_packaging_is_deterministic_and_ignores_input_order():
    sel = selections()
    a = package(sel, AnnotateConfig(seed=3), "b1")
    b = package(sel.sample(frac=1, random_state=1), AnnotateConfig(seed=3), "b1")
    pd.testing.assert_frame_equal(a, b)
    c = package(sel, AnnotateConfig(seed=4), "b1")
    assert not a["task_id"].equals(c["task_id"])


def test_gold_covers_several_predicted_expressions():
    tasks = package(selections(100, ("Interview",)), AnnotateConfig(group_size=100), "b1")
    gold = tasks[(tasks["copy"] == 0) & tasks["gold"]]
    assert len(gold) == 5 and gold["predicted_label"].nunique() == 4


@pytest.mark.parametrize(
    ("frame", "batch", "message"),
    [
        (pd.DataFrame({"clip_id": ["a"]}), "b1", "missing columns"),
        (pd.DataFrame({"clip_id": ["a", "a"], "scene": ["X", "X"]}), "b1", "more than once"),
        (pd.DataFrame({"clip_id": ["a"], "scene": ["X"], "selected": [False]}), "b1", "no selected clips"),
        (pd.DataFrame({"clip_id": ["a"], "scene": ["X"]}), "bad batch/", "batch id"),
    ],
)
def test_bad_selections_are_clear_errors(frame, batch, message):
    with pytest.raises(ValueError, match=message):
        package(frame, AnnotateConfig(), batch)


def test_no_annotator_gets_two_copies_of_a_group_and_loads_are_balanced():
    tasks = package(selections(400), AnnotateConfig(group_size=20), "b1")
    cas = [f"ca-{i}" for i in range(7)]
    got = assign_copies(tasks, cas, seed=0)
    assert set(got) == set(map(tuple, tasks[["group_id", "copy"]].drop_duplicates().itertuples(index=False)))
    per_group = pd.Series(got).groupby(level=0).agg(list)
    assert all(len(set(v)) == len(v) for v in per_group)
    load = pd.Series(list(got.values())).value_counts()
    assert load.max() - load.min() <= 1
    assert got == assign_copies(tasks, cas, seed=0)


def test_too_few_annotators_is_an_error():
    tasks = package(selections(40), AnnotateConfig(group_size=20, n_copies=3), "b1")
    with pytest.raises(ValueError, match="only 2 annotators"):
        assign_copies(tasks, ["a", "b"], seed=0)
    with pytest.raises(ValueError, match="more than once"):
        assign_copies(tasks, ["a", "b", "a"], seed=0)


def test_reassign_picks_someone_who_never_held_the_group():
    assert reassign_copy({"a", "b", "c"}, ["a", "b", "c", "d"], seed=0) == "d"
    assert reassign_copy({"a"}, ["a", "b", "c"], seed=0, load={"b": 5, "c": 1}) == "c"
    with pytest.raises(ValueError, match="no annotator left"):
        reassign_copy({"a", "b"}, ["a", "b"], seed=0)


def test_package_stage_writes_per_scene_and_a_rerun_duplicates_nothing(tmp_path):
    catalog = Catalog(tmp_path)
    ctx = RunContext.create({"annotate": {}}, run_id="b1")
    sel = selections(60).assign(order=1)
    for scene, rows in sel.groupby("scene"):
        catalog.write("selections", rows.assign(**ctx.lineage("subsample")), scene=scene, run_id="sub")
    refs = package_stage(catalog, AnnotateConfig(), ctx, "b1")
    assert sorted(r.scene for r in refs) == ["Interview", "Talkshow"]
    again = package_stage(catalog, AnnotateConfig(seed=9), ctx, "b1")
    assert sorted(r.path for r in again) == sorted(r.path for r in refs)
    tasks = catalog.read("annotation_tasks", run_id="b1")
    assert len(tasks) == 3 * int(sel["selected"].sum()) and tasks["task_id"].is_unique
