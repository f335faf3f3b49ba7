"""The labelling web app (paper 3.2, Figure 3(d)): a FastAPI server over the annotation database.

One page (``static/``) and a JSON API. An annotator logs in with their token, which starts a login session
carried by a cookie (``auth.py``), or sends the token as ``Authorization: Bearer``; crowd annotators (CA)
label group copies, professional researchers (PR) label gold items, review scored copies and relabel
rejected ones (``service/`` has the workflow). A CA never sees gold flags, gold labels, other annotators'
answers or PR endpoints, and cannot tell a task that does not exist from one that is not theirs: every
route answers with a typed view (``service/views.py``), so no field outside the caller's view goes out.

Under abuse (``settings.py`` has the knobs): bodies are capped, nothing a client sent is echoed back, every
response carries the security headers, cookie-authenticated writes must come from the server's own Origin,
reads take no write lock.

    >>> app = create_app("sqlite:///annotate.db")                     # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)
"""

import gc
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from tasks.annotate.config import AnnotateConfig
from tasks.annotate.web import auth, service
from tasks.annotate.web.db import Database, Task, open_database
from tasks.annotate.web.guard import Guard
from tasks.annotate.web.service import Identity, WorkflowError
from tasks.annotate.web.service.views import (
    AnswerReceipt,
    AssignmentSummary,
    FeedbackView,
    LoggedOut,
    Me,
    MyAnswer,
    NextItem,
    ReviewItem,
    ReviewView,
    StatusView,
    Vocabulary,
)
from tasks.annotate.web.settings import ServerSettings

STATIC_DIR = Path(__file__).with_name("static")
COOKIE = "ferv_token"
# The page loads nothing from elsewhere and runs no inline script: an injected tag cannot run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: Database ids are 32-bit on every backend (PostgreSQL ``integer``): larger path ids are a 422, not a 500.
MAX_ID = 2**31 - 1
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AssignmentId = Annotated[int, PathParam(ge=1, le=MAX_ID)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Body):
    token: str = Field(min_length=1, max_length=200)


class AnswerBody(_Body):
    task_id: str = Field(min_length=1, max_length=300)
    word: str = Field(min_length=1, max_length=50)
    time_spent_s: float = Field(ge=0, le=service.MAX_TIME_SPENT_S, allow_inf_nan=False)


class ReviewBody(_Body):
    decision: str | None = Field(default=None, pattern="^(accept|reject)$")
    feedback: str | None = Field(default=None, max_length=5000)


def _validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors without the ``input`` (and ``ctx``) it echoes: a client's body is never sent back
    (it may be huge, or not even valid JSON such as NaN)."""
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")} for e in errors
    ]


def _origin(request: Request) -> str | None:
    """The request's Origin, else its Referer's scheme://host, lower-cased; None when neither is sent."""
    origin = request.headers.get("origin")
    if origin is None and (referer := request.headers.get("referer")):
        scheme, _, rest = referer.partition("://")
        origin = f"{scheme}://{rest.split('/', 1)[0]}" if rest else None
    return origin.lower() if origin and origin != "null" else None


