"""The public FERV39k release layout: export a catalog into it, import a release into the catalog.

Layout (paper, section 4.1: 224x224 face crops, 336x504 scene images, 80/20 split, 27 setups)::

    2_ClipsforFaceCrop/<Scene>/<Emotion>/<clip>/*.jpg
    3_ClipsforScenImages/<Scene>/<Emotion>/<clip>/*.jpg
    4_setups/All_scenes/{train,test}_All.csv     # '<Scene>/<Emotion>/<clip> <Emotion>' (the release's own)
    4_setups/All_scenes/{train,test}.csv         # '<root>/2_ClipsforFaceCrop/<Scene>/<Emotion>/<clip> <index>'
    4_setups/All_scenes/FERV39K_{train,test}.txt # '<root>/2_ClipsforFaceCrop/<Scene>/<Emotion>/<clip> <frames> <index>'
    4_setups/22_scenes/<Scene>/...  4_setups/4_scenarios/<Scenario>/...   (the same three styles per setup)
    provenance.parquet, provenance.csv           # per clip: source URL, uploader, licence, span, runs

Who reads what: MAE-DFER (and S2D) read the two-column ``{train,test}.csv`` (path, label index);
DFER-CLIP reads the three-column ``FERV39K_{train,test}.txt`` (path, number of frames, label index), the
names those projects give them. Label indices follow :data:`BENCHMARK_LABEL_ORDER` (DFEW's order), not this
project's ``keywords/emotions.yaml`` order. ``<clip>`` is the release's own folder name for a clip imported
from a release (so results keyed on official paths match), else the clip id.
The reference counts of the release are :mod:`data_catalog.release_counts`; the 80/20 split is
:mod:`data_catalog.stratified_split`.

    >>> export_release(Catalog(root / "catalog"), "out/FERV39k", seed=0)        # doctest: +SKIP
    >>> import_release("downloads/FERV39k", Catalog(root / "catalog"), ctx)     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from data_catalog.formats.labels import current_labels
from data_catalog.io import Catalog, PartRef, atomic_write_bytes
from data_catalog.lineage import RunContext
from data_catalog.provenance import licence_filter, provenance
from data_catalog.schemas import get_manifest
from data_catalog.stratified_split import stratified_split
from keywords.taxonomy import load_taxonomy

log = logging.getLogger(__name__)

FACE_DIR = "2_ClipsforFaceCrop"
SCENE_DIR = "3_ClipsforScenImages"
SETUPS_DIR = "4_setups"
ALL_SCENES = "All_scenes"
SPLITS = ("train", "test")
#: Label order of the split files MAE-DFER, DFER-CLIP and S2D read (index = position).
BENCHMARK_LABEL_ORDER = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
LINK_MODES = ("hardlink", "copy")
#: Where imported rows go: a fixed part name, so importing the same release again replaces its rows.
IMPORT_PART = "ferv39k"
SOURCE = "ferv39k"


# --- export ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: clips per split, clips already there from an earlier run, and skipped clips
    counted per snake_case reason."""

    out_dir: Path
    label_source: str
    n_train: int
    n_test: int
    n_reused: int
    skipped: dict[str, int]
    setup_files: list[Path]
    #: Clips the licence filter left out, per reason (``licence_unknown``, ``licence_not_allowed``).
    left_out: dict[str, int] = field(default_factory=dict)
    #: The provenance of every exported clip (``provenance.parquet`` / ``.csv`` at the release's root).
    provenance: pd.DataFrame | None = None


def _jpegs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg") and p.is_file())


def _place(src: Path, dst: Path, mode: str) -> None:
    if mode == "hardlink":
        try:
            os.link(src, dst)
            return
        except OSError:  # another filesystem, or links not supported: fall back to a copy
            pass
    shutil.copy2(src, dst)


