"""The labelling app's database: SQLAlchemy 2 models, engine and sessions (paper 3.2, Figure 3(c)).

SQLite (one file) by default, PostgreSQL by URL when many annotators work at once. The schema is made by
the Alembic migrations in ``migrations/`` (never ``create_all``); :func:`open_database` upgrades a database
to the newest revision before handing out sessions.

Tables: ``annotators`` (login token stored as a SHA-256 hash, with when it was issued and revoked),
``login_sessions`` (the page's cookie sessions, hashed, each with its expiry), ``tasks`` (the ``annotation_tasks``
manifest plus what the page shows: video title, face track), ``assignments`` (one row per group copy and
round: who labels it, its state and flag-recapture score), ``answers``, ``reviews`` (a PR's decision and
feedback).

    >>> db = open_database("sqlite:///annotate.db")           # doctest: +SKIP
    >>> with db.session() as s: s.scalars(select(Annotator)).all()
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

ROLES = ("CA", "PR")
#: States of an assignment (one group copy in one CA round): 'labelling' until the CA has answered every
#: item, then the step ``tasks.annotate.workflow.next_step`` gives ('back_to_ca' ends the round: the copy
#: continues in a new assignment).
STATES = ("labelling", "pr_review", "back_to_ca", "pr_relabel", "done")
DEFAULT_URL = "sqlite:///annotate.db"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_token() -> str:
    """A fresh random login or session token (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """Tokens are stored hashed: a leaked database does not let anyone log in."""
    return hashlib.sha256(token.encode()).hexdigest()


class UTCDateTime(TypeDecorator):
    """Timestamps in UTC: stored naive on SQLite (which keeps no zone), always returned zone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive timestamp {value!r}: give a zone-aware (UTC) datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class Annotator(Base):
    __tablename__ = "annotators"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(2))  # 'CA' crowd annotator, 'PR' professional researcher
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The token expires a server-set time after it was issued; a revoked token never logs in again.
    token_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginSession(Base):
    """A logged-in page: its cookie carries a random session token (stored hashed), never the annotator's
    token. Logging out, revoking the annotator or the expiry ends it."""

    __tablename__ = "login_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    annotator_id: Mapped[str] = mapped_column(ForeignKey("annotators.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Task(Base):
    __tablename__ = "tasks"

    task_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(100), index=True)
    group_id: Mapped[str] = mapped_column(String(120))
    copy: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    clip_id: Mapped[str] = mapped_column(String(200))
    scene: Mapped[str] = mapped_column(String(100))
    gold: Mapped[bool] = mapped_column(Boolean)
    clip_path: Mapped[str | None] = mapped_column(Text)
    predicted_label: Mapped[str | None] = mapped_column(String(50))
    title: Mapped[str | None] = mapped_column(Text)  # the source video's title, shown as text
    # The face track: [[t, x1, y1, x2, y2], ...], t in seconds from the clip's start, coordinates as
    # fractions of the frame (face_index 0 of each sampled frame; the page interpolates between them).
    boxes: Mapped[list | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_tasks_group_copy", "group_id", "copy", "position"),)


class Assignment(Base):
    """One group copy in one CA round. Round 1 is the first pass; a copy sent back to the crowd gets a new
    assignment (round + 1) for another CA; a copy a PR relabels keeps its round (the relabel resolves
    that round's check, as ``tasks.annotate.workflow`` reads it) and records the PR in ``relabeller_id``."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(100), index=True)
    group_id: Mapped[str] = mapped_column(String(120))
    copy: Mapped[int] = mapped_column(Integer)
    round: Mapped[int] = mapped_column(Integer)
    scene: Mapped[str] = mapped_column(String(100))
    annotator_id: Mapped[str | None] = mapped_column(ForeignKey("annotators.id"), index=True)  # the CA
    relabeller_id: Mapped[str | None] = mapped_column(ForeignKey("annotators.id"))  # a PR, when relabelled
    state: Mapped[str] = mapped_column(String(20), index=True)  # one of STATES
    verdict: Mapped[str | None] = mapped_column(String(2))  # 'AC', 'IP', 'UA' once scored
    n_items: Mapped[int | None] = mapped_column(Integer)
    n_gold: Mapped[int | None] = mapped_column(Integer)
    n_gold_answered: Mapped[int | None] = mapped_column(Integer)
    n_gold_correct: Mapped[int | None] = mapped_column(Integer)
    estimate: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("group_id", "copy", "round", name="uq_assignments_copy_round"),)


class Answer(Base):
    __tablename__ = "answers"

    answer_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.task_id"), index=True)
    # Null for a PR's gold label (gold items are labelled before any copy is handed out).
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"), index=True)
    annotator_id: Mapped[str] = mapped_column(ForeignKey("annotators.id"), index=True)
    role: Mapped[str] = mapped_column(String(2))
    round: Mapped[int] = mapped_column(Integer)
    word: Mapped[str] = mapped_column(String(50))  # a fine-grained word or 'PASS'
    label: Mapped[str | None] = mapped_column(String(50))  # the word's expression; null for PASS
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    time_spent_s: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(20), default="web")

    __table_args__ = (UniqueConstraint("task_id", "annotator_id", "round", name="uq_answers_once"),)


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), unique=True)
    reviewer_id: Mapped[str] = mapped_column(ForeignKey("annotators.id"))
    decision: Mapped[str | None] = mapped_column(String(10))  # 'accept' / 'reject'; null: feedback only
    feedback: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema revision (Alembic ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


#: Execution option of a read-only session (:meth:`Database.read`).
READ_ONLY = "ferv_read_only"
#: Execution option of a writing session whose commit need not reach the disk (``session(durable=False)``).
NOT_DURABLE = "ferv_not_durable"
#: Seconds a writer waits for its turn before giving up (SQLite's busy timeout, the in-process lock).
WRITE_TIMEOUT_S = 60
T = TypeVar("T")


class NeedsWrite(Exception):
    """Raised by work in a reading session that finds it must write; :meth:`Database.read_or_write`
    reruns it in a writing one."""


def require_write(s: Session) -> None:
    """Raise :class:`NeedsWrite` if ``s`` is a reading session (call before writing)."""
    if s.connection().get_execution_options().get(READ_ONLY):
        raise NeedsWrite


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for writing
    transactions, so concurrent writers queue up instead of failing with 'database is locked'; reading
    transactions begin deferred and, in WAL mode, never wait for a writer nor hold one up.

    Durability on SQLite: a writing transaction commits with ``synchronous=FULL`` (the WAL reaches the disk
    before the commit returns: an acknowledged answer survives a power cut); one opened with
    ``NOT_DURABLE`` (a login session) commits with ``synchronous=NORMAL``, without that sync: it survives a
    crash of the server, may be lost with the machine, and the next durable commit syncs it too."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=40)
    # As many connections as the server has worker threads: a writer waiting for its turn must not keep a
    # reader from getting a connection.
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": WRITE_TIMEOUT_S},
        pool_size=10,
        max_overflow=40,
    )

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_connection, record) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun explicitly below
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={WRITE_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()
        record.info["synchronous"] = "FULL"

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn) -> None:
        options = conn.get_execution_options()
        if options.get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        synchronous = "NORMAL" if options.get(NOT_DURABLE) else "FULL"
        if conn.info.get("synchronous") != synchronous:  # a connection's setting, kept across checkouts
            conn.exec_driver_sql(f"PRAGMA synchronous={synchronous}")
            conn.info["synchronous"] = synchronous
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