def create_app(
    db: Database | str,
    cfg: AnnotateConfig | None = None,
    settings: ServerSettings | None = None,
    *,
    freeze_heap: bool = False,
) -> FastAPI:
    """The app over ``db`` (a URL is opened and migrated to the newest schema at startup).

    ``freeze_heap`` (for a server process, ``ferv annotate serve``): once started, every object built so
    far (modules, the app, the engine) is moved out of the garbage collector's reach (``gc.freeze``). A
    full collection then walks only what requests allocated since: with the 180k objects of a started
    server it stopped every request for about 200 ms."""
    cfg = cfg or AnnotateConfig()
    settings = settings or ServerSettings()
    state: dict[str, Database] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        state["db"] = open_database(db) if isinstance(db, str) else db
        if freeze_heap:
            gc.collect()
            gc.freeze()
        yield
        if isinstance(db, str):
            state["db"].dispose()

    # No /docs, /redoc or /openapi.json: the API is described in the code, not to anyone who asks.
    app = FastAPI(title="ferv annotate", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes, headers=SECURITY_HEADERS)
    if not isinstance(db, str):
        state["db"] = db
    app.state.config = cfg

    def database() -> Database:
        return state["db"]

    @app.exception_handler(WorkflowError)
    async def _workflow_error(_request: Request, exc: WorkflowError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_errors(exc.errors())}, status_code=422)

    def check_origin(request: Request, *, required: bool) -> None:
        """Refuse a write whose Origin (or Referer) is another site's, or, when ``required`` (the request
        is authenticated by the cookie alone), one that names no origin: SameSite protects only browsers
        that honour it."""
        origin = _origin(request)
        own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
        if origin is None and not required:
            return
        if origin is None:
            raise HTTPException(403, "a cookie-authenticated write must send an Origin or Referer header")
        if origin != own and origin not in settings.allowed_origins:
            raise HTTPException(403, "cross-origin request refused: its Origin is not this server's")

    def token_of(request: Request) -> tuple[str | None, bool]:
        """The caller's token and whether it came from the cookie (not an Authorization header)."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip(), False
        return request.cookies.get(COOKIE), True

    def current(request: Request) -> Identity:
        token, from_cookie = token_of(request)
        with database().read() as s:
            who = auth.authenticate(s, token, settings)
        if who is None:
            raise HTTPException(
                401,
                f"log in with your annotator token (tokens last {settings.token_days:g} days, logins "
                f"{settings.session_hours:g} hours; ask for a new token if yours expired)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if from_cookie and request.method in UNSAFE_METHODS:
            check_origin(request, required=True)
        return who

    def pr(who: Annotated[Identity, Depends(current)]) -> Identity:
        service.require_role(who, "PR")
        return who

    Who = Annotated[Identity, Depends(current)]
    PR = Annotated[Identity, Depends(pr)]

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.post("/api/login")
    def login(body: LoginBody, request: Request, response: Response) -> Me:
        """Start a login session for an annotator token (not a session token); the cookie carries it."""
        check_origin(request, required=False)
        # Not synced to disk before the reply: a machine crash may cost a login, never an answer.
        with database().session(durable=False) as s:
            started = auth.login(s, body.token, settings)
        if started is None:
            raise HTTPException(401, "unknown, expired or revoked token")
        who, session = started
        secure = settings.secure_cookie or request.url.scheme == "https"
        response.set_cookie(
            COOKIE, session, httponly=True, samesite="strict", secure=secure,
            max_age=int(settings.session_ttl.total_seconds()),
        )  # fmt: skip
        return _me(who)

    @app.post("/api/logout")
    def logout(request: Request, response: Response) -> LoggedOut:
        """End the cookie's login session on the server (the cookie alone would stay valid otherwise)."""
        token, from_cookie = token_of(request)
        if from_cookie and token:
            check_origin(request, required=True)
        with database().session() as s:
            ended = auth.end_session(s, token)
        response.delete_cookie(COOKIE)
        return LoggedOut(ok=True, ended=ended)

    def _me(who: Identity) -> Me:
        return Me(id=who.id, name=who.name, role=who.role, queues=list(service.QUEUES[who.role]))

    @app.get("/api/me")
    def me(who: Who) -> Me:
        return _me(who)

    @app.get("/api/feedback")
    def feedback(who: Who) -> list[FeedbackView]:
        """PR feedback on the caller's own copies."""
        with database().read() as s:
            return service.feedback_for(s, who)

    @app.get("/api/vocabulary")
    def vocabulary(_who: Who) -> Vocabulary:
        return service.vocabulary()

    @app.get("/api/next")
    def next_item(who: Who, queue: Annotated[str, Query(max_length=20)] = "label") -> NextItem:
        return NextItem(item=database().read_or_write(lambda s: service.next_item(s, who, queue)))

    @app.post("/api/answers")
    def answer(body: AnswerBody, who: Who, response: Response) -> AnswerReceipt:
        try:
            with database().session() as s:
                out = service.submit_answer(s, who, body.task_id, body.word, body.time_spent_s, cfg)
        except IntegrityError:
            # The same item answered by two requests at once (PostgreSQL; SQLite serialises writers):
            # the other one won. Answer again against its row: the same answer or a conflict.
            with database().session() as s:
                out = service.submit_answer(s, who, body.task_id, body.word, body.time_spent_s, cfg)
        response.status_code = 201 if out.created else 200
        return out

    @app.get("/api/answers/mine")
    def mine(who: Who) -> list[MyAnswer]:
        with database().read() as s:
            return service.my_answers(s, who)

    @app.get("/api/tasks/{task_id}/video")
    def video(task_id: str, who: Who) -> FileResponse:
        with database().read() as s:
            task = s.get(Task, task_id)
            # One answer for a task that does not exist and one that is not the caller's.
            if task is None or not service.can_view_task(s, who, task):
                raise HTTPException(404, f"no task {task_id!r} you may view")
            path = Path(task.clip_path) if task.clip_path else None
        if path is None or not path.is_file():
            raise HTTPException(404, f"the clip file of task {task_id!r} is missing")
        return FileResponse(path, media_type="video/mp4")

    @app.get("/api/pr/reviews")
    def reviews(_who: PR) -> list[ReviewView]:
        with database().read() as s:
            return service.review_queue(s)

    @app.post("/api/pr/reviews/{assignment_id}")
    def review(assignment_id: AssignmentId, body: ReviewBody, who: PR) -> AssignmentSummary:
        with database().session() as s:
            return service.decide(s, who, assignment_id, body.decision, body.feedback, cfg)

    @app.get("/api/pr/assignments/{assignment_id}/answers")
    def assignment_answers(assignment_id: AssignmentId, _who: PR) -> list[ReviewItem]:
        with database().read() as s:
            return service.copy_answers(s, assignment_id)

    @app.get("/api/pr/status")
    def pr_status(_who: PR) -> StatusView:
        with database().read() as s:
            return service.status(s)

    return app
