import pytest

from tests.tasks.crawl.site import Site, make_media


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    return make_media(tmp_path_factory.mktemp("site-media"))


@pytest.fixture
def site(media):
    with Site(media, hang_s=4.0) as s:
        yield s
