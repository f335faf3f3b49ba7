"""``ferv annotate serve | add-annotator | revoke | load | export-answers``: the labelling web app's commands.

    ferv annotate add-annotator "Ada" --role PR          # prints the login token (shown once)
    ferv annotate revoke pr-1a2b3c --new-token           # ends Ada's logins, prints a new token
    ferv annotate load --batch b0001                     # annotation_tasks of batch b0001 -> database
    ferv annotate serve --port 8000                      # the labelling page on http://127.0.0.1:8000/
    ferv annotate export-answers                         # database -> answers + group_checks manifests

The database is SQLite under the storage root unless ``--db`` (or ``$FERV_ANNOTATE_DB``) names another,
e.g. ``postgresql+psycopg://user@host/ferv`` for many annotators. Registered on the ``annotate`` group.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.options import ConfigRequest, renamed, with_config

if TYPE_CHECKING:
    from flows.config import PipelineConfig

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="FERV_ANNOTATE_DB",
        help="Database URL (default: sqlite:///<storage.root>/annotate.db).",
    ),
]


def _db_url(db: str | None, cfg) -> str:
    if db:
        return db
    cfg.storage.root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(cfg.storage.root / 'annotate.db').resolve()}"


@contextlib.contextmanager
def _session(url: str):
    """A session on the database at ``url`` (migrated), committed on success; the engine is disposed."""
    from tasks.annotate.web.db import open_database

    database = open_database(url)
    try:
        with database.session() as s:
            yield s
    finally:
        database.dispose()


def _in_database(url: str, work):
    """``work(session)`` on the database at ``url``, committed; a workflow error (unknown annotator, bad
    role, ...) becomes a ValueError with its message."""
    from tasks.annotate.web.service import WorkflowError

    try:
        with _session(url) as s:
            return work(s)
    except WorkflowError as exc:
        raise ValueError(str(exc)) from None


@with_config
def serve_cmd(
    cfg: PipelineConfig,
    db: Db = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    secure_cookie: Annotated[
        bool,
        typer.Option(
            "--secure-cookie", help="Send the login cookie over HTTPS only (always on for HTTPS requests)."
        ),
    ] = False,
    max_body_kb: Annotated[
        float, typer.Option("--max-body-kb", help="Refuse request bodies over this many KiB (413).")
    ] = 64,
    token_days: Annotated[
        float, typer.Option("--token-days", help="Annotator tokens expire this many days after issue.")
    ] = 90,
    session_hours: Annotated[
        float, typer.Option("--session-hours", help="A page login lasts this many hours.")
    ] = 12,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-origin",
            help="Another origin (scheme://host[:port]) whose cookie-authenticated writes to accept, "
            "e.g. a reverse proxy's public address (repeatable).",
        ),
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log one line per request (off: a busy server spends less time logging).",
        ),
    ] = True,
) -> None:
    """Serve the labelling page and its API (migrates the database first)."""
    import uvicorn
    from pydantic import ValidationError

    from tasks.annotate.web.app import create_app
    from tasks.annotate.web.settings import ServerSettings

    try:
        settings = ServerSettings(
            max_body_kb=max_body_kb,
            token_days=token_days,
            session_hours=session_hours,
            secure_cookie=secure_cookie,
            allowed_origins=tuple(allow_origin or ()),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"serve settings: {problems}") from None
    url = _db_url(db, cfg)
    typer.echo(f"database {url}; labelling page on http://{host}:{port}/")
    # Keep-alive past an annotator's look at a clip, so their next request reuses the connection.
    app = create_app(url, cfg.annotate, settings, freeze_heap=True)
    uvicorn.run(app, host=host, port=port, timeout_keep_alive=75, access_log=access_log)


@with_config
def add_annotator_cmd(
    cfg: PipelineConfig,
    name: Annotated[str, typer.Argument(help="The annotator's display name.")],
    role: Annotated[
        str, typer.Option("--role", help="CA (crowd annotator) or PR (professional researcher).")
    ],
    annotator_id: Annotated[
        str | None, typer.Option("--id", help="An id of your own (default: random).")
    ] = None,
    db: Db = None,
) -> None:
    """Register an annotator and print their login token (shown only now; stored hashed)."""
    from tasks.annotate.web import service

    who, token = _in_database(
        _db_url(db, cfg), lambda s: service.add_annotator(s, name, role.upper(), annotator_id)
    )
    typer.echo(f"{who.id} ({who.role}) token: {token}")


@with_config
def revoke_cmd(
    cfg: PipelineConfig,
    annotator_id: Annotated[str, typer.Argument(help="The annotator whose token to revoke.")],
    new_token: Annotated[
        bool, typer.Option("--new-token", help="Issue a new token in its place and print it (shown once).")
    ] = False,
    db: Db = None,
) -> None:
    """Revoke an annotator's token and end every login of theirs at once (a leaked or expired token)."""
    from tasks.annotate.web import auth

    token = _in_database(_db_url(db, cfg), lambda s: auth.revoke(s, annotator_id, reissue=new_token))
    if token is None:
        typer.echo(f"{annotator_id}: token revoked, logins ended")
    else:
        typer.echo(f"{annotator_id}: old token revoked, logins ended; new token: {token}")


@with_config
def load_cmd(
    config: ConfigRequest,
    batch: Annotated[
        str | None, typer.Option("--batch", help="The annotation batch id (see `ferv annotate package`).")
    ] = None,
    old_batch: Annotated[
        str | None,
        typer.Argument(metavar="BATCH", help="Deprecated: the batch as a positional; use --batch."),
    ] = None,
    db: Db = None,
) -> None:
    """Load a batch's annotation tasks (with titles and face tracks) into the database; rerunnable."""
    from data_catalog.io import Catalog
    from tasks.annotate.web import service
    from tasks.annotate.web.manifests import read_batch

    batch = renamed(batch, old_batch, "--batch", "the positional BATCH")
    cfg = config.resolve()
    data = read_batch(Catalog(cfg.storage.catalog_dir), batch)
    with _session(_db_url(db, cfg)) as s:
        res = service.load_tasks(
            s, data.tasks, cfg.annotate, titles=data.titles, boxes=data.boxes, progress=True
        )
    typer.echo(
        f"batch {batch}: {res.n_tasks} tasks ({res.n_new_tasks} new), {res.n_new_assignments} new copies, "
        f"{res.n_preassigned} pre-assigned to CAs"
    )


@with_config
def export_answers_cmd(
    cfg: PipelineConfig,
    batch: Annotated[
        list[str] | None, typer.Option("--batch", help="Only this batch (repeatable); default: all.")
    ] = None,
    db: Db = None,
) -> None:
    """Write the database's answers and copy checks as the `answers` and `group_checks` manifests."""
    from data_catalog.io import Catalog
    from tasks.annotate.web import service
    from tasks.annotate.web.manifests import write_exports

    with _session(_db_url(db, cfg)) as s:
        answers, checks = service.export_frames(s, batch)
    refs = write_exports(Catalog(cfg.storage.catalog_dir), answers, checks, cfg.lineage_json(["annotate"]))
    for ref in refs:
        typer.echo(f"{ref.manifest:<13} {ref.scene:<16} {ref.rows:>7} rows  {ref.path}")
    typer.echo(f"{len(answers)} answers, {len(checks)} copy checks")


def register(app: typer.Typer) -> None:
    """Add the web app's commands to the ``annotate`` group."""
    app.command("serve")(serve_cmd)
    app.command("add-annotator")(add_annotator_cmd)
    app.command("revoke")(revoke_cmd)
    app.command("load")(load_cmd)
    app.command("export-answers")(export_answers_cmd)
