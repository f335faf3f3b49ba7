"""Temporary siblings of files and folders being written, named so a later run can tell a dead writer's
debris from a live writer's work.

A clip file or a crop folder is written under a temporary name beside its final path and renamed into
place when complete. A run killed mid-write leaves that temporary behind; the next run that writes into the
same folder removes it with :func:`remove_stale_temps`. The name carries the writer's host and pid
(``.<name>.<pid>@<host>.<token>.tmp[.<ext>]``), so a temporary is removed only when its writer is gone:

- written on this host by a process that no longer exists, or
- older than :data:`STALE_AFTER_S` (a writer on another host, or a pid reused since), or
- named the way earlier versions named temporaries (``.<clip>.<hex>.tmp.mp4``, ``.<clip>.tmp-<hex>``),
  which carry no writer.

A live writer's temporary, here or on another host, is never touched.

    >>> tmp = temp_sibling(Path("clips/DailyLife/c1.mp4"), ".mp4")      # doctest: +SKIP
    >>> remove_stale_temps(Path("clips/DailyLife"))
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path

#: A temporary untouched for this long is debris whoever wrote it (no clip or crop takes a day to write).
STALE_AFTER_S = 24 * 3600.0

_TEMP = re.compile(r"^\.(?P<final>.+)\.(?P<pid>\d+)@(?P<host>[\w-]+)\.[0-9a-f]{8}\.tmp(\.\w+)?$")
_LEGACY = (re.compile(r"^\..+\.[0-9a-f]{8}\.tmp\.mp4$"), re.compile(r"^\..+\.tmp-[0-9a-f]{8}$"))


def _host() -> str:
    return re.sub(r"[^\w-]", "-", socket.gethostname()) or "host"


def temp_sibling(final: Path, suffix: str = "") -> Path:
    """A fresh temporary name beside ``final`` that records this writer; ``suffix`` keeps an extension
    tools need (ffmpeg picks the container from ``.mp4``)."""
    return final.with_name(f".{final.name}.{os.getpid()}@{_host()}.{secrets.token_hex(4)}.tmp{suffix}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def is_stale(path: Path, now: float | None = None) -> bool:
    """Whether ``path`` is a temporary left by a writer that is gone (see the module docstring)."""
    name = path.name
    match = _TEMP.match(name)
    if match is None:
        return any(p.match(name) for p in _LEGACY)
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    if age > STALE_AFTER_S:
        return True
    pid = int(match["pid"])
    return match["host"] == _host() and pid != os.getpid() and not _pid_alive(pid)


def remove_stale_temps(directory: Path) -> list[Path]:
    """Remove the stale temporaries (files or folders) directly inside ``directory``; returns them."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        if not entry.name.startswith(".") or not is_stale(Path(entry.path)):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
