"""The rule list of candidate generation (paper 3.2: "we make a rule list to help our well-designed
mechanism adaptively and automatically select" facial clips).

Each rule is a small named check over a clip's measures (:mod:`tasks.face_filter.measures`): it keeps the
clip, or drops it with its name as the reason and the measured value. Rules run in the configured order and
the first failure is recorded, so ``select reason, count(*) from candidates group by reason`` counts
rejections per rule. A measure that could not be taken (NaN, e.g. face size on a clip without faces)
fails its rule.

    >>> verdict = apply_rules({"presence": 0.25, ...}, default_rules())    # doctest: +SKIP
    >>> verdict.keep, verdict.reason, verdict.value
    (False, 'face_presence', 0.25)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import field_validator

from data_catalog.section import Section


@dataclass(frozen=True)
class Verdict:
    """Keep, or drop with the failed rule's name and the value it measured."""

    keep: bool
    reason: str | None = None
    value: float | None = None


KEEP = Verdict(True)


@dataclass(frozen=True)
class Rule:
    """A named threshold on one measure: ``min`` rules keep values >= threshold, ``max`` rules <=."""

    name: str
    measure: str
    kind: Literal["min", "max"]
    default: float
    description: str

    def check(self, measures: Mapping[str, float], threshold: float) -> Verdict:
        value = float(measures.get(self.measure, math.nan))
        ok = value >= threshold if self.kind == "min" else value <= threshold  # NaN fails both
        return KEEP if ok else Verdict(False, self.name, value)


#: Every known rule, in the default order (cheap, decisive rules first).
RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("face_presence", "presence", "min", 0.75, "share of sampled frames with a face"),
        Rule("no_shot_cut", "cut_change", "max", 0.5, "largest colour-histogram change between samples"),
        Rule("min_score", "score", "min", 0.6, "median detection score of the dominant face"),
        Rule("dominant_face", "dominance", "min", 2.0, "median area ratio, largest face / second face"),
        Rule("min_face_px", "face_px", "min", 48.0, "median short side of the face box, source pixels"),
        Rule("min_face_frac", "face_frac", "min", 0.1, "median face box height / frame height"),
        Rule("max_yaw", "yaw", "max", 45.0, "median |yaw| in degrees, estimated from the 5 landmarks"),
        Rule("sharpness", "sharpness", "min", 0.05, "median variance of Laplacian of the normalised crop"),
        Rule("track_iou", "track_iou", "min", 0.3, "smallest IoU of the face box between samples"),
        Rule("track_shift", "track_shift", "max", 0.5, "largest centre shift between samples / face size"),
    )
}


class RuleSpec(Section):
    """One entry of the configured rule list."""

    name: str
    threshold: float

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in RULES:
            raise ValueError(f"unknown face rule {value!r}; known rules: {', '.join(RULES)}")
        return value


def default_rules() -> list[RuleSpec]:
    return [RuleSpec(name=r.name, threshold=r.default) for r in RULES.values()]


def apply_rules(measures: Mapping[str, float], rules: Iterable[RuleSpec]) -> Verdict:
    """The first rule the clip fails, or :data:`KEEP`."""
    for spec in rules:
        verdict = RULES[spec.name].check(measures, spec.threshold)
        if not verdict.keep:
            return verdict
    return KEEP
