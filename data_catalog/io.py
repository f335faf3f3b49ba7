"""Reading and writing manifests: atomic, partitioned, validated.

Layout: ``<root>/<manifest>/scene=<Scene>/run=<run_id>/part-<name>.parquet``. A part is written to a
temporary file in the same directory and renamed into place, so a reader (or a killed run) never sees half a
file; an existing part means that piece of work is finished, which is what lets a rerun skip it.

    >>> cat = Catalog(tmp_path)                                   # doctest: +SKIP
    >>> cat.write("videos", rows, scene="Terror", run_id=ctx.run_id, part="0000")
    >>> cat.read("videos", scene="Terror")
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from data_catalog.schemas import Manifest, get_manifest

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]*$")

log = logging.getLogger(__name__)


class ManifestError(ValueError):
    """Rows that do not fit their manifest's schema; the message names the manifest and the column."""


@dataclass(frozen=True)
class PartRef:
    """A reference to one written part: what Prefect passes between tasks instead of data."""

    manifest: str
    scene: str
    run_id: str
    part: str
    path: str
    rows: int


def _check_name(kind: str, value: str) -> str:
    if not _SAFE.match(value):
        raise ValueError(f"{kind} {value!r} is not a safe path component (letters, digits, _ . = -)")
    return value


def to_table(manifest: Manifest, rows: pd.DataFrame | Sequence[Mapping] | pa.Table) -> pa.Table:
    """Validate and cast rows to the manifest's schema: unknown or missing columns, nulls in required
    columns, wrong types and duplicate keys are errors that name the manifest and the column."""
    if isinstance(rows, pa.Table):
        table = rows
    elif isinstance(rows, pd.DataFrame):
        table = pa.Table.from_pandas(rows, preserve_index=False)
    else:
        rows = list(rows)
        # Columns are the union of every row's keys (from_pylist alone takes the first row's keys only).
        names = list(dict.fromkeys(k for row in rows for k in row))
        table = (
            pa.Table.from_pydict({n: [row.get(n) for row in rows] for n in names})
            if rows
            else manifest.schema.empty_table()
        )
    names = set(table.column_names)
    expected = set(manifest.schema.names)
    extra = sorted(names - expected)
    if extra:
        raise ManifestError(f"{manifest.name}: unknown columns {extra}; expected {manifest.schema.names}")
    missing = [n for n in manifest.schema.names if n not in names]
    required_missing = [n for n in missing if n in manifest.required]
    if required_missing and table.num_rows:
        raise ManifestError(f"{manifest.name}: missing required columns {required_missing}")
    columns = []
    for f in manifest.schema:
        if f.name in names:
            col = table.column(f.name)
            try:
                col = col.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ManifestError(
                    f"{manifest.name}.{f.name}: cannot convert {col.type} to {f.type}: {exc}"
                ) from None
        else:
            col = pa.nulls(table.num_rows, f.type)
        if not f.nullable and col.null_count:
            raise ManifestError(
                f"{manifest.name}.{f.name}: {col.null_count} null value(s) in a required column"
            )
        columns.append(col)
    out = pa.Table.from_arrays(columns, schema=manifest.schema)
    if out.num_rows:
        keys = out.select(list(manifest.key)).to_pandas()
        dupes = keys[keys.duplicated(keep=False)]
        if len(dupes):
            first = dupes.iloc[0].to_dict()
            raise ManifestError(f"{manifest.name}: duplicate key {first} ({len(dupes)} rows share keys)")
    return out


