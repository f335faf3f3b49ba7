"""Who is calling: annotator tokens (issued by ``ferv annotate add-annotator``, expiring, revocable) and the
page's login sessions (a random session token in the cookie, ended by logout, revocation or expiry).

Tokens and session tokens are stored only as SHA-256 hashes. An API client sends its annotator token as
``Authorization: Bearer``; the page logs in with it once and then carries only a session token.

    >>> with db.session() as s: token = start_session(s, who, settings)     # doctest: +SKIP
    >>> with db.read() as s: authenticate(s, token, settings)
    Identity(id='ca-1a2b3c', name='Bo', role='CA')
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from tasks.annotate.web.db import Annotator, LoginSession, hash_token, new_token, utcnow
from tasks.annotate.web.service.annotators import Identity
from tasks.annotate.web.service.errors import NotFound
from tasks.annotate.web.settings import ServerSettings

#: Longer strings are never a token: refused before hashing.
MAX_TOKEN_CHARS = 200


def _usable(token: str | None) -> bool:
    return bool(token) and len(token) <= MAX_TOKEN_CHARS and token.isascii() and token.isprintable()


#: The live login behind a session token's hash, with its annotator: one indexed join, built once.
_SESSION = (
    select(Annotator.id, Annotator.name, Annotator.role, LoginSession.expires_at)
    .join(LoginSession, LoginSession.annotator_id == Annotator.id)
    .where(LoginSession.token_hash == bindparam("token_hash"))
)
_ANNOTATOR = select(
    Annotator.id,
    Annotator.name,
    Annotator.role,
    Annotator.created_at,
    Annotator.token_issued_at,
    Annotator.token_revoked_at,
).where(Annotator.token_hash == bindparam("token_hash"))


def authenticate(
    s: Session, token: str | None, settings: ServerSettings, now: datetime | None = None
) -> Identity | None:
    """The annotator behind ``token`` (a live session token or an unexpired, unrevoked annotator token), or
    None. One query per request: the session and its annotator together."""
    if not _usable(token):
        return None
    now = now or utcnow()
    row = s.execute(_SESSION, {"token_hash": hash_token(token)}).first()
    if row is None:
        return _by_annotator_token(s, token, settings, now)
    return Identity(row.id, row.name, row.role) if row.expires_at > now else None


def _by_annotator_token(s: Session, token: str, settings: ServerSettings, now: datetime) -> Identity | None:
    a = s.execute(_ANNOTATOR, {"token_hash": hash_token(token)}).first()
    if (
        a is None
        or a.token_revoked_at is not None
        or (a.token_issued_at or a.created_at) + settings.token_ttl <= now
    ):
        return None
    return Identity(a.id, a.name, a.role)


def login(s: Session, token: str | None, settings: ServerSettings) -> tuple[Identity, str] | None:
    """Start a login session for an annotator token (a session token cannot start another: a stolen cookie
    does not outlive its expiry); returns the annotator and the new session token, or None."""
    now = utcnow()
    who = _by_annotator_token(s, token, settings, now) if _usable(token) else None
    if who is None:
        return None
    session = new_token()
    s.add(
        LoginSession(
            token_hash=hash_token(session),
            annotator_id=who.id,
            created_at=now,
            expires_at=now + settings.session_ttl,
        )
    )
    # Expired sessions are dropped as new ones start, so the table holds only live ones.
    s.execute(delete(LoginSession).where(LoginSession.expires_at <= now))
    return who, session


def end_session(s: Session, token: str | None) -> bool:
    """End the login session of ``token``; True if there was one."""
    if not _usable(token):
        return False
    return bool(s.execute(delete(LoginSession).where(LoginSession.token_hash == hash_token(token))).rowcount)


def revoke(s: Session, annotator_id: str, *, reissue: bool = False) -> str | None:
    """Revoke ``annotator_id``'s token and end all their login sessions; with ``reissue``, issue a new token
    and return it (shown once, stored hashed)."""
    a = s.get(Annotator, annotator_id)
    if a is None:
        raise NotFound(f"no annotator {annotator_id!r}")
    now = utcnow()
    s.execute(delete(LoginSession).where(LoginSession.annotator_id == annotator_id))
    if not reissue:
        a.token_revoked_at = now
        return None
    token = new_token()
    a.token_hash, a.token_issued_at, a.token_revoked_at = hash_token(token), now, None
    return token
