"""The labelling web app (paper 3.2, Figure 3(d)): a FastAPI server over the annotation database.

One page (``static/``) and a JSON API. An annotator logs in with their token (a cookie afterwards, or an
``Authorization: Bearer`` header); crowd annotators (CA) label group copies, professional researchers (PR)
label gold items, review scored copies and relabel rejected ones (``service.py`` has the workflow).
A CA never sees gold flags, gold labels, other annotators' answers or PR endpoints.

    >>> app = create_app("sqlite:///annotate.db")                     # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from tasks.annotate.package import AnnotateConfig
from tasks.annotate.web import service
from tasks.annotate.web.db import Database, Task, open_database
from tasks.annotate.web.service import Identity, WorkflowError

STATIC_DIR = Path(__file__).with_name("static")
COOKIE = "ferv_token"
# The page loads nothing from elsewhere and runs no inline script: an injected tag cannot run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Body):
    token: str = Field(min_length=1, max_length=200)


class AnswerBody(_Body):
    task_id: str = Field(min_length=1, max_length=300)
    word: str = Field(min_length=1, max_length=50)
    time_spent_s: float = Field(ge=0, le=service.MAX_TIME_SPENT_S)


class ReviewBody(_Body):
    decision: str | None = Field(default=None, pattern="^(accept|reject)$")
    feedback: str | None = Field(default=None, max_length=5000)


def create_app(
    db: Database | str, cfg: AnnotateConfig | None = None, *, secure_cookie: bool = False
) -> FastAPI:
    """The app over ``db`` (a URL is opened and migrated to the newest schema at startup)."""
    cfg = cfg or AnnotateConfig()
    state: dict[str, Database] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        state["db"] = open_database(db) if isinstance(db, str) else db
        yield
        if isinstance(db, str):
            state["db"].dispose()

    app = FastAPI(title="ferv annotate", lifespan=lifespan, docs_url=None, redoc_url=None)
    if not isinstance(db, str):
        state["db"] = db
    app.state.config = cfg

    def database() -> Database:
        return state["db"]

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(WorkflowError)
    async def _workflow_error(_request: Request, exc: WorkflowError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    def current(request: Request) -> Identity:
        token = request.cookies.get(COOKIE)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        with database().session() as s:
            who = service.authenticate(s, token)
        if who is None:
            raise HTTPException(
                401, "log in with your annotator token", headers={"WWW-Authenticate": "Bearer"}
            )
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
    def login(body: LoginBody, response: Response) -> dict[str, Any]:
        with database().session() as s:
            who = service.authenticate(s, body.token)
        if who is None:
            raise HTTPException(401, "unknown token")
        response.set_cookie(COOKIE, body.token, httponly=True, samesite="strict", secure=secure_cookie)
        return _me(who)

    @app.post("/api/logout")
    def logout(response: Response) -> dict[str, bool]:
        response.delete_cookie(COOKIE)
        return {"ok": True}

    def _me(who: Identity) -> dict[str, Any]:
        return {"id": who.id, "name": who.name, "role": who.role, "queues": list(service.QUEUES[who.role])}

    @app.get("/api/me")
    def me(who: Who) -> dict[str, Any]:
        return _me(who)

    @app.get("/api/feedback")
    def feedback(who: Who) -> list[dict[str, Any]]:
        """PR feedback on the caller's own copies."""
        with database().session() as s:
            return service.feedback_for(s, who)

    @app.get("/api/vocabulary")
    def vocabulary(_who: Who) -> dict[str, Any]:
        return service.vocabulary()

    @app.get("/api/next")
    def next_item(who: Who, queue: Annotated[str, Query(max_length=20)] = "label") -> dict[str, Any]:
        with database().session() as s:
            return {"item": service.next_item(s, who, queue)}

    @app.post("/api/answers")
    def answer(body: AnswerBody, who: Who, response: Response) -> dict[str, Any]:
        try:
            with database().session() as s:
                out = service.submit_answer(s, who, body.task_id, body.word, body.time_spent_s, cfg)
        except IntegrityError:
            # The same item answered by two requests at once (PostgreSQL; SQLite serialises writers):
            # the other one won. Answer again against its row: the same answer or a conflict.
            with database().session() as s:
                out = service.submit_answer(s, who, body.task_id, body.word, body.time_spent_s, cfg)
        response.status_code = 201 if out.created else 200
        return {"answer_id": out.answer_id, "created": out.created, "copy_state": out.copy_state}

    @app.get("/api/answers/mine")
    def mine(who: Who) -> list[dict[str, Any]]:
        with database().session() as s:
            return service.my_answers(s, who)

    @app.get("/api/tasks/{task_id}/video")
    def video(task_id: str, who: Who) -> FileResponse:
        with database().session() as s:
            task = s.get(Task, task_id)
            if task is None:
                raise HTTPException(404, f"no task {task_id!r}")
            if not service.can_view_task(s, who, task):
                raise HTTPException(403, f"task {task_id!r} is not in a copy assigned to you")
            path = Path(task.clip_path) if task.clip_path else None
        if path is None or not path.is_file():
            raise HTTPException(404, f"the clip file of task {task_id!r} is missing")
        return FileResponse(path, media_type="video/mp4")

    @app.get("/api/pr/reviews")
    def reviews(_who: PR) -> list[dict[str, Any]]:
        with database().session() as s:
            return service.review_queue(s)

    @app.post("/api/pr/reviews/{assignment_id}")
    def review(assignment_id: int, body: ReviewBody, who: PR) -> dict[str, Any]:
        with database().session() as s:
            return service.decide(s, who, assignment_id, body.decision, body.feedback, cfg)

    @app.get("/api/pr/assignments/{assignment_id}/answers")
    def assignment_answers(assignment_id: int, _who: PR) -> list[dict[str, Any]]:
        with database().session() as s:
            return service.copy_answers(s, assignment_id)

    @app.get("/api/pr/status")
    def pr_status(_who: PR) -> dict[str, Any]:
        with database().session() as s:
            return service.status(s)

    return app