def read_parquet(path: str | os.PathLike) -> pa.Table:
    """One Parquet file, read through a single open handle.

    Parts are replaced by a rename while other processes read them. Given a path, pyarrow opens the file
    once for its footer and again for its pages, and can pair one version's footer with the next version's
    pages ("Page was smaller than expected"). One handle reads the version that was there when it opened.
    """
    with open(path, "rb") as handle:
        return pq.read_table(handle)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Catalog:
    """The manifests under one root directory."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive lock on this catalog across processes (``fcntl.flock`` on ``.locks/<name>.lock``),
        for read-decide-write steps that must not interleave, such as recording newly crawled videos."""
        import fcntl

        path = self.root / ".locks" / f"{_check_name('lock', name)}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @property
    def storage_root(self) -> Path:
        """The folder the catalog sits in (``storage.root``): file paths in manifests are relative to it."""
        return Path(os.path.abspath(self.root.parent))

    def store_path(self, path: str | os.PathLike) -> str:
        """How a file or folder is written into a manifest: relative to :attr:`storage_root` when it lies
        under it (so the whole storage can move), else absolute. Never relative to the working directory."""
        absolute = Path(os.path.abspath(path))
        try:
            return absolute.relative_to(self.storage_root).as_posix()
        except ValueError:
            return absolute.as_posix()

    def resolve_path(self, stored: object) -> Path | None:
        """The absolute path of a manifest's file column (:meth:`store_path`); None for a missing value."""
        if not isinstance(stored, str) or not stored:  # None, or NaN where a merge found no row
            return None
        p = Path(stored)
        return p if p.is_absolute() else self.storage_root / p

    def partition_dir(self, manifest: str, scene: str, run_id: str) -> Path:
        get_manifest(manifest)
        return (
            self.root
            / manifest
            / f"scene={_check_name('scene', scene)}"
            / f"run={_check_name('run id', run_id)}"
        )

    def part_path(self, manifest: str, scene: str, run_id: str, part: str) -> Path:
        return self.partition_dir(manifest, scene, run_id) / f"part-{_check_name('part', part)}.parquet"

    def has_part(self, manifest: str, scene: str, run_id: str, part: str) -> bool:
        """True when that part was written completely (the rename is the completion marker)."""
        return self.part_path(manifest, scene, run_id, part).is_file()

    def write(
        self,
        manifest: str,
        rows: pd.DataFrame | Sequence[Mapping] | pa.Table,
        *,
        scene: str,
        run_id: str,
        part: str = "0000",
    ) -> PartRef:
        """Validate ``rows`` and write them atomically as one part (replacing a part of the same name)."""
        m = get_manifest(manifest)
        table = to_table(m, rows)
        bad_scene = (
            set(table.column("scene").to_pylist()) - {scene} if "scene" in table.column_names else set()
        )
        if bad_scene:
            raise ManifestError(
                f"{manifest}: rows for scenes {sorted(bad_scene)} written to partition {scene!r}"
            )
        path = self.part_path(manifest, scene, run_id, part)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return PartRef(manifest, scene, run_id, part, str(path), table.num_rows)

    def write_parts(
        self, parts: Sequence[tuple[str, pd.DataFrame | pa.Table, str, str, str]]
    ) -> list[PartRef]:
        """Write several parts, ``(manifest, rows, scene, run_id, part)`` each, all or nothing as far as
        validation goes: every part is checked against its schema before the first one is written, so rows
        that do not fit leave the catalog as it was (no half-done export)."""
        for manifest, rows, *_ in parts:
            to_table(get_manifest(manifest), rows)
        return [
            self.write(manifest, rows, scene=scene, run_id=run_id, part=part)
            for manifest, rows, scene, run_id, part in parts
        ]

    def part_files(
        self, manifest: str, scene: str | Iterable[str] | None = None, run_id: str | None = None
    ) -> list[Path]:
        get_manifest(manifest)
        scenes = [scene] if isinstance(scene, str) else (list(scene) if scene is not None else None)
        base = self.root / manifest
        if not base.is_dir():
            return []
        files = []
        for scene_dir in sorted(base.glob("scene=*")):
            if scenes is not None and scene_dir.name.removeprefix("scene=") not in scenes:
                continue
            for run_dir in sorted(scene_dir.glob("run=*")):
                if run_id is not None and run_dir.name.removeprefix("run=") != run_id:
                    continue
                files.extend(sorted(run_dir.glob("part-*.parquet")))
        return files

    def read_table(
        self,
        manifest: str,
        scene: str | Iterable[str] | None = None,
        run_id: str | None = None,
        latest: bool = False,
    ) -> pa.Table:
        """All rows of a manifest (optionally one scene / run), checked against its schema.

        ``latest=True`` keeps, per key, the row written last (``created_at``): a video crawled again in a
        later run, or a failed item retried, then appears once with its newest state.
        """
        m = get_manifest(manifest)
        tables = []
        for path in self.part_files(manifest, scene, run_id):
            try:
                t = read_parquet(path)
            except FileNotFoundError:  # removed since it was listed (a rerun's stale part, a takedown)
                log.debug("%s: removed while the %s manifest was read; left out", path, manifest)
                continue
            except (pa.ArrowInvalid, OSError) as exc:
                raise ManifestError(f"{path}: unreadable manifest part: {exc}") from None
            if not t.schema.equals(m.schema, check_metadata=False):
                try:
                    t = to_table(m, t)
                except ManifestError as exc:
                    raise ManifestError(f"{path}: does not match the {manifest} schema: {exc}") from None
            tables.append(t)
        table = pa.concat_tables(tables) if tables else m.schema.empty_table()
        if latest and table.num_rows:
            df = table.to_pandas()
            order = df.sort_values("created_at", kind="stable").index
            keep = df.loc[order].drop_duplicates(list(m.key), keep="last").sort_index().index
            table = table.take(pa.array(sorted(keep)))
        return table

    def read(
        self,
        manifest: str,
        scene: str | Iterable[str] | None = None,
        run_id: str | None = None,
        latest: bool = False,
    ) -> pd.DataFrame:
        """Like :meth:`read_table`, as a pandas DataFrame."""
        return self.read_table(manifest, scene, run_id, latest).to_pandas()