#: One lock per SQLite file in this process: its writers take turns on it, each woken as soon as the one
#: before has committed, instead of in SQLite's busy handler, which polls with sleeps of up to 100 ms.
#: Writers in other processes (a CLI command) still meet this one in the busy handler.
_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock(url: str) -> threading.Lock | None:
    """This process's write lock of the SQLite file at ``url``; None for PostgreSQL (it locks rows, and
    its writers do not wait for each other) and for an in-memory SQLite database."""
    database = make_url(url).database
    if not url.startswith("sqlite") or not database or database == ":memory:":
        return None
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(str(Path(database).resolve()), threading.Lock())


@dataclass
class Database:
    url: str
    engine: Engine
    factory: sessionmaker[Session]
    read_factory: sessionmaker[Session]
    not_durable_factory: sessionmaker[Session]
    lock: threading.Lock | None = None

    @contextmanager
    def session(self, *, durable: bool = True) -> Iterator[Session]:
        """A session in one writing transaction: committed on success, rolled back on error. On SQLite,
        this process's writers take turns on :func:`write_lock` first. ``durable=False``: the commit
        need not reach the disk before it returns (see :func:`make_engine`); for what a machine crash may
        lose, such as a login session, never an answer."""
        with self._turn(), (self.factory if durable else self.not_durable_factory)() as s, s.begin():
            yield s

    @contextmanager
    def _turn(self) -> Iterator[None]:
        if self.lock is None:
            yield
            return
        if not self.lock.acquire(timeout=WRITE_TIMEOUT_S):
            raise TimeoutError(f"no turn to write to the database within {WRITE_TIMEOUT_S} s")
        try:
            yield
        finally:
            self.lock.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading: on SQLite it takes no write lock (a deferred transaction over one WAL
        snapshot), so reads run alongside each other and alongside the one writer. Nothing is committed;
        use :meth:`session` to write."""
        with self.read_factory() as s:  # closing rolls the transaction back
            yield s

    def read_or_write(self, work: Callable[[Session], T]) -> T:
        """``work(s)`` in a reading session; again in a writing one if it raised :class:`NeedsWrite`
        (e.g. a request that must claim a copy first, which most requests need not)."""
        try:
            with self.read() as s:
                return work(s)
        except NeedsWrite:
            with self.session() as s:
                return work(s)

    def dispose(self) -> None:
        self.engine.dispose()


def check_url(url: str) -> str:
    """A SQLAlchemy URL for SQLite or PostgreSQL, or a ValueError naming it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(
            f"--db {url!r}: not a database URL (sqlite:///file.db or postgresql+psycopg://...)"
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"--db {url!r}: only sqlite and postgresql databases are supported")
    return url


def open_database(url: str = DEFAULT_URL, *, migrate: bool = True) -> Database:
    """Open (and by default migrate) the database at ``url``."""
    check_url(url)
    if migrate:
        upgrade(url)
    engine = make_engine(url)
    return Database(
        url,
        engine,
        sessionmaker(engine, expire_on_commit=False),
        sessionmaker(engine, expire_on_commit=False, execution_options={READ_ONLY: True}),
        sessionmaker(engine, expire_on_commit=False, execution_options={NOT_DURABLE: True}),
        write_lock(url),
    )
