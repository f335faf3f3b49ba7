"""Fixtures of the benchmark tests: real face crops of the demo footage, in a catalog as the pipeline and
the annotation stage leave it."""

import pytest

from data_catalog.io import Catalog
from tests.tasks.benchmark.footage import assign, demo_crops, write_catalog


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Two cores shared by everything: one intra-op thread is several times faster than two here."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def demo_footage(tmp_path_factory, demo_media) -> list[dict]:
    """24 labelled clips (Sad, then Happy) over four scenes of two scenarios, with real crops."""
    return assign(demo_crops(demo_media("wolfgang-langer"), tmp_path_factory.mktemp("benchmark-crops")))


@pytest.fixture(scope="session")
def demo_catalog(tmp_path_factory, demo_footage) -> Catalog:
    catalog = Catalog(tmp_path_factory.mktemp("benchmark-catalog"))
    write_catalog(catalog, demo_footage)
    return catalog
