"""The manifest schemas' vocabularies: one reason vocabulary for unreadable media, in ``videos`` and
``media`` alike."""

from __future__ import annotations

import ast
import inspect

import pytest

import tasks.crawl.verify
import tasks.media
import tasks.segment
from data_catalog.schemas import MEDIA_REASONS

# Where a reason for an unreadable input is written: (module, names of the calls whose first argument is
# the reason). The encoder's faults (tasks.media.encode_clip) describe an output, are only logged, and
# are not in the vocabulary.
WRITERS = [
    (tasks.media, {"MediaError"}),
    (tasks.crawl.verify, {"bad", "VideoCheck"}),
    (tasks.segment, {"failed_media_row"}),
]


def _literal_reasons(module, calls: set[str]) -> set[str]:
    """String literals a module gives as a reason: first (or ``reason=``) argument of ``calls``, or
    assigned to ``[...]["reason"]``; the encoder is left out."""
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "encode_clip":
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name in calls:
                args = [a for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                args += [k.value for k in node.keywords if k.arg == "reason"]
                found |= {
                    a.value for a in args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)
                }
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                key = getattr(target, "slice", None)
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "reason"
                    and isinstance(node.value, ast.Constant)
                ):
                    found.add(node.value.value)
    return found


@pytest.mark.parametrize(("module", "calls"), WRITERS, ids=lambda w: getattr(w, "__name__", ""))
def test_every_unreadable_media_reason_a_stage_writes_is_in_the_schemas_vocabulary(module, calls):
    found = _literal_reasons(module, calls)
    assert found, f"{module.__name__}: no reason found; the scan no longer matches the code"
    assert found <= set(MEDIA_REASONS), f"{module.__name__}: {sorted(found - set(MEDIA_REASONS))}"


def test_the_crawl_check_and_the_probe_name_an_undecodable_first_frame_alike():
    """A video whose first frame does not decode was 'not_a_video' in ``videos`` and 'undecodable' in
    ``media``; both now say 'undecodable'."""
    check = _literal_reasons(tasks.crawl.verify, {"bad"})
    assert "undecodable" in check and "undecodable" in _literal_reasons(tasks.media, {"MediaError"})


def test_each_reason_is_snake_case_and_described():
    for reason, text in MEDIA_REASONS.items():
        assert reason.isidentifier() and reason == reason.lower(), reason
        assert text.strip(), reason
