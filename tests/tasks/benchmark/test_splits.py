"""The protocol's splits (paper, section 4.1): 80/20 stratified by label, seeded, disjoint, one side per clip
across the 27 setups, the cross-scenario setups, the release's own split, and the 4_setups export."""

import math

import numpy as np
import pandas as pd
import pytest

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from keywords.taxonomy import load_taxonomy
from tasks.benchmark.splits import (
    assign_sides,
    build_splits,
    cross_setups,
    members,
    parse_setup,
    protocol_setups,
    write_splits,
)


@pytest.fixture(scope="module")
def labels() -> pd.DataFrame:
    """Clips in every scene and expression, 1 to 30 per (scene, expression), so rounding is exercised."""
    tax = load_taxonomy()
    rng = np.random.default_rng(7)
    rows = [
        {"clip_id": f"{scene.name}-{label}-{i:03d}", "scene": scene.name, "label": label}
        for scene in tax.scenes
        for label in tax.expressions
        for i in range(int(rng.integers(1, 31)))
    ]
    return pd.DataFrame(rows).sample(frac=1, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def splits(labels) -> pd.DataFrame:
    return build_splits(labels, test_fraction=0.2, seed=0)


def test_every_scene_and_label_is_split_80_20(splits):
    all_ = splits[splits["setup"] == "All"]
    for (_, _), group in all_.groupby(["scene", "label"]):
        assert (group["side"] == "test").sum() == math.floor(len(group) * 0.2 + 0.5)
    share = all_.groupby("label")["side"].apply(lambda s: (s == "test").mean())
    assert share.between(0.17, 0.23).all(), share


def test_no_clip_is_on_both_sides_and_each_keeps_its_side_in_every_setup(splits):
    assert not splits.duplicated(["setup", "clip_id"]).any()
    single = splits[~splits["setup"].str.contains("-to-")]
    assert (single.groupby("clip_id")["side"].nunique() == 1).all()
    assert (single.groupby("clip_id")["setup"].count() == 3).all()  # All, its scenario, its scene


def test_the_27_setups_have_the_expected_members(labels, splits):
    tax = load_taxonomy()
    names = protocol_setups()
    assert len(names) == 27 and names[:5] == ["All", "DL", "WIS", "SIA", "AI"]
    assert set(splits["setup"]) == set(names) | set(cross_setups())
    by_setup = splits.groupby("setup")["clip_id"].apply(set)
    assert by_setup["All"] == set(labels["clip_id"])
    for code in tax.scenarios:
        scenes = {s.name for s in tax.scenes_of(code)}
        assert by_setup[code] == set(labels.loc[labels["scene"].isin(scenes), "clip_id"])
    for scene in tax.scene_names:
        assert by_setup[scene] == set(labels.loc[labels["scene"] == scene, "clip_id"])


def test_cross_scenario_setups_train_on_one_scenario_and_test_on_another(splits):
    assert len(cross_setups()) == 12 and parse_setup("DL-to-WIS") == ("DL", "WIS")
    cross = members(splits, "DL-to-WIS", "train"), members(splits, "DL-to-WIS", "test")
    assert set(cross[0]["clip_id"]) == set(members(splits, "DL", "train")["clip_id"])
    assert set(cross[1]["clip_id"]) == set(members(splits, "WIS", "test")["clip_id"])


def test_the_split_is_seeded_and_ignores_row_order(labels):
    a = assign_sides(labels, seed=0).set_index("clip_id")["side"]
    b = assign_sides(labels.iloc[::-1], seed=0).set_index("clip_id")["side"]
    c = assign_sides(labels, seed=1).set_index("clip_id")["side"]
    assert a.sort_index().equals(b.sort_index())
    assert (a.sort_index() != c.sort_index()).any()


def test_the_labels_own_split_is_kept(labels):
    own = labels.assign(split=np.where(labels.index % 3 == 0, "test", "train"))
    sided = assign_sides(own, seed=0)
    assert (sided["side"] == own["split"]).all() and set(sided["split_source"]) == {"labels"}
    mixed = assign_sides(own.assign(split=own["split"].where(labels.index % 2 == 0)), seed=0)
    assert set(mixed["split_source"]) == {"labels", "stratified"}
    with pytest.raises(ValueError, match="unknown split values \\['val'\\]"):
        assign_sides(own.assign(split="val"))


def test_bad_setups_and_labels_are_clear_errors(labels, splits):
    with pytest.raises(ValueError, match="unknown setup 'Mars'"):
        parse_setup("Mars")
    with pytest.raises(ValueError, match="unknown setup 'DL-to-DL'"):
        parse_setup("DL-to-DL")
    with pytest.raises(ValueError, match="list clips more than once"):
        assign_sides(pd.concat([labels.head(2), labels.head(1)]))
    with pytest.raises(ValueError, match="setup 'Terror' has no clips"):
        members(splits[splits["setup"] != "Terror"], "Terror", "test")


def test_splits_manifest_round_trip_and_rewrite_duplicates_nothing(tmp_path, splits):
    cat = Catalog(tmp_path / "catalog")
    ctx = RunContext.create({"benchmark": {}}, run_id="bm-test")
    refs = write_splits(cat, splits, ctx)
    assert len(refs) == 22 and sum(r.rows for r in refs) == len(splits)
    write_splits(cat, splits, ctx)
    back = cat.read("splits")
    assert len(back) == len(splits) and set(back["stage"]) == {"benchmark.splits"}


@pytest.mark.slow
def test_export_writes_the_release_setup_files(tmp_path, splits):
    from tasks.benchmark.splits import export_setups

    files = export_setups(splits, tmp_path / "rel", path_root="/data/FERV39k")
    assert len(files) == 27 * 2 * 2  # without frame counts, no DFER-CLIP file
    frames = dict.fromkeys(splits["clip_id"], 16)
    files = export_setups(splits, tmp_path / "rel", path_root="/data/FERV39k", n_frames=frames)
    assert len(files) == 27 * 2 * 3
    dfer_clip = (tmp_path / "rel" / "4_setups" / "All_scenes" / "FERV39K_test.txt").read_text().splitlines()
    assert len(dfer_clip) == len(members(splits, "All", "test"))
    assert all(line.split(" ")[1] == "16" for line in dfer_clip)
    setups = tmp_path / "rel" / "4_setups"
    train = (setups / "All_scenes" / "train_All.csv").read_text().splitlines()
    assert len(train) == len(members(splits, "All", "train"))
    test_dl = (setups / "4_scenarios" / "DL" / "test.csv").read_text().splitlines()
    assert len(test_dl) == len(members(splits, "DL", "test"))
    assert test_dl[0].startswith("/data/FERV39k/2_ClipsforFaceCrop/")
    scene_file = (setups / "22_scenes" / "Terror" / "test_Terror.csv").read_text().splitlines()
    assert {line.split("/")[0] for line in scene_file} == {"Terror"}
