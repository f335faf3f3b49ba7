"""What a crowd annotator may see: every response a CA can get is a typed view, and neither the views'
schemas nor the JSON a CA actually receives hold a gold flag, a gold label or anybody else's answer."""

from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from tasks.annotate.web.app import create_app
from tasks.annotate.web.service.views import ReviewView, TaskView

#: Fields that would tell a CA which items are gold, what their labels are, or what others answered.
HIDDEN_FROM_CA = {
    "gold",
    "is_gold",
    "gold_label",
    "gold_left",
    "n_gold",
    "n_gold_answered",
    "n_gold_correct",
    "predicted_label",
    "annotator_id",
    "reviewer_id",
    "relabeller_id",
    "items",
    "answers",
}
#: Routes that answer with a file, not JSON.
FILE_ROUTES = {"/", "/api/tasks/{task_id}/video"}


def schema_fields(schema: Any) -> set[str]:
    """Every property name anywhere in a JSON schema (nested objects and ``$defs`` included)."""
    if isinstance(schema, dict):
        names = set(schema.get("properties", {})) if isinstance(schema.get("properties"), dict) else set()
        return names.union(*(schema_fields(v) for v in schema.values()))
    if isinstance(schema, list):
        return set().union(*(schema_fields(v) for v in schema))
    return set()


def open_objects(schema: Any, path: str = "") -> list[str]:
    """Where a schema admits an object with fields it does not name (an untyped dict)."""
    found = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" not in schema:
            extra = schema.get("additionalProperties", True)
            if extra is True or extra == {}:
                found.append(path or "/")
        for key, value in schema.items():
            found += open_objects(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            found += open_objects(value, f"{path}/{i}")
    return found


def ca_routes() -> list[APIRoute]:
    app = create_app("sqlite://")  # the routes only: the database opens at startup, which never runs here
    routes = [r for r in app.routes if isinstance(r, APIRoute) and not r.path.startswith("/api/pr/")]
    assert {r.path for r in routes} >= {"/api/me", "/api/next", "/api/answers", "/api/feedback"}
    return routes


@pytest.mark.parametrize("route", ca_routes(), ids=lambda r: f"{sorted(r.methods)[0]} {r.path}")
def test_every_response_a_ca_can_get_is_a_closed_typed_view_without_gold_or_others_answers(route):
    if route.path in FILE_ROUTES:
        assert route.response_model is None
        return
    assert route.response_model is not None, f"{route.path} answers with an untyped response"
    schema = TypeAdapter(route.response_model).json_schema(by_alias=True)
    assert not open_objects(schema), f"{route.path}: untyped objects at {open_objects(schema)}"
    assert not schema_fields(schema) & HIDDEN_FROM_CA


def test_the_schema_walk_sees_nested_fields():
    """The check above is not vacuous: the PR's review view, nested items included, shows what a CA's may not."""
    assert {"gold", "gold_label", "annotator_id", "items"} <= schema_fields(ReviewView.model_json_schema())
    assert {"index", "total", "group_id", "round", "description"} <= schema_fields(
        TaskView.model_json_schema()
    )
    assert open_objects({"type": "object", "additionalProperties": True}) == ["/"]


def json_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(json_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(json_keys(v) for v in value))
    return set()


def test_what_a_ca_receives_while_labelling_holds_nothing_hidden(team):
    ca, pr = team.add("ca1", "CA"), team.add("pr1", "PR")
    while (item := pr.get("/api/next", params={"queue": "gold"}).json()["item"]) is not None:
        assert pr.post(
            "/api/answers", json={"task_id": item["task_id"], "word": "rage", "time_spent_s": 1}
        ).is_success
    seen = []
    while (item := ca.get("/api/next").json()["item"]) is not None:
        assert set(item) == {f.alias or name for name, f in TaskView.model_fields.items()}
        seen.append(item)
        r = ca.post("/api/answers", json={"task_id": item["task_id"], "word": "rage", "time_spent_s": 1})
        assert r.status_code == 201
        seen.append(r.json())
    assert len(seen) == 2 * 4 * 2  # a copy of each of the 2 groups, 4 items each, shown and answered
    for review in pr.get("/api/pr/reviews").json():
        assert pr.post(
            f"/api/pr/reviews/{review['assignment_id']}", json={"decision": "accept", "feedback": "ok"}
        ).is_success
    for path in ("/api/me", "/api/vocabulary", "/api/answers/mine", "/api/feedback"):
        r = ca.get(path)
        assert r.status_code == 200, path
        seen.append(r.json())
    assert seen[-1] and seen[-1][0]["feedback"] == "ok"
    assert not json_keys(seen) & HIDDEN_FROM_CA
