"""The ``annotate`` config section has its own module, and its method list is the aggregator registry's."""

import pytest

from tasks.annotate.aggregation import AGGREGATORS
from tasks.annotate.config import AnnotateConfig


def test_the_section_lives_in_its_own_module_not_in_packaging():
    import tasks.annotate.package as packaging

    assert AnnotateConfig.__module__ == "tasks.annotate.config"
    assert "AnnotateConfig" not in vars(packaging) or packaging.AnnotateConfig is AnnotateConfig


@pytest.mark.parametrize("method", AGGREGATORS.names())
def test_every_registered_method_is_accepted(method):
    assert AnnotateConfig(method=method).method == method


def test_an_unknown_method_names_the_registered_ones():
    with pytest.raises(
        ValueError, match="unknown aggregation method 'vote'.*" + ", ".join(AGGREGATORS.names())
    ):
        AnnotateConfig(method="vote")
