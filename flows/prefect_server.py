"""Prefect's temporary server, tied to the command that started it.

Without ``PREFECT_API_URL``, Prefect starts a temporary API server (uvicorn, ~230 MB) as a child process
and stops it at exit. A command killed with SIGKILL never reaches that exit, and the server was left
running, listening, until killed by hand. :func:`tie_temporary_server` makes the server that Prefect starts
run under a watchdog that stops it as soon as the process that started it is gone, however it ended.

The watchdog lives in the server's own process (a thread polling ``getppid``), so it works whichever
thread starts the server and on every POSIX system; ``PR_SET_PDEATHSIG`` would fire when the *thread* that
started the server exits, which in Prefect can be a short-lived worker thread.

    >>> tie_temporary_server()          # before the command's first flow run  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import runpy
import signal
import sys
import threading
import time

#: How often the server checks that its parent is alive, and how long it may take to stop gracefully.
POLL_S = 0.2
GRACE_S = 10.0


def tie_temporary_server() -> None:
    """Make the temporary server Prefect starts from this process stop when this process ends. Nothing to
    do when a Prefect API is configured, the temporary server is disabled or it is already running."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    tied = _tied_server_class()
    instances = tied._instances  # Prefect's registry: the instance its clients start, keyed by port
    current = instances.get(None)
    if current is not None and (current.running or isinstance(current, tied)):
        return
    instances.pop(None, None)
    tied()  # registers itself under the key Prefect's clients look up


@functools.cache
def _tied_server_class() -> type:
    import subprocess

    import prefect
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings

    class TiedServer(SubprocessASGIServer):
        """Prefect's temporary server started through :func:`main` (otherwise Prefect's own command line
        and environment)."""

        def _run_uvicorn_command(self) -> subprocess.Popen:
            uvicorn_args = [
                "--app-dir", str(prefect.__module_path__.parent),
                "--factory", "prefect.server.api.server:create_app",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", "error", "--lifespan", "on",
            ]  # fmt: skip
            server_env = {
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
            }
            settings_env = get_current_settings().to_environment_variables(exclude_unset=True)
            return subprocess.Popen(
                [sys.executable, "-m", __name__, str(os.getpid()), *uvicorn_args],
                env={**os.environ, **server_env, **settings_env},
            )

    return TiedServer


def watch_parent(parent_pid: int) -> None:
    """Stop this process (SIGTERM, then exit after :data:`GRACE_S`) once ``parent_pid`` is no longer its
    parent: the parent ended and the process was handed to init or a subreaper."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(GRACE_S)
        os._exit(1)

    if os.getppid() != parent_pid:  # the parent died before the watchdog started
        os._exit(1)
    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def main(argv: list[str]) -> None:
    """``python -m flows.prefect_server <parent pid> <uvicorn arguments>``: uvicorn under the watchdog."""
    parent, *uvicorn_args = argv
    watch_parent(int(parent))
    sys.argv = ["uvicorn", *uvicorn_args]
    runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
