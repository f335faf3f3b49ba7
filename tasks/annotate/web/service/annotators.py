"""Annotators: registering one (with a login token shown once) and checking a caller's role."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tasks.annotate.web.db import ROLES, Annotator, hash_token, new_token, utcnow
from tasks.annotate.web.service.errors import Conflict, Forbidden, Invalid

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Identity:
    id: str
    name: str
    role: str


def add_annotator(s: Session, name: str, role: str, annotator_id: str | None = None) -> tuple[Identity, str]:
    """Register an annotator; returns them and their login token (shown once, stored hashed)."""
    if role not in ROLES:
        raise Invalid(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if not name.strip():
        raise Invalid("an annotator needs a name")
    aid = annotator_id or f"{role.lower()}-{secrets.token_hex(3)}"
    if not _ID.match(aid):
        raise Invalid(f"annotator id {aid!r}: use up to 64 letters, digits, '_', '.', '-'")
    if s.get(Annotator, aid) is not None:
        raise Conflict(f"annotator id {aid!r} is taken")
    token = new_token()
    now = utcnow()
    s.add(
        Annotator(
            id=aid,
            name=name.strip(),
            role=role,
            token_hash=hash_token(token),
            created_at=now,
            token_issued_at=now,
        )
    )
    return Identity(aid, name.strip(), role), token


def require_role(who: Identity, role: str) -> None:
    if who.role != role:
        raise Forbidden(f"only {role} annotators may do this; you are {who.role}")
