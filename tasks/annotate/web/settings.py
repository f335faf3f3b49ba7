"""The labelling server's settings: request size cap, token and session lifetimes, cookie and Origin policy.

Set by ``ferv annotate serve`` flags (``--max-body-kb``, ``--token-days``, ``--session-hours``,
``--secure-cookie``, ``--allow-origin``); the defaults suit one server on a lab network.

    >>> ServerSettings(token_days=30).token_ttl                          # doctest: +SKIP
    datetime.timedelta(days=30)
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The largest legitimate body is a review with 5000 characters of feedback (at most ~30 KB as JSON).
    max_body_kb: float = Field(
        64, ge=1, le=64 * 1024, allow_inf_nan=False, description="request body cap in KiB"
    )
    token_days: float = Field(
        90, gt=0, le=3650, allow_inf_nan=False, description="an annotator token's lifetime from its issue"
    )
    session_hours: float = Field(
        12, gt=0, le=24 * 90, allow_inf_nan=False, description="a page login's lifetime"
    )
    secure_cookie: bool = Field(False, description="send the login cookie over HTTPS only")
    allowed_origins: tuple[str, ...] = Field(
        (), description="origins besides the server's own whose cookie-authenticated writes are accepted"
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            scheme, sep, host = origin.partition("://")
            if scheme not in ("http", "https") or not sep or not host or "/" in host:
                raise ValueError(
                    f"origin {origin!r}: expected scheme://host[:port], e.g. https://label.example"
                )
        return tuple(o.lower() for o in value)

    @property
    def max_body_bytes(self) -> int:
        return round(self.max_body_kb * 1024)

    @property
    def token_ttl(self) -> timedelta:
        return timedelta(days=self.token_days)

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(hours=self.session_hours)