def _materialise(src: Path, dst: Path, mode: str) -> None:
    """Fill ``dst`` with the JPEGs of ``src`` atomically: a hidden sibling folder renamed into place."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}."))
    try:
        for frame in _jpegs(src):
            _place(frame, tmp / frame.name, mode)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def release_names(rows: pd.DataFrame, catalog: Catalog) -> pd.Series:
    """Each clip's folder name in the layout: the release's own name where the clip was imported from one
    (``clips.name``, so results keyed on official paths still match), else its id. A name that would
    share a ``<Scene>/<Emotion>`` folder with another clip falls back to the id, which is unique."""
    clips = catalog.read("clips", latest=True)
    names = (
        clips.set_index("clip_id")["name"].dropna() if "name" in clips.columns else pd.Series(dtype=object)
    )
    name = rows["clip_id"].map(names).fillna(rows["clip_id"])
    clash = pd.DataFrame({"scene": rows["scene"], "label": rows["label"], "name": name}).duplicated(
        keep=False
    )
    return name.where(~clash, rows["clip_id"])


#: The split files of each setup: (file name for a split and setup name, style).
SPLIT_FILES = (
    ("{split}_{name}.csv", "release"),  # the release's own
    ("{split}.csv", "index"),  # MAE-DFER, S2D
    ("FERV39K_{split}.txt", "frames"),  # DFER-CLIP
)


def _setup_text(rows: pd.DataFrame, split: str, root: str, style: str) -> str:
    part = rows[rows["split"] == split].sort_values("rel")
    lines = []
    for r in part.itertuples():
        index = BENCHMARK_LABEL_ORDER.index(r.label)
        if style == "release":
            lines.append(f"{r.rel} {r.label}")
        elif style == "index":
            lines.append(f"{root}/{FACE_DIR}/{r.rel} {index}")
        else:
            lines.append(f"{root}/{FACE_DIR}/{r.rel} {r.n_frames} {index}")
    return "".join(f"{line}\n" for line in lines)


def _write_setups(rows: pd.DataFrame, out: Path, root: str) -> list[Path]:
    """All scenes, one setup per scene and one per scenario: 1 + 22 + 4 = 27 with the full taxonomy."""
    setups: list[tuple[Path, str, pd.DataFrame]] = [(out / SETUPS_DIR / ALL_SCENES, "All", rows)]
    for scene, group in rows.groupby("scene"):
        setups.append((out / SETUPS_DIR / "22_scenes" / str(scene), str(scene), group))
    for scenario, group in rows.groupby("scenario"):
        setups.append((out / SETUPS_DIR / "4_scenarios" / str(scenario), str(scenario), group))
    written = []
    for folder, name, group in setups:
        for split in SPLITS:
            for pattern, style in SPLIT_FILES:
                if style == "frames" and "n_frames" not in rows.columns:
                    continue  # DFER-CLIP's file needs each clip's frame count
                path = folder / pattern.format(split=split, name=name)
                atomic_write_bytes(path, _setup_text(group, split, root, style).encode())
                written.append(path)
    return written


def export_release(
    catalog: Catalog,
    out_dir: str | os.PathLike,
    *,
    mode: str = "hardlink",
    test_fraction: float = 0.2,
    seed: int = 0,
    path_root: str | None = None,
    allowed_licences: Iterable[str] | None = None,
    include_unlicensed: bool = False,
) -> ExportResult:
    """Write the labelled clips of ``catalog`` in the release layout under ``out_dir``.

    Labels come from :func:`~data_catalog.formats.labels.current_labels`; frames from
    ``candidates.face_dir`` / ``scene_dir`` (:meth:`Catalog.resolve_path`: relative to the storage root), hard-linked
    (falling back to a copy across filesystems) or copied (``mode``). The split is the labels' own where
    they carry one (an imported release), else :func:`stratified_split`. A clip folder that exists is
    finished work and is reused; clips without face crops are skipped and counted. ``path_root`` is the
    prefix written in the ``{train,test}.csv`` files (default: ``out_dir``, absolute).

    With ``allowed_licences``, a clip whose source licence is unknown or not in the list is left out
    (counted in ``left_out``) unless ``include_unlicensed``; None ships every clip. Every exported clip's
    provenance (:mod:`data_catalog.provenance`: source URL, uploader, licence, time span, runs) is written
    at the release's root as ``provenance.parquet`` and ``provenance.csv``.
    """
    if mode not in LINK_MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(LINK_MODES)}")
    out = Path(out_dir)
    tax = load_taxonomy()
    labels = current_labels(catalog)
    rows = labels.frame.copy()
    if rows.empty:
        raise ValueError(
            f"{catalog.root}: no labelled clips to export (no 'labels' rows and no selected 'selections' rows)"
        )
    unknown = sorted(set(rows["label"]) - set(BENCHMARK_LABEL_ORDER))
    if unknown:
        raise ValueError(f"labels {unknown} have no index in the release order {BENCHMARK_LABEL_ORDER}")
    left_out: dict[str, int] = {}
    if allowed_licences is not None:
        decision = licence_filter(
            provenance(catalog, rows["clip_id"]), allowed_licences, include_unlicensed=include_unlicensed
        )
        left_out = decision.counts()
        rows = rows[rows["clip_id"].isin(decision.kept["clip_id"])].reset_index(drop=True)
        if rows.empty:
            raise ValueError(
                f"{catalog.root}: the licence filter left out every labelled clip "
                f"({', '.join(f'{n} {r}' for r, n in left_out.items())}); allowed licences: "
                f"{sorted(allowed_licences)}; opt in (ferv export --include-unlicensed, or release.include_unlicensed) "
                "to export them anyway"
            )
    cand = catalog.read("candidates", latest=True)[["clip_id", "face_dir", "scene_dir"]]
    rows = rows.merge(cand, on="clip_id", how="left")
    rows["scenario"] = [tax.scene(s).scenario for s in rows["scene"]]
    missing = rows["split"].isna()
    if missing.any():
        rows.loc[missing, "split"] = stratified_split(rows[missing], test_fraction, seed)
    rows["rel"] = rows["scene"] + "/" + rows["label"] + "/" + release_names(rows, catalog)

    skipped: Counter[str] = Counter()
    keep = []
    reused = 0
    n_frames: dict[int, int] = {}
    from tqdm import tqdm

    for r in tqdm(rows.itertuples(), total=len(rows), desc="export ferv39k", unit="clip"):
        face = catalog.resolve_path(r.face_dir)
        dst = out / FACE_DIR / r.rel
        if dst.is_dir():
            reused += 1
        elif face is None or not face.is_dir():
            skipped["no_face_dir"] += 1
            continue
        elif not _jpegs(face):
            skipped["no_face_crops"] += 1
            continue
        else:
            _materialise(face, dst, mode)
        keep.append(r.Index)
        n_frames[r.Index] = len(_jpegs(dst))
        scene_src = catalog.resolve_path(r.scene_dir)
        scene_dst = out / SCENE_DIR / r.rel
        if not scene_dst.is_dir():
            if scene_src is not None and scene_src.is_dir():
                _materialise(scene_src, scene_dst, mode)
            else:
                skipped["no_scene_images"] += 1  # the face crops are exported all the same
    done = rows.loc[keep].assign(n_frames=pd.Series(n_frames, dtype="int64"))
    if done.empty:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        raise ValueError(
            f"{catalog.root}: none of the {len(rows)} labelled clips has face crops to export ({reasons}); "
            f"frame folders are read relative to the storage root {catalog.storage_root}"
        )
    root = path_root if path_root is not None else out.resolve().as_posix()
    files = _write_setups(done, out, root)
    prov = write_provenance(catalog, done, out)
    return ExportResult(
        out_dir=out,
        label_source=labels.source,
        n_train=int((done["split"] == "train").sum()),
        n_test=int((done["split"] == "test").sum()),
        n_reused=reused,
        skipped=dict(skipped),
        setup_files=files,
        left_out=left_out,
        provenance=prov,
    )


PROVENANCE_FILES = ("provenance.parquet", "provenance.csv")


def write_provenance(catalog: Catalog, done: pd.DataFrame, out: Path) -> pd.DataFrame:
    """The provenance of the exported clips (``done``: clip_id, rel, label, split) at the release's root,
    with each clip's folder in the layout (``path``), its label and split."""
    prov = provenance(catalog, done["clip_id"]).drop(columns=["scene"])
    table = done[["clip_id", "scene", "rel", "label", "split"]].rename(columns={"rel": "path"})
    prov = table.merge(prov, on="clip_id", how="left").sort_values("path").reset_index(drop=True)
    write_table_files(prov, out / PROVENANCE_FILES[0], out / PROVENANCE_FILES[1])
    return prov


