"""Releases without footage: the licence filter and provenance of an export, the card's account of what
was left out, takedowns (resumable, results marked stale) and the crawl's skip-list."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from data_catalog.formats.ferv39k_release import export_release, import_release
from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from data_catalog.provenance import LICENCE_NOT_ALLOWED, LICENCE_UNKNOWN
from data_catalog.schemas import get_manifest
from data_catalog.takedowns import blocklist, source_hash
from flows.cli import app
from flows.config import ConfigError, load_config
from tasks.crawl.stage import plan_crawl
from tasks.release.takedown import takedown
from tests.tasks.release.catalog import SCENE, write_catalog

ALLOWED = ["creative commons attribution LICENSE (reuse allowed)"]  # case and spacing do not matter


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.slow
def test_export_leaves_out_unknown_and_unallowed_licences_and_the_card_says_so(tmp_path):
    write_catalog(tmp_path / "work")
    out = tmp_path / "release"
    result = _cli("--set", f"storage.root={tmp_path / 'work'}", "export", str(out), "--mode", "copy")
    assert result.exit_code == 0, f"{result.output}{result.exception!r}"
    assert "left out, licence_not_allowed: 1" in result.output
    assert "left out, licence_unknown: 2" in result.output
    prov = pd.read_csv(out / "provenance.csv")
    assert sorted(prov["clip_id"].str[:11].unique()) == ["youtube-aaa"]  # only the CC BY source
    assert set(prov["licence"]) == {"Creative Commons Attribution license (reuse allowed)"}
    row = prov.iloc[0]
    assert (row["uploader"], row["source_url"], row["clip_run_id"]) == (
        "Ann Example",
        "https://www.youtube.com/watch?v=aaa",
        "bc-1",
    )
    assert list(prov["start_time"]) == [0.0, 1.2, 2.4] and list(prov["end_time"]) == [1.0, 2.2, 3.4]
    assert len(pd.read_parquet(out / "provenance.parquet")) == 3
    assert sorted(p.name for p in (out / "2_ClipsforFaceCrop" / SCENE).glob("*/*")) == sorted(prov["clip_id"])
    card = (out / "card.md").read_text()
    assert f"- {LICENCE_UNKNOWN}: 2" in card and f"- {LICENCE_NOT_ALLOWED}: 1" in card
    assert json.loads((out / "left_out.json").read_text()) == {LICENCE_NOT_ALLOWED: 1, LICENCE_UNKNOWN: 2}


def test_opting_in_ships_every_clip_and_the_allowed_list_comes_from_the_config(tmp_path):
    catalog = write_catalog(tmp_path / "work")
    every = export_release(
        catalog, tmp_path / "a", mode="copy", allowed_licences=ALLOWED, include_unlicensed=True
    )
    assert every.n_train + every.n_test == 6 and every.left_out == {}  # opted in: nothing left out
    assert every.provenance["licence"].isna().sum() == 2  # shipped, and still marked unknown
    strict = export_release(catalog, tmp_path / "b", mode="copy", allowed_licences=ALLOWED)
    assert strict.n_train + strict.n_test == 3

    storage = f"storage.root={tmp_path / 'work'}"
    result = _cli("--set", storage, "--set", "release.allowed_licences=[]", "export", str(tmp_path / "c"))
    assert (
        result.exit_code != 0
        and "left out every labelled clip (4 licence_not_allowed, 2 licence_unknown)" in str(result.exception)
    )
    with pytest.raises(ConfigError, match="allowed_licences"):
        load_config(overrides=["release.allowed_licences=['  ']"])


def _stale_setup(catalog) -> None:
    """A benchmark run: splits of setups 'All' and 'Interview' holding a clip of youtube-bbb, results on
    them and on a setup without it."""
    ctx = RunContext.create({"benchmark": 1}, run_id="bench-1")
    splits = [
        {"setup": setup, "clip_id": clip, "scene": SCENE, "label": "Sad", "side": "train",
         "split_source": "labels", **ctx.lineage("splits")}
        for setup in ("All", "Interview") for clip in ("youtube-bbb_0-25", "youtube-aaa_0-25")
    ]  # fmt: skip
    catalog.write("splits", splits, scene=SCENE, run_id=ctx.run_id)
    results = [
        {"model": "r18", "variant": "f8", "train_setup": setup, "test_setup": setup, "group": "overall",
         "status": "ok", "war": 0.5, "uar": 0.5, "n_clips": 2, "n_frames": 8, "streams": "face",
         **ctx.lineage("benchmark")}
        for setup in ("All", "Interview", "Social")
    ]  # fmt: skip
    table = pa.Table.from_pylist(results, schema=get_manifest("results").schema)
    catalog.write("results", table, scene="All", run_id=ctx.run_id)


def test_takedown_is_resumable_and_marks_benchmark_results_stale(tmp_path):
    root = tmp_path / "work"
    catalog = write_catalog(root)
    _stale_setup(catalog)

    def crash(release: Path, prov: pd.DataFrame) -> None:
        raise RuntimeError("killed while rebuilding a card")

    (root / "exports").mkdir()
    export_release(
        catalog, root / "exports" / "v1", mode="copy", allowed_licences=ALLOWED, include_unlicensed=True
    )
    (root / "exports" / "v1" / "card.md").write_text("a card")  # the export has a card to rebuild
    packed = root / "packed" / SCENE  # derived files the manifests do not list, named after their clip
    packed.mkdir(parents=True)
    for name in (
        "youtube-bbb_0-25.npy",
        "youtube-bbb_30-55.frames.npz",
        "youtube-aaa_0-25.npy",
        "youtube-bbb_0-250",
    ):
        (packed / name).write_bytes(b"frames")
    with pytest.raises(RuntimeError, match="killed"):
        takedown(catalog, "youtube-bbb", requested_by="Bob", rebuild_card=crash)
    pending = catalog.read("takedowns", latest=True)
    assert pending["status"].tolist() == ["pending"]
    assert blocklist(catalog).blocks("youtube-bbb")  # crawls skip it from the first moment

    result = takedown(catalog, "youtube-bbb", requested_by="Bob")
    assert result.found and result.n_clips == 2 and result.n_stale_results == 0  # marked by the first try
    results = catalog.read("results").set_index("train_setup")
    assert results.loc["All", "status"] == results.loc["Interview", "status"] == "stale"
    assert results.loc["All", "reason"] == "source_taken_down" and results.loc["Social", "status"] == "ok"
    for name in ("videos", "clips", "candidates", "labels", "splits"):
        frame = catalog.read(name)
        column = "video_id" if "video_id" in frame.columns else "clip_id"
        assert not frame[column].str.startswith("youtube-bbb").any(), name
    # crops, clip files, media, export folders, packed frames; not another clip whose id merely starts alike
    assert [p.name for p in root.rglob("youtube-bbb*")] == ["youtube-bbb_0-250"]
    assert (packed / "youtube-aaa_0-25.npy").is_file()
    assert "youtube-bbb" not in (root / "exports" / "v1" / "provenance.csv").read_text()
    assert (
        "youtube-bbb"
        not in (root / "exports" / "v1" / "4_setups" / "All_scenes" / "train_All.csv").read_text()
    )
    assert len(catalog.read("clips")) == 4 and (root / "media" / SCENE / "youtube-aaa.mp4").is_file()
    done = catalog.read("takedowns", latest=True)
    assert done["status"].tolist() == ["done"] and done["requested_by"].tolist() == ["Bob"]
    assert done["requested_at"].iloc[0] == pending["requested_at"].iloc[0]  # the request's time is kept
    text = done.astype(str).to_string()
    assert "youtube-bbb" not in text and "watch?v=bbb" not in text  # hashes only
    assert done["source_hash"].iloc[0] == source_hash("youtube-bbb")


def test_a_source_never_crawled_is_recorded_and_the_crawl_skips_it(tmp_path, demo_media):
    folder = tmp_path / "footage"
    folder.mkdir()
    shutil.copyfile(demo_media("single-face"), folder / "single_face.mp4")
    shutil.copyfile(demo_media("no-face"), folder / "no_face.mp4")
    catalog = write_catalog(tmp_path / "work")
    url = (folder / "single_face.mp4").resolve().as_uri()
    result = takedown(catalog, url, requested_by="owner", note="request by e-mail")
    assert not result.found and result.n_clips == 0 and result.removed == {}

    cfg = load_config(preset="demo")
    plan = plan_crawl(catalog, ["Interview"], cfg.crawl, RunContext.create({}), sources=[f"local:{folder}"])
    assert plan.n_taken_down == 1 and plan.n_new == 1
    crawled = set(catalog.read("videos")["url"])
    assert url not in crawled and (folder / "no_face.mp4").resolve().as_uri() in crawled


def test_takedown_names_what_is_wrong_with_its_input(tmp_path):
    catalog = write_catalog(tmp_path / "work")
    with pytest.raises(ValueError, match="requested_by is empty"):
        takedown(catalog, "youtube-aaa", requested_by=" ")
    with pytest.raises(ValueError, match="empty video id or URL"):
        takedown(catalog, "  ", requested_by="Ann")
    result = _cli("--set", f"storage.root={tmp_path / 'work'}", "takedown", "youtube-aaa")
    assert result.exit_code != 0 and "--requested-by" in result.output


def _annotation(catalog) -> None:
    """One group of the six clips in three copies (one gold item), answered by three CAs and a PR, with
    one AC, one IP and one UA copy."""
    ctx = RunContext.create({"annotate": 1}, run_id="b0001")
    clips = sorted(catalog.read("labels")["clip_id"])
    truth = catalog.read("labels").set_index("clip_id")["label"]
    tasks, answers, checks = [], [], []
    at = pd.Timestamp("2026-01-01", tz="UTC")
    for copy, (worker, verdict, wrong) in enumerate(
        (("ca-1", "AC", 0), ("ca-2", "IP", 1), ("ca-3", "UA", 4))
    ):
        for position, clip in enumerate(clips):
            task = f"b0001-g0000-c{copy}-{clip}"
            base = {"task_id": task, "batch_id": "b0001", "group_id": "b0001-g0000", "copy": copy,
                    "clip_id": clip, "scene": SCENE}  # fmt: skip
            tasks.append({**base, "position": position, "gold": position == 0, **ctx.lineage("package")})
            label = "Neutral" if position < wrong else truth[clip]
            answers.append(
                {**base, "answer_id": f"{task}-{worker}", "annotator_id": worker, "role": "CA", "round": 1,
                 "word": label.lower(), "label": label, "answered_at": at, "time_spent_s": 2.0,
                 "source": "simulator", **ctx.lineage("annotate")}
            )  # fmt: skip
        checks.append(
            {"group_id": "b0001-g0000", "copy": copy, "round": 1, "scene": SCENE, "annotator_id": worker,
             "n_items": 6, "n_gold": 1, "n_gold_answered": 1, "n_gold_correct": int(wrong == 0),
             "estimate": 0.5, "ci_low": 0.1, "ci_high": 0.9, "verdict": verdict, **ctx.lineage("recapture")}
        )  # fmt: skip
    gold = tasks[0]
    answers.append(
        {**{k: gold[k] for k in ("task_id", "batch_id", "group_id", "copy", "clip_id", "scene")},
         "answer_id": "gold-pr", "annotator_id": "pr-1", "role": "PR", "round": 1, "word": "joy", "label": "Happy",
         "answered_at": at, "time_spent_s": 3.0, "source": "simulator", **ctx.lineage("annotate")}
    )  # fmt: skip
    for name, rows in (("annotation_tasks", tasks), ("answers", answers), ("group_checks", checks)):
        catalog.write(
            name, pa.Table.from_pylist(rows, schema=get_manifest(name).schema), scene=SCENE, run_id="b0001"
        )


def test_card_reports_annotation_and_sources_as_the_manifests_hold_them(tmp_path):
    from tasks.annotate.aggregation.agreement import fleiss_kappa
    from tasks.release.card import build_card, card_labels, card_markdown

    catalog = write_catalog(tmp_path / "work")
    _annotation(catalog)
    card = build_card(catalog)
    text = card_markdown(card)
    assert card.n_clips == 6 and "6 clips in 1 scenes of 1 scenarios" in text
    assert "- annotators by role: CA 3, PR 1" in text and "- copies per group: 3" in text
    assert "- gold share: 0.167" in text and "- answers: 19" in text
    assert "- copy verdicts (AC / IP / UA): 0.333 / 0.333 / 0.333" in text
    crowd = catalog.read("answers").query("role == 'CA'")
    kappa = fleiss_kappa(crowd.rename(columns={"clip_id": "task", "annotator_id": "worker"}))
    assert f"- Fleiss' kappa (crowd): {kappa:.3f}" in text
    assert (
        "- source videos: 3" in text
        and "- uploaders: 3" in text
        and "- upload dates: 20240101 to 20240103" in text
    )
    assert "- unknown: 2" in text and "- Standard YouTube License: 1" in text
    assert "Example" not in text  # the card names no uploader
    assert "- train: 4" in text and "- test: 2" in text
    assert "- labels: `labels-1`" in text

    assert card_labels(catalog, "labels-1").frame.shape[0] == 6
    with pytest.raises(ValueError, match="labels run 'labels-9' has no rows.*labels runs: labels-1"):
        card_labels(catalog, "labels-9")


@pytest.mark.slow
def test_takedown_of_an_imported_clip_cleans_an_export_without_provenance_by_its_release_path(tmp_path):
    from tests.helpers.release import release as _release

    root = tmp_path / "work"
    release = _release(root / "downloads" / "FERV39k")  # the official release, under the storage root
    catalog = Catalog(root / "catalog")
    import_release(release, catalog, RunContext.create({}, run_id="import-1"))
    out = root / "exports" / "old"
    export_release(catalog, out, mode="copy")
    for name in ("provenance.csv", "provenance.parquet"):  # as an export made before provenance existed
        (out / name).unlink()

    elsewhere = tmp_path / "published"  # outside the storage root: named on the command line
    export_release(catalog, elsewhere, mode="copy")
    with pytest.raises(ValueError, match="not export folders"):
        takedown(catalog, "ferv39k-Terror-Fear-0001", requested_by="subject", exports=[tmp_path])
    result = takedown(catalog, "ferv39k-Terror-Fear-0001", requested_by="subject", exports=[elsewhere])
    assert result.found and result.n_clips == 1 and {out, elsewhere} <= set(result.exports)
    assert "Terror-Fear-0001" not in (elsewhere / "provenance.csv").read_text()
    assert not (elsewhere / "2_ClipsforFaceCrop" / "Terror" / "Fear" / "0001").exists()
    faces = out / "2_ClipsforFaceCrop"
    assert not (faces / "Terror" / "Fear" / "0001").exists()
    # Clips that share the folder name in other scenes or expressions stay.
    for rel in ("Terror/Happy/0001", "Liveshow/Happy/0001", "Liveshow/Sad/0001", "Terror/Fear/0002"):
        assert (faces / rel).is_dir(), rel
    lines = (out / "4_setups" / "All_scenes" / "train_All.csv").read_text().splitlines()
    assert "Terror/Fear/0001 Fear" not in lines and "Terror/Happy/0001 Happy" in lines
    assert not (release / "2_ClipsforFaceCrop" / "Terror" / "Fear" / "0001").exists()  # its crops went too
    assert "ferv39k-Terror-Fear-0001" not in set(catalog.read("labels")["clip_id"])
