"""The ``annotate`` config section: packaging, the flag-recapture verdict, review and voting.

One home for the stage's settings, read by every annotation module (``package``, ``recapture``, ``land``,
the labelling app) and assembled into the pipeline config by flows/config.py. ``method`` must be a name in
the aggregator registry (tasks/annotate/aggregation/registry.py), the one list of methods.

    >>> AnnotateConfig(group_size=50).n_copies
    3
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from data_catalog.section import Section
from tasks.annotate.aggregation.registry import AGGREGATORS


class AnnotateConfig(Section):
    """The ``annotate`` config section: packaging, the flag-recapture verdict, review and voting.

    Thresholds (paper 3.2): a copy whose estimated correct rate is >= ``accept`` is Accept (AC), below
    ``improper`` Unacceptable (UA), Improper (IP) between; see tasks/annotate/recapture.py for how the
    estimate and its interval decide.
    """

    group_size: int = Field(
        50, ge=2, description="clips per group (the last groups of a scene may be smaller)"
    )
    gold_fraction: float = Field(0.05, gt=0, lt=1, description="share of each group labelled by a PR first")
    n_copies: int = Field(3, ge=1, description="shuffled copies of each group, each to a different CA")
    seed: int = 0
    accept: float = Field(0.8, gt=0, le=1, description="correct rate at or above which a copy is AC")
    improper: float = Field(0.4, ge=0, lt=1, description="correct rate below which a copy is UA")
    interval: float = Field(0.95, gt=0, lt=1, description="credible mass of the correct-rate interval")
    prior_correct: float = Field(0.5, gt=0, description="Beta prior of the correct rate (Jeffreys: 0.5)")
    prior_wrong: float = Field(0.5, gt=0, description="Beta prior of the error rate (Jeffreys: 0.5)")
    max_ca_rounds: int = Field(3, ge=1, description="CA rounds of a copy before a PR relabels it")
    method: str = Field("wwta", description="the aggregator whose labels land (one of AGGREGATORS' names)")
    skill_prior_correct: float = Field(1.0, gt=0, description="WWTa: pseudo-count of correct gold answers")
    skill_prior_wrong: float = Field(1.0, gt=0, description="WWTa: pseudo-count of wrong gold answers")
    pr_accuracy: float = Field(0.95, gt=0, lt=1, description="WWTa: assumed accuracy of a PR's vote")

    @field_validator("method")
    @classmethod
    def _registered(cls, method: str) -> str:
        if method not in AGGREGATORS.names():
            raise ValueError(
                f"unknown aggregation method {method!r}; expected one of {', '.join(AGGREGATORS.names())}"
            )
        return method

    @model_validator(mode="after")
    def _ordered(self) -> AnnotateConfig:
        if not self.improper < self.accept:
            raise ValueError(f"improper ({self.improper}) must be below accept ({self.accept})")
        return self
