"""The design card's top-level packages resolve to this repository (the names are generic: `models`,
`tasks`), and their data files are where the code looks for them."""

import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "tasks", "models", "keywords", "data_catalog")


@pytest.mark.parametrize("name", PACKAGES)
def test_package_resolves_to_this_repository(name):
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().parent == REPO / name


DATA_FILES = {
    "keywords/scenes.yaml",
    "keywords/emotions.yaml",
    "data_catalog/assets.toml",
    "data_catalog/reference/ferv39k_release_counts.csv",
    "flows/configs/default.yaml",
    "flows/configs/demo.yaml",
}


@pytest.mark.slow
def test_built_wheel_holds_exactly_the_five_packages_and_their_data(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("ferv_builder-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == set(PACKAGES)
    assert set(names) >= DATA_FILES
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/"))]