def write_table_files(frame: pd.DataFrame, parquet: Path, csv: Path) -> None:
    """``frame`` as Parquet and CSV, each written atomically."""
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    atomic_write_bytes(parquet, sink.getvalue().to_pybytes())
    atomic_write_bytes(csv, frame.to_csv(index=False).encode())


# --- import ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportProblem:
    """One entry of the release that could not be imported: where it came from and a snake_case reason."""

    where: str
    reason: str


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote, per scene, and what it left out."""

    release_dir: Path
    n_clips: int
    n_missing_crops: int
    splits: dict[str, int]
    refs: list[PartRef]
    problems: list[ImportProblem] = field(default_factory=list)


@dataclass(frozen=True)
class _Entry:
    scene: str
    emotion: str
    name: str
    split: str | None
    where: str


def _parse_label(token: str, expressions: tuple[str, ...]) -> str | None:
    """A split file's label: an expression name, or an index in :data:`BENCHMARK_LABEL_ORDER`."""
    if token in expressions:
        return token
    if token.isdigit() and int(token) < len(BENCHMARK_LABEL_ORDER):
        return BENCHMARK_LABEL_ORDER[int(token)]
    return None


def _read_split_file(path: Path, split: str, problems: list[ImportProblem]) -> list[_Entry]:
    expressions = load_taxonomy().expressions
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path.name}:{number}"
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        if len(parts) == 3 and parts[1].isdigit():  # DFER-CLIP's 'path frames index'
            parts = [parts[0], parts[2]]
        if len(parts) != 2:
            problems.append(ImportProblem(where, "malformed_line"))
            continue
        rel = parts[0].replace("\\", "/").rstrip("/")
        rel = rel.split(f"{FACE_DIR}/", 1)[-1]  # MAE-DFER style lines carry '<root>/2_ClipsforFaceCrop/'
        pieces = rel.split("/")
        label = _parse_label(parts[1], expressions)
        if len(pieces) < 3 or label is None:
            # A header line ('path label') or a line that is not '<Scene>/<Emotion>/<clip> <label>'.
            if number > 1:
                problems.append(ImportProblem(where, "malformed_line"))
            continue
        scene, emotion, name = pieces[-3:]
        if label != emotion:
            problems.append(ImportProblem(where, "label_folder_mismatch"))
            continue
        entries.append(_Entry(scene, emotion, name, split, where))
    return entries


