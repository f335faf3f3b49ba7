"""The requests the workflow refuses, each with the HTTP status the app answers with."""

from __future__ import annotations


class WorkflowError(ValueError):
    """A request the workflow refuses; ``status`` is the HTTP status the app answers with."""

    status = 400


class NotFound(WorkflowError):
    status = 404


class Forbidden(WorkflowError):
    status = 403


class Conflict(WorkflowError):
    status = 409


class Invalid(WorkflowError):
    status = 422
