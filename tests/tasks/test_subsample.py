import random

import pandas as pd
import pytest

from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from data_catalog.release_counts import release_prior, release_scene_sizes
from flows.config import ConfigError, load_config
from tasks.subsample import (
    SubsampleConfig,
    allocate,
    largest_remainder,
    subsample,
    subsample_scene,
    subsample_summary,
)


def _pool(**counts: int) -> pd.DataFrame:
    rows = [
        {"clip_id": f"{label.lower()}-{i:04d}", "label": label}
        for label, n in counts.items()
        for i in range(n)
    ]
    return pd.DataFrame(rows, columns=["clip_id", "label"])


def _scores_rows(scene: str, ctx: RunContext, **counts: int) -> list[dict]:
    rows = []
    for r in _pool(**counts).itertuples():
        rows.append(
            {
                "clip_id": f"{scene}-{r.clip_id}",
                "scene": scene,
                "status": "ok",
                "probs": [1 / 7] * 7,
                "label": r.label,
                "confidence": 0.5,
                "entropy": 1.0,
                "n_frames": 16,
                "model_name": "mini-xception",
                "device": "cpu",
                **ctx.lineage("refine"),
            }
        )
    return rows


def test_default_prior_is_the_release_test_distribution():
    prior = release_prior()
    published = {
        "Neutral": 25.0,
        "Angry": 18.9,
        "Happy": 18.8,
        "Sad": 17.8,
        "Surprise": 8.1,
        "Disgust": 6.0,
        "Fear": 5.5,
    }
    assert list(prior) == ["Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
    for expression, percent in published.items():
        assert prior[expression] * 100 == pytest.approx(percent, abs=0.06), expression
    assert SubsampleConfig().prior_for("War") == prior
    assert sum(release_scene_sizes().values()) == 38935 and release_scene_sizes()["Action"] == 804


def test_per_scene_prior_follows_that_scene_in_the_release():
    cfg = SubsampleConfig(prior="per_scene", prior_split="all")
    assert cfg.prior_for("Terror")["Fear"] == pytest.approx(332 / 2099)
    assert cfg.prior_for("Liveshow")["Happy"] == pytest.approx(269 / 1131)
    assert cfg.prior_for("Terror") != cfg.prior_for("Liveshow")


def test_size_is_factor_times_target_defaulting_to_the_release_scene_size():
    cfg = SubsampleConfig(targets={"Terror": 10}, factor=2)
    assert cfg.size_for("Terror") == 20
    assert cfg.size_for("Action") == 2 * 804


def test_bad_priors_and_targets_are_errors_naming_the_key():
    with pytest.raises(ConfigError, match="unknown expressions \\['Joy'\\]"):
        load_config(overrides=["subsample.prior={Joy: 1}"])
    with pytest.raises(ConfigError, match="unknown scenes \\['Atlantis'\\]"):
        load_config(overrides=["subsample.targets={Atlantis: 5}"])
    with pytest.raises(ConfigError, match="subsample.factor"):
        load_config(overrides=["subsample.factor=0"])
    assert (
        load_config(overrides=["subsample.prior={Happy: 1, Sad: 3}"]).subsample.prior_for("War")["Sad"]
        == 0.75
    )


def test_largest_remainder_sums_exactly():
    quotas = largest_remainder(100, release_prior())
    assert sum(quotas.values()) == 100
    assert quotas == {
        "Angry": 19,
        "Disgust": 6,
        "Fear": 5,
        "Happy": 19,
        "Neutral": 25,
        "Sad": 18,
        "Surprise": 8,
    }


def test_exact_quotas_when_the_pool_allows():
    pool = _pool(Angry=80, Disgust=80, Fear=80, Happy=80, Neutral=80, Sad=80, Surprise=80)
    result = subsample(pool, release_prior(), 200, seed=1)
    assert result.n_selected == 200 and len(set(result.selected)) == 200
    achieved = dict(zip(result.table["expression"], result.table["achieved"], strict=True))
    assert achieved == largest_remainder(200, release_prior())
    assert (result.table["target"] == result.table["achieved"]).all()
    assert result.shortfalls == {}
    labels = pool.set_index("clip_id").loc[result.selected, "label"].value_counts().to_dict()
    assert labels == {k: v for k, v in achieved.items() if v}
    assert result.tv < 0.01 and result.kl < 0.001


def test_a_short_class_is_taken_whole_and_its_shortfall_redistributed_in_proportion():
    pool = _pool(Angry=100, Fear=3, Happy=100)
    result = subsample(pool, {"Angry": 1, "Fear": 1, "Happy": 2}, 40, seed=0)
    table = result.table.set_index("expression")
    assert table.loc[["Angry", "Fear", "Happy"], "target"].tolist() == [10, 10, 20]
    # Fear's 7 missing clips go 1:2 to Angry and Happy: 37 * 1/3 = 12.33, 37 * 2/3 = 24.67.
    assert table.loc[["Angry", "Fear", "Happy"], "achieved"].tolist() == [12, 3, 25]
    assert result.shortfalls == {"Fear": 7}
    assert result.n_selected == 40


def test_redistribution_repeats_until_every_quota_fits():
    # After Fear is capped at 3, Angry's raised quota (12) exceeds its 11 clips: it is capped too.
    assert allocate(40, {"Angry": 1, "Fear": 1, "Happy": 2}, {"Angry": 11, "Fear": 3, "Happy": 100}) == {
        "Angry": 11,
        "Fear": 3,
        "Happy": 26,
    }


def test_a_pool_smaller_than_n_is_taken_whole_and_reported_short():
    pool = _pool(Angry=2, Happy=5)
    result = subsample(pool, {"Angry": 1, "Happy": 1}, 20, seed=0)
    assert result.n_selected == 7 and result.n_requested == 20
    assert result.shortfalls == {"Angry": 8, "Happy": 5}


def test_zero_prior_classes_fill_only_after_the_others_run_out():
    pool = _pool(Angry=5, Sad=10)
    assert subsample(pool, {"Angry": 1}, 5, seed=0).table.set_index("expression")["achieved"]["Sad"] == 0
    result = subsample(pool, {"Angry": 1}, 8, seed=0)
    assert result.table.set_index("expression").loc[["Angry", "Sad"], "achieved"].tolist() == [5, 3]
    assert result.kl == float("inf") and result.tv == pytest.approx(3 / 8)


def test_same_seed_same_selection_other_seed_another_and_row_order_is_irrelevant():
    pool = _pool(Angry=50, Happy=50, Neutral=50, Sad=50)
    prior = {"Angry": 1, "Happy": 1, "Neutral": 2, "Sad": 1}
    first = subsample(pool, prior, 40, seed=7).selected
    shuffled = pool.sample(frac=1, random_state=3)
    assert subsample(shuffled, prior, 40, seed=7).selected == first
    assert set(subsample(pool, prior, 40, seed=8).selected) != set(first)


def test_selection_order_keeps_every_prefix_close_to_the_quotas():
    pool = _pool(Angry=50, Neutral=50)
    result = subsample(pool, {"Angry": 1, "Neutral": 3}, 40, seed=0)
    first_eight = [clip.split("-")[0] for clip in result.selected[:8]]
    assert first_eight.count("angry") == 2 and first_eight.count("neutral") == 6


def test_bad_scores_are_errors_naming_the_problem():
    with pytest.raises(ValueError, match="outside the prior's classes"):
        subsample(pd.DataFrame({"clip_id": ["a"], "label": ["Joy"]}), release_prior(), 1, seed=0)
    with pytest.raises(ValueError, match="duplicate clip ids"):
        subsample(pd.DataFrame({"clip_id": ["a", "a"], "label": ["Sad", "Sad"]}), release_prior(), 1, seed=0)
    with pytest.raises(ValueError, match="lack columns"):
        subsample(pd.DataFrame({"clip_id": ["a"]}), release_prior(), 1, seed=0)


def test_subsample_scene_writes_every_scored_clip_and_a_rerun_skips(tmp_path):
    catalog = Catalog(tmp_path)
    ctx = RunContext.create({"subsample": {}}, run_id="run-sub")
    rows = _scores_rows("Terror", ctx, Angry=30, Fear=2, Happy=30, Neutral=30, Sad=30)
    failed = dict(
        rows[0], clip_id="Terror-broken", status="failed", reason="no_face_crops", probs=None, label=None
    )
    catalog.write("fer_scores", [*rows, failed], scene="Terror", run_id="run-refine")
    cfg = SubsampleConfig(targets={"Terror": 25}, seed=3)

    ref = subsample_scene("Terror", cfg, ctx, catalog)
    sel = catalog.read("selections", scene="Terror")
    assert ref.rows == len(rows) == len(sel) and "Terror-broken" not in set(sel["clip_id"])
    chosen = sel[sel["selected"]].sort_values("order")
    assert len(chosen) == 50 and chosen["order"].tolist() == list(range(50))
    assert sel.loc[~sel["selected"], "order"].isna().all()
    assert (chosen["label"] == "Fear").sum() == 2  # the whole Fear pool; the prior asks for 3
    assert set(sel["stage"]) == {"subsample"} and set(sel["run_id"]) == {"run-sub"}

    mtime = (tmp_path / ref.path).stat().st_mtime_ns
    again = subsample_scene("Terror", cfg, ctx, catalog)
    assert again == ref and (tmp_path / ref.path).stat().st_mtime_ns == mtime
    other = subsample_scene("Terror", cfg.model_copy(update={"seed": 4}), ctx, catalog, force=True)
    resel = catalog.read("selections", scene="Terror")
    assert other.rows == ref.rows and len(resel) == len(sel)  # replaced, not duplicated

    summary = subsample_summary(catalog, cfg)
    assert summary["target"].sum() == 50 and summary["achieved"].sum() == 50
    by_class = summary.set_index("expression")
    assert by_class.loc["Fear", ["available", "target", "achieved", "shortfall"]].tolist() == [2, 3, 2, 1]
    assert by_class.loc["Disgust", "shortfall"] == by_class.loc["Disgust", "target"] > 0  # none scored


def test_scenes_draw_independently(tmp_path):
    catalog = Catalog(tmp_path)
    ctx = RunContext.create({}, run_id="run-sub")
    for scene in ("War", "Crime"):
        catalog.write("fer_scores", _scores_rows(scene, ctx, Sad=40, Happy=40), scene=scene, run_id="r")
    cfg = SubsampleConfig(prior={"Sad": 1, "Happy": 1}, targets={"War": 5, "Crime": 5})
    picked = {}
    for scene in ("War", "Crime"):
        subsample_scene(scene, cfg, ctx, catalog)
        sel = catalog.read("selections", scene=scene)
        picked[scene] = {c.split("-", 1)[1] for c in sel.loc[sel["selected"], "clip_id"]}
    assert len(picked["War"]) == 10 and picked["War"] != picked["Crime"]
    random.seed(0)  # nothing above depends on the global random state
