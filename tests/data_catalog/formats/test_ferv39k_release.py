import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from data_catalog.formats.ferv39k_release import BENCHMARK_LABEL_ORDER, export_release, import_release
from data_catalog.io import Catalog
from data_catalog.lineage import RunContext
from data_catalog.schemas import get_manifest
from data_catalog.stratified_split import stratified_split
from flows.cli import app
from tests.helpers.release import RELEASE
from tests.helpers.release import jpeg as _jpeg
from tests.helpers.release import release as _release


def _ctx(run_id: str) -> RunContext:
    return RunContext.create({"import": "ferv39k"}, run_id=run_id)


def _manifests(catalog: Catalog) -> pd.DataFrame:
    labels = catalog.read("labels", latest=True)[
        ["clip_id", "scene", "scenario", "label", "label_index", "split"]
    ]
    return labels.sort_values("clip_id").reset_index(drop=True)


def test_import_reads_clips_candidates_and_labels(tmp_path):
    catalog = Catalog(tmp_path / "catalog")
    result = import_release(_release(tmp_path / "FERV39k"), catalog, _ctx("import-a"), fps=25)
    assert result.n_clips == 6 and result.problems == [] and result.splits == {"train": 4, "test": 2}
    labels = _manifests(catalog)
    # Folder names collide across scenes, so every id is qualified by scene and expression.
    assert labels["clip_id"].tolist() == sorted(f"{s}-{e}-{c}" for s, e, c, _, _ in RELEASE)
    row = labels.set_index("clip_id").loc["Terror-Fear-0002"]
    assert (row["scene"], row["scenario"], row["label"], row["label_index"], row["split"]) == (
        "Terror", "AI", "Fear", 2, "test"
    )  # fmt: skip
    clips = catalog.read("clips").set_index("clip_id")
    assert clips.loc["Liveshow-Happy-0001", "n_frames"] == 5
    assert clips.loc["Liveshow-Happy-0001", "duration"] == pytest.approx(0.2)
    cand = catalog.read("candidates").set_index("clip_id")
    assert cand["keep"].all() and cand.loc["Terror-Fear-0002", "n_crops"] == 4
    assert cand.loc["Terror-Fear-0002", "face_dir"] == "FERV39k/2_ClipsforFaceCrop/Terror/Fear/0002"
    assert catalog.resolve_path(cand.loc["Terror-Fear-0002", "face_dir"]).is_dir()
    assert catalog.resolve_path(cand.loc["Terror-Fear-0002", "scene_dir"]).is_dir()
    assert clips.loc["Terror-Fear-0002", "name"] == "0002"  # the release's own name travels with the clip
    assert set(catalog.read("labels")["source"]) == {"ferv39k"}


def test_import_records_bad_lines_and_missing_crops_and_loses_nothing_else(tmp_path):
    extra = {
        "train": ["Atlantis/Happy/0001 Happy", "Terror/Fear/0009 Fear", "Terror/Sad/0003 Happy", "garbage"],
        "test": ["Terror/Joy/0001 Joy"],
    }
    catalog = Catalog(tmp_path / "catalog")
    result = import_release(_release(tmp_path / "rel", extra_lines=extra), catalog, _ctx("import-b"))
    reasons = sorted(p.reason for p in result.problems)
    assert reasons == ["label_folder_mismatch", "malformed_line", "malformed_line", "unknown_scene"]
    assert {p.where for p in result.problems} >= {"train_All.csv:5", "test_All.csv:3"}
    assert result.n_clips == 7 and result.n_missing_crops == 1
    cand = catalog.read("candidates").set_index("clip_id")
    assert not cand.loc["Terror-Fear-0009", "keep"]
    assert cand.loc["Terror-Fear-0009", "reason"] == "missing_face_crops"
    assert cand["keep"].sum() == 6


def test_importing_again_replaces_instead_of_duplicating(tmp_path):
    release = _release(tmp_path / "rel")
    catalog = Catalog(tmp_path / "catalog")
    import_release(release, catalog, _ctx("import-c"))
    import_release(release, catalog, _ctx("import-c"))
    assert len(catalog.read("labels")) == len(catalog.read("clips")) == 6


def test_a_folder_that_is_no_release_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no 2_ClipsforFaceCrop"):
        import_release(tmp_path, Catalog(tmp_path / "catalog"), _ctx("import-d"))