def _split_files(setups: Path) -> dict[str, Path]:
    """``{'train': path, 'test': path}`` from ``4_setups/All_scenes``: the release's ``*_All.csv`` first."""
    found = {}
    for split in SPLITS:
        for name in (f"{split}_All.csv", f"{split}.csv"):
            if (setups / name).is_file():
                found[split] = setups / name
                break
    return found


def _walk(faces: Path) -> list[_Entry]:
    return [
        _Entry(s.name, e.name, c.name, None, f"{FACE_DIR}/{s.name}/{e.name}/{c.name}")
        for s in sorted(p for p in faces.iterdir() if p.is_dir())
        for e in sorted(p for p in s.iterdir() if p.is_dir())
        for c in sorted(p for p in e.iterdir() if p.is_dir())
    ]


def _clip_ids(entries: Iterable[_Entry]) -> dict[_Entry, str]:
    """Clip folder names as ids when they are unique across the release, else '<Scene>-<Emotion>-<name>'
    for every clip (the official release numbers clips within a scene and expression)."""
    entries = list(entries)
    names = Counter(e.name for e in entries)
    unique = all(n == 1 for n in names.values())
    return {e: e.name if unique else f"{e.scene}-{e.emotion}-{e.name}" for e in entries}


def _typed(manifest: str, rows: list[dict]) -> pa.Table:
    """Rows in the manifest's schema (so an empty ``measures`` map keeps its type)."""
    return pa.Table.from_pylist(rows, schema=get_manifest(manifest).schema)


