"""What each role may see: the labelling API's responses as typed models, one per view.

The crowd annotator's (CA) views come first: they are what every annotator may read, and they hold no gold
flag, no gold label, no predicted label and nobody else's answer or id (tests/annotate/web/test_views.py
walks their schemas). The professional researcher's (PR) views follow: the review of a scored copy puts
the CA's answer next to the gold label. The app declares these as its routes' response types, so a field
that is not in a view cannot reach the client.

    >>> TaskView.model_json_schema()["properties"].keys()                          # doctest: +SKIP
    dict_keys(['task_id', 'clip_id', 'queue', 'scene', 'title', 'video_url', 'boxes', 'progress', 'copy'])
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class View(BaseModel):
    """Base of every response: exactly its fields, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ------------------------------------------------------------------------- every role, the CA included


class Me(View):
    id: str
    name: str
    role: str
    queues: list[str]


class LoggedOut(View):
    ok: bool
    ended: bool


class WordChoice(View):
    word: str
    key: str | None  # the keyboard shortcut; None once a-z and 1-9 are used up


class ExpressionChoice(View):
    name: str
    description: str
    words: list[WordChoice]


class Vocabulary(View):
    """The page's choices: the 7 expressions with their words, and PASS."""

    expressions: list[ExpressionChoice]
    pass_: WordChoice = Field(alias="pass")


class SceneIntro(View):
    scene: str
    scenario: str
    description: str


class Progress(View):
    index: int  # 1-based position of the item shown
    total: int


class CopyRef(View):
    group_id: str
    copy_: int = Field(alias="copy")  # "copy" would shadow BaseModel.copy
    round: int


class TaskView(View):
    """One item to label. Never says whether it is gold, nor any answer to it."""

    task_id: str
    clip_id: str
    queue: str
    scene: SceneIntro
    title: str | None
    video_url: str
    boxes: list[list[float]]  # the face track: [[t, x1, y1, x2, y2], ...], box as fractions of the frame
    progress: Progress
    copy_: CopyRef | None = Field(alias="copy")


class NextItem(View):
    item: TaskView | None  # None: the queue is empty


class AnswerReceipt(View):
    answer_id: str
    created: bool  # False: the same answer was already stored (a resubmission)
    copy_state: str | None  # the copy's state after this answer (None for a gold label)


class MyAnswer(View):
    """One of the caller's own answers."""

    answer_id: str
    task_id: str
    round: int
    word: str
    label: str | None
    answered_at: str
    time_spent_s: float


class FeedbackView(View):
    """A PR's review of one of the caller's copies."""

    group_id: str
    copy_: int = Field(alias="copy")  # "copy" would shadow BaseModel.copy
    round: int
    verdict: str | None
    decision: str | None
    feedback: str | None
    at: str


# ------------------------------------------------------------------------- PR only


class AssignmentSummary(View):
    """A copy assignment with its flag-recapture score."""

    assignment_id: int
    group_id: str
    copy_: int = Field(alias="copy")  # "copy" would shadow BaseModel.copy
    round: int
    scene: str
    annotator_id: str | None
    state: str
    verdict: str | None
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    n_items: int | None
    n_gold: int | None
    n_gold_answered: int | None
    n_gold_correct: int | None


class ReviewItem(View):
    """One item of a reviewed copy: the CA's answer next to the gold label (gold items only)."""

    task_id: str
    clip_id: str
    video_url: str
    word: str | None
    label: str | None
    gold: bool
    gold_label: str | None


class ReviewView(AssignmentSummary):
    needs_decision: bool  # False: a UA copy back with the crowd, waiting for feedback only
    items: list[ReviewItem]


class StatusView(View):
    """Counts for the PR's overview."""

    states: dict[str, int]
    verdicts: dict[str, int]
    gold_left: int
