"""An ASGI layer around the labelling app: a request body cap, security headers on every response (errors
included) and a plain 500 for anything unexpected.

A body over the cap is refused with 413 before it is read (by its Content-Length) or as soon as the bytes
read pass the cap (chunked uploads), so a client cannot make the server hold a large body in memory.

    >>> app.add_middleware(Guard, max_body_bytes=64 * 1024, headers=SECURITY_HEADERS)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    """A request body over the cap (an HTTPException, so the framework passes it through as a 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the server's limit of {limit} bytes")


class Guard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, headers: Mapping[str, str]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in names]
                if api and b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        length = _content_length(scope)
        if length is None:
            await self._reply(send_with_headers, 400, "Content-Length is not a non-negative integer")
            return
        if length > self.max_body_bytes:
            await self._reply(send_with_headers, 413, str(BodyTooLarge(self.max_body_bytes).detail))
            return
        seen = 0

        async def capped_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        try:
            await self.app(scope, capped_receive, send_with_headers)
        except BodyTooLarge as exc:
            if started:
                raise
            await self._reply(send_with_headers, 413, str(exc.detail))
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:
                raise
            await self._reply(send_with_headers, 500, "internal server error")

    @staticmethod
    async def _reply(send: Send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 413:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    """The request's Content-Length (0 when absent), or None when it is not a non-negative integer."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() and len(text) < 20 else None
    return 0