def import_release(
    release_dir: str | os.PathLike, catalog: Catalog, ctx: RunContext, *, fps: float = 25.0
) -> ImportResult:
    """Read a release directory (face crop folders + ``4_setups/All_scenes`` split files) into the
    ``clips``, ``candidates`` and ``labels`` manifests, one part per scene.

    Without split files the clips are found by walking ``2_ClipsforFaceCrop`` and get no split. The release
    gives no frame rate; ``fps`` turns frame counts into durations. Lines naming unknown scenes or
    expressions, or disagreeing with their folder, are left out and listed in ``problems``; a listed clip
    whose crop folder is missing is kept with ``candidates.keep = False`` and reason ``missing_face_crops``.
    Importing the same release again (same run id) replaces its rows.
    """
    root = Path(release_dir)
    faces = root / FACE_DIR
    if not root.is_dir():
        raise ValueError(f"{root}: release directory not found")
    if not faces.is_dir():
        raise ValueError(f"{root}: not a FERV39k release directory (no {FACE_DIR}/ folder)")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    tax = load_taxonomy()
    problems: list[ImportProblem] = []
    files = _split_files(root / SETUPS_DIR / ALL_SCENES)
    if files:
        entries = [e for split, path in files.items() for e in _read_split_file(path, split, problems)]
    else:
        entries = _walk(faces)
    valid = []
    seen: set[tuple[str, str, str]] = set()
    for e in entries:
        if e.scene not in tax.scene_names:
            problems.append(ImportProblem(e.where, "unknown_scene"))
        elif e.emotion not in tax.expressions:
            problems.append(ImportProblem(e.where, "unknown_expression"))
        elif (e.scene, e.emotion, e.name) in seen:
            problems.append(ImportProblem(e.where, "duplicate_clip"))
        else:
            seen.add((e.scene, e.emotion, e.name))
            valid.append(e)
    ids = _clip_ids(valid)

    by_scene: dict[str, dict[str, list[dict]]] = {}
    missing = 0
    from tqdm import tqdm

    for e in tqdm(valid, desc="import ferv39k", unit="clip"):
        clip_id = ids[e]
        face_dir = faces / e.scene / e.emotion / e.name
        scene_dir = root / SCENE_DIR / e.scene / e.emotion / e.name
        n = len(_jpegs(face_dir)) if face_dir.is_dir() else 0
        missing += n == 0
        rows = by_scene.setdefault(e.scene, {"clips": [], "candidates": [], "labels": []})
        rows["clips"].append(
            {
                "clip_id": clip_id,
                "video_id": f"{SOURCE}-{clip_id}",
                "scene": e.scene,
                "start_time": 0.0,
                "end_time": n / fps,
                "start_frame": 0,
                "end_frame": n,
                "n_frames": n,
                "fps": fps,
                "duration": n / fps,
                "name": e.name,
                **ctx.lineage("import"),
            }
        )
        rows["candidates"].append(
            {
                "clip_id": clip_id,
                "video_id": f"{SOURCE}-{clip_id}",
                "scene": e.scene,
                "keep": n > 0,
                "reason": None if n else "missing_face_crops",
                "measures": {},
                "face_dir": catalog.store_path(face_dir) if n else None,
                "scene_dir": catalog.store_path(scene_dir) if scene_dir.is_dir() else None,
                "n_crops": n,
                **ctx.lineage("import"),
            }
        )
        rows["labels"].append(
            {
                "clip_id": clip_id,
                "scene": e.scene,
                "scenario": tax.scene(e.scene).scenario,
                "label": e.emotion,
                "label_index": tax.expression_index(e.emotion),
                "source": SOURCE,
                "split": e.split,
                **ctx.lineage("import"),
            }
        )
    refs = [
        catalog.write(manifest, _typed(manifest, rows), scene=scene, run_id=ctx.run_id, part=IMPORT_PART)
        for scene, tables in sorted(by_scene.items())
        for manifest, rows in tables.items()
    ]
    for p in problems:
        log.warning("ferv39k import: %s: %s", p.where, p.reason)
    return ImportResult(
        release_dir=root,
        n_clips=len(valid),
        n_missing_crops=int(missing),
        splits=dict(Counter(e.split or "none" for e in valid)),
        refs=refs,
        problems=problems,
    )