def test_export_then_import_round_trips_ids_scenes_labels_and_splits(tmp_path):
    first = Catalog(tmp_path / "a")
    import_release(_release(tmp_path / "rel"), first, _ctx("import-e"))
    out = tmp_path / "export"
    result = export_release(first, out, mode="hardlink")
    assert (result.n_train, result.n_test, result.skipped) == (4, 2, {})
    # The official clips keep their official relative paths (ids stay unique: 'Terror-Fear-0002').
    frame = out / "2_ClipsforFaceCrop" / "Terror" / "Fear" / "0002" / "004.jpg"
    assert frame.stat().st_nlink >= 2  # a hard link to the source crop, not a copy
    assert (out / "3_ClipsforScenImages" / "Terror" / "Fear" / "0002" / "001.jpg").is_file()

    release_lines = (out / "4_setups" / "All_scenes" / "test_All.csv").read_text().splitlines()
    assert release_lines == ["Liveshow/Sad/0001 Sad", "Terror/Fear/0002 Fear"]
    official = sorted(f"{s}/{e}/{c}" for s, e, c, _, _ in RELEASE)
    exported = (out / "4_setups" / "All_scenes" / "train_All.csv").read_text().splitlines() + release_lines
    assert sorted(line.split()[0] for line in exported) == official
    index_lines = (out / "4_setups" / "All_scenes" / "train.csv").read_text().splitlines()
    happy = [line for line in index_lines if "/Happy/" in line]
    assert len(index_lines) == 4 and all(
        line.endswith(f" {BENCHMARK_LABEL_ORDER.index('Happy')}") for line in happy
    )
    for line in index_lines:  # MAE-DFER reads these paths as they are
        assert Path(line.rsplit(" ", 1)[0]).is_dir()
    assert (out / "4_setups" / "22_scenes" / "Terror" / "train_Terror.csv").read_text().count("\n") == 2
    assert (out / "4_setups" / "4_scenarios" / "AI" / "test_AI.csv").read_text().count("\n") == 1

    second = Catalog(tmp_path / "b")
    back = import_release(out, second, _ctx("import-f"))
    assert back.problems == [] and back.n_missing_crops == 0
    pd.testing.assert_frame_equal(_manifests(second), _manifests(first))


def test_export_of_predicted_labels_uses_a_stratified_split_and_skips_clips_without_crops(tmp_path):
    catalog = Catalog(tmp_path / "catalog")
    ctx = _ctx("run-x")
    crops = tmp_path / "crops"
    candidates, selections = [], []
    for i in range(20):
        clip_id = f"vid{i:02d}_{i * 10}-{i * 10 + 8}"
        face_dir = crops / clip_id
        if i != 19:  # the last clip lost its crops
            _jpeg(face_dir / "000.jpg", i)
        base = {"clip_id": clip_id, "scene": "War", **ctx.lineage("t")}
        candidates.append(
            {**base, "video_id": f"vid{i:02d}", "keep": True, "measures": {}, "face_dir": str(face_dir)}
        )
        selections.append({**base, "label": "Sad" if i < 10 else "Angry", "selected": True, "order": i})
    schema = get_manifest("candidates").schema
    catalog.write(
        "candidates", pa.Table.from_pylist(candidates, schema=schema), scene="War", run_id=ctx.run_id
    )
    catalog.write("selections", selections, scene="War", run_id=ctx.run_id)

    result = export_release(catalog, tmp_path / "out", mode="copy", seed=5)
    assert result.label_source == "selections" and result.skipped == {"no_face_dir": 1, "no_scene_images": 19}
    assert (result.n_train, result.n_test) == (15, 4)
    test = (tmp_path / "out" / "4_setups" / "All_scenes" / "test_All.csv").read_text().splitlines()
    assert sum(" Sad" in t for t in test) == 2 and sum(" Angry" in t for t in test) == 2
    copied = next((tmp_path / "out" / "2_ClipsforFaceCrop" / "War" / "Sad").glob("*/000.jpg"))
    assert copied.stat().st_nlink == 1

    rerun = export_release(catalog, tmp_path / "out", mode="copy", seed=5)
    assert rerun.n_reused == 19 and (rerun.n_train, rerun.n_test) == (15, 4)
    assert (tmp_path / "out" / "4_setups" / "All_scenes" / "test_All.csv").read_text().splitlines() == test


def test_stratified_split_is_seeded_and_80_20_per_scene_and_label():
    labels = pd.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(60)],
            "scene": ["War"] * 30 + ["Crime"] * 30,
            "label": ["Sad", "Happy", "Fear"] * 20,
        }
    )
    split = stratified_split(labels, 0.2, seed=1)
    assert (
        labels.assign(split=split).groupby(["scene", "label"])["split"].apply(lambda s: (s == "test").sum())
        == 2
    ).all()
    assert split.equals(stratified_split(labels.sample(frac=1, random_state=0), 0.2, seed=1).sort_index())
    assert not split.equals(stratified_split(labels, 0.2, seed=2))


