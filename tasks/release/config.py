"""The ``release`` config section: which source licences an export may ship.

>>> ReleaseConfig().include_unlicensed
False
"""

from __future__ import annotations

from pydantic import Field, field_validator

from data_catalog.section import Section

#: Licences as the sites report them (yt-dlp's ``license`` field) that allow redistribution with
#: attribution: YouTube's and Vimeo's Creative Commons wordings and the SPDX-style short names.
DEFAULT_ALLOWED_LICENCES = (
    "Creative Commons Attribution license (reuse allowed)",
    "CC BY",
    "CC BY 3.0",
    "CC BY 4.0",
    "CC BY-SA",
    "CC BY-SA 4.0",
    "CC0",
    "CC0 1.0",
    "Public Domain",
    "by",
    "by-sa",
)


class ReleaseConfig(Section):
    """What a release (``ferv export``, ``ferv card``) may ship."""

    #: Source licences (as crawled, compared case- and spacing-insensitively) whose clips an export ships.
    allowed_licences: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_LICENCES))
    #: Ship clips whose licence is unknown or not allowed as well (the user's explicit opt-in).
    include_unlicensed: bool = False

    @field_validator("allowed_licences")
    @classmethod
    def _no_blank_licences(cls, value: list[str]) -> list[str]:
        blank = [i for i, v in enumerate(value) if not v.strip()]
        if blank:
            raise ValueError(f"release.allowed_licences: blank entries at positions {blank}")
        return value
