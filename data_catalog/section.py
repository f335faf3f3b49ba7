"""The policy every config section follows, in one place: unknown keys are errors, values are validated on
assignment, and no float may be NaN or infinite (``.inf`` as a clip length or a budget factor would run to
an empty result instead of failing).

Stage configs live beside their stage (``tasks/``) and flows/config.py assembles them; the base sits here, at
the bottom of the layers, so every section can share it without an import cycle.

    >>> class SegmentConfig(Section):                                   # doctest: +SKIP
    ...     max_len: float = 4.0
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Base of every config section (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