@pytest.mark.slow
def test_cli_import_then_export(tmp_path):
    release = _release(tmp_path / "rel")
    runner = CliRunner()
    root = f"storage.root={tmp_path / 'work'}"
    result = runner.invoke(app, ["--set", root, "import", str(release), "--format", "ferv39k"])
    assert result.exit_code == 0, result.output
    assert "imported 6 clips (test 2, train 4)" in result.output and "deprecated" not in result.output
    again = runner.invoke(app, ["--set", root, "import", "ferv39k", str(release)])  # the old spelling
    assert again.exit_code == 0 and len(Catalog(tmp_path / "work" / "catalog").read("labels")) == 6
    assert "the positional FORMAT is deprecated" in again.output and "use --format" in again.output
    unknown = runner.invoke(app, ["--set", root, "import", str(release), "--format", "dfew"])
    assert "unknown format 'dfew'" in str(unknown.exception)
    out = tmp_path / "out"
    # An imported release's clips have no crawled licence: the export refuses them unless opted in.
    refused = runner.invoke(app, ["--set", root, "export", str(out), "--mode", "copy"])
    assert refused.exit_code != 0 and "6 licence_unknown" in str(refused.exception)
    assert "--include-unlicensed" in str(refused.exception) and not (out / "4_setups").exists()
    result = runner.invoke(
        app,
        [
            "--set",
            root,
            "export",
            "--out",
            str(out),
            "--format",
            "ferv39k",
            "--mode",
            "copy",
            "--include-unlicensed",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "exported 4 train + 2 test clips" in result.output
    assert {"card.md", "croissant.json", "provenance.csv", "provenance.parquet"} <= {
        p.name for p in out.iterdir()
    }
    assert "deprecated" not in result.output
    bad = runner.invoke(app, ["--set", root, "export", str(out), "--layout", "dfew"])  # the old spellings
    assert "the positional OUT is deprecated" in bad.output and "use --out" in bad.output
    assert "--layout is deprecated" in bad.output and "use --format" in bad.output
    assert bad.exit_code != 0 and "unknown format 'dfew'" in str(bad.exception)


def _parse_mae_dfer(path: Path) -> list[tuple[str, int]]:
    """MAE-DFER's split file, from its format: one clip a line, '<frame folder> <label index>'."""
    rows = []
    for line in path.read_text().splitlines():
        folder, label = line.split(" ")
        rows.append((folder, int(label)))
    return rows


def _parse_dfer_clip(path: Path) -> list[tuple[str, int, int]]:
    """DFER-CLIP's annotation file, from its format: '<frame folder> <number of frames> <label index>',
    the frames being the folder's files in sorted order, labels 0-6 in DFEW's order."""
    rows = []
    for line in path.read_text().splitlines():
        folder, frames, label = line.split(" ")
        rows.append((folder, int(frames), int(label)))
    return rows


def test_split_files_are_what_mae_dfer_and_dfer_clip_read(tmp_path):
    catalog = Catalog(tmp_path / "work" / "catalog")
    import_release(_release(tmp_path / "rel"), catalog, _ctx("import-g"))
    out = tmp_path / "export"
    export_release(catalog, out, mode="copy")
    frames = {f"{s}/{e}/{c}": n for s, e, c, _, n in RELEASE}
    for setup, name in (("All_scenes", "All"), ("22_scenes/Terror", "Terror"), ("4_scenarios/AI", "AI")):
        folder = out / "4_setups" / setup
        for split in ("train", "test"):
            release = (folder / f"{split}_{name}.csv").read_text().splitlines()
            mae = _parse_mae_dfer(folder / f"{split}.csv")
            clip = _parse_dfer_clip(folder / f"FERV39K_{split}.txt")
            assert len(release) == len(mae) == len(clip) > 0
            for line, (m_folder, m_label), (c_folder, c_frames, c_label) in zip(
                release, mae, clip, strict=True
            ):
                rel, label = line.split(" ")
                assert m_folder == c_folder == f"{out.resolve().as_posix()}/2_ClipsforFaceCrop/{rel}"
                assert m_label == c_label == BENCHMARK_LABEL_ORDER.index(label)
                assert c_frames == frames[rel] == len(list(Path(c_folder).glob("*.jpg")))


@pytest.mark.slow
def test_export_works_from_any_directory_and_refuses_to_export_nothing(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    release = _release(tmp_path / "rel")
    runner = CliRunner()
    monkeypatch.chdir(tmp_path / "a")  # a relative storage root, a relative release folder
    result = runner.invoke(app, ["--set", "storage.root=work", "import", "../rel"])
    assert result.exit_code == 0, result.output
    catalog = Catalog(tmp_path / "a" / "work" / "catalog")
    stored = catalog.read("candidates")["face_dir"]
    # The release lies outside the storage root: its folders are stored absolute, not as given ('../rel').
    assert all(Path(p).is_absolute() and Path(p).is_dir() for p in stored)
    monkeypatch.chdir(tmp_path / "b")  # the same storage, named from elsewhere
    storage = f"storage.root={tmp_path / 'a' / 'work'}"
    result = runner.invoke(
        app, ["--set", storage, "export", "--out", "out", "--mode", "copy", "--include-unlicensed"]
    )
    assert result.exit_code == 0, result.output
    assert "exported 4 train + 2 test clips" in result.output
    assert len(list((tmp_path / "b" / "out" / "2_ClipsforFaceCrop").glob("*/*/*/*.jpg"))) == sum(
        n for *_, n in RELEASE
    )

    shutil.rmtree(release)  # the crops are gone: nothing to export is an error, not an empty release
    result = runner.invoke(
        app, ["--set", storage, "export", "out2", "--mode", "copy", "--include-unlicensed"]
    )
    assert result.exit_code != 0 and "none of the 6 labelled clips has face crops" in str(result.exception)
    assert not (tmp_path / "b" / "out2" / "4_setups").exists()
