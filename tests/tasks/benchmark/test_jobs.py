"""The benchmark's units of work on real crops: the job plan, results parts per test setup, finished work
skipped, a broken clip recorded as failed rows (not raised), and the closed loop's exported refiner."""

import shutil

import pytest

from data_catalog.io import Catalog
from flows.config import load_config
from tasks.benchmark.config import BenchmarkConfig
from tasks.benchmark.jobs import Job, export_closed_loop, plan_jobs, prepare, run_job
from tests.tasks.benchmark.footage import write_catalog

CFG = BenchmarkConfig(n_frames=2, face_size=64, epochs=1, batch_size=8, max_steps_per_epoch=1, num_workers=0,
                      device="cpu", export_refiner=True)  # fmt: skip


def test_plan_gathers_test_setups_per_training():
    jobs = plan_jobs(["r18", "ts-i3d"], ["All", "DL-to-WIS", "SIA-to-DL", "DL"], [2, 8])
    assert len(jobs) == 2 * 2 * 3
    first = {j.train_setup: j.test_setups for j in jobs if j.model == "r18" and j.n_frames == 2}
    assert first == {"All": ("All",), "DL": ("DL", "WIS"), "SIA": ("SIA", "DL")}
    assert Job("r18", 8, "All", ("All",), "x.pt").name == "r18-f8-init-All"
    with pytest.raises(ValueError, match="unknown models \\['r19'\\]"):
        plan_jobs(["r19"], ["All"], [8])
    with pytest.raises(ValueError, match="unknown setup 'Moon'"):
        plan_jobs(["r18"], ["Moon"], [8])


@pytest.fixture
def prep(demo_catalog, tmp_path):
    return prepare(demo_catalog, CFG, {"benchmark": "test"}, tmp_path / "benchmark")


@pytest.mark.slow
def test_results_parts_per_test_setup_and_finished_work_is_skipped(prep):
    (job,) = plan_jobs(["r18"], ["SIA-to-DL"], [2])
    refs = run_job(job, prep, CFG, progress=False)
    assert sorted(r.part for r in refs) == ["r18-f2-DL", "r18-f2-SIA"]
    rows = prep.catalog.read("results", run_id=prep.ctx.run_id)
    assert set(rows["status"]) == {"ok"} and set(rows["train_setup"]) == {"SIA"}
    cross = rows[(rows["test_setup"] == "DL") & (rows["group"] == "overall")].iloc[0]
    assert cross["n_clips"] == 4 and cross["epochs"] == 1 and cross["streams"] == "face"
    assert run_job(job, prep, CFG, progress=False) == []  # finished: nothing trained or written
    more = CFG.model_copy(update={"epochs": 2})
    assert len(run_job(job, prep, more, progress=False)) == 2  # more epochs: resumed and re-scored
    rows = prep.catalog.read("results", run_id=prep.ctx.run_id, latest=True)
    assert (
        set(rows["epochs"]) == {2} and not rows.duplicated(["model", "variant", "test_setup", "group"]).any()
    )


@pytest.mark.slow
def test_a_broken_clip_is_a_failed_row_not_an_exception(demo_footage, tmp_path):
    broken = [dict(c) for c in demo_footage]
    for c in broken:
        folder = tmp_path / "crops" / c["clip_id"]
        shutil.copytree(c["face_dir"], folder)
        c["face_dir"] = str(folder)
        for jpg in folder.iterdir():
            jpg.write_bytes(b"\xff\xd8 not a jpeg")
    catalog = Catalog(tmp_path / "catalog")
    write_catalog(catalog, broken)
    prep = prepare(catalog, CFG, {}, tmp_path / "benchmark")
    (job,) = plan_jobs(["r18"], ["All"], [2])
    (ref,) = run_job(job, prep, CFG, progress=False)
    row = catalog.read("results").iloc[0]
    assert (row["status"], row["reason"]) == ("failed", "invalid_input") and "unreadable frame" in row[
        "error"
    ]
    assert ref.rows == 1


@pytest.mark.slow
def test_the_trained_r50_becomes_a_refiner_for_the_next_build(prep, demo_footage, tmp_path):
    import cv2
    import numpy as np

    (job,) = plan_jobs(["r50"], ["All"], [2])
    run_job(job, prep, CFG, progress=False)
    exported = export_closed_loop(prep, [job], tmp_path / "models")
    assert exported["path"].endswith(".onnx") and "refine.model=onnx" in exported["overrides"]
    refiner = load_config(overrides=exported["overrides"]).refine.create()
    folder = demo_footage[0]["face_dir"]
    crops = [cv2.imread(f"{folder}/{i:05d}.jpg")[:, :, ::-1] for i in (1, 2)]
    probs = refiner.predict(np.ascontiguousarray(crops))
    assert probs.shape == (2, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


@pytest.mark.slow
def test_cli_splits_train_and_evaluate(demo_catalog, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    sets = [f"storage.root={tmp_path}", "benchmark.n_frames=2", "benchmark.face_size=64", "benchmark.epochs=1",
            "benchmark.max_steps_per_epoch=1", "benchmark.num_workers=0", "benchmark.device=cpu"]  # fmt: skip
    copy = shutil.copytree(demo_catalog.root, tmp_path / "catalog")  # its results stay out of the shared one
    root, catalog = [a for s in sets for a in ("--set", s)], ["--catalog", str(copy)]
    runner = CliRunner()
    out = runner.invoke(app, [*root, "benchmark", "splits", "--export", str(tmp_path / "rel"), *catalog])
    assert out.exit_code == 0, out.output
    assert (
        "DL-to-SIA" in out.output
        and (tmp_path / "rel" / "4_setups" / "4_scenarios" / "SIA" / "test.csv").is_file()
    )
    out = runner.invoke(app, [*root, "benchmark", "train", "--model", "r18", "--setup", "SIA", *catalog])
    assert out.exit_code == 0 and "SIA -> SIA: WAR" in out.output, out.output
    ckpt = next(tmp_path.glob("benchmark/bm-*/r18-f2-SIA/last.pt"))
    out = runner.invoke(app, [*root, "benchmark", "evaluate", str(ckpt), "--setup", "Interview", *catalog])
    assert out.exit_code == 0 and "scene=Interview" in out.output and "(2 clips)" in out.output, out.output
