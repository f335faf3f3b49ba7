"""Prefect's offline defaults, in one place; every flow module imports this before importing Prefect.

- No analytics or telemetry: ``PREFECT_SERVER_ANALYTICS_ENABLED=false``. This also fixes the
  ``sqlite3.OperationalError: database is locked`` that the first ephemeral run logged: the server's
  telemetry service (``send_telemetry_heartbeat``) inserts a ``TELEMETRY_SESSION`` row into the SQLite
  database at start-up while the server is still writing the same database for the new flow run; with
  analytics off that service never starts, so nothing races (and nothing tries to reach the internet).
- No upgrade prompts or promotional content in the UI; no orchestration telemetry to Prefect Cloud.
- A startup timeout for the ephemeral server that a slow machine's first run (migrations) fits in.
- ``PREFECT_HOME``: the user's choice when set; otherwise Prefect's default (``~/.prefect``) when it is
  writable, else ``<cache>/prefect`` (containers often run with a read-only home).

Only defaults: a variable the user has set is never overridden.

    >>> import flows.prefect_env  # noqa: F401  (before ``import prefect``)
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_DEFAULTS: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    # The first ephemeral start runs the database migrations; 20 s (Prefect's default) is too short on a
    # busy two-core machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def _writable(path: Path) -> bool:
    probe = path if path.exists() else path.parent
    return os.access(probe, os.W_OK)


def default_prefect_home() -> Path:
    """Where Prefect keeps its state when ``PREFECT_HOME`` is unset (see module docstring)."""
    home = Path.home() / ".prefect"
    if _writable(home):
        return home
    from data_catalog.cache import default_cache_dir

    return default_cache_dir() / "prefect"


def configure() -> None:
    """Apply the defaults to ``os.environ`` (idempotent; user settings win)."""
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if not os.environ.get("PREFECT_HOME"):
        os.environ["PREFECT_HOME"] = str(default_prefect_home())


configure()
