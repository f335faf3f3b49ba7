"""The two-stage annotation workflow over the database (paper 3.2 "Manual annotation", Figure 3(c)).

Plain functions on a SQLAlchemy session; the web app (``app.py``) and the CLI call them, the rules come
from ``tasks.annotate`` (``score_copy``, ``next_step``, ``reassign_copy``) so the database and the
simulator follow the same ones. One module per section: ``vocabulary`` (the words a page offers),
``annotators``, ``loading`` (a batch into the database), ``gold``, ``queues`` (who labels what next),
``answers`` (and scoring), ``review`` (PR only) and ``export`` (back to the catalog); ``views`` types what
each role may see, ``errors`` the refusals. The workflow:

1. **Gold first.** A PR labels each group's gold items (one label per gold clip, kept on the copy-0 task,
   round 1). A group's copies are handed to CAs only once all its gold items are labelled.
2. **Copies.** A CA labels one group copy at a time (pre-assigned by ``assign_copies`` at load, or
   claimed on demand; never two copies of one group, in any round, to the same CA).
3. **Scoring.** When a CA has answered every item of a copy, the copy is scored (``score_copy``) and
   moves on by ``next_step``: AC and IP to a PR's review, UA back to another CA (a new assignment,
   round + 1), a copy out of CA rounds to a PR's relabel.
4. **Review.** A PR accepts or rejects an AC/IP copy with feedback the CA sees (and may leave feedback on
   a UA copy). A rejected IP copy is relabelled by a PR: its non-gold items, in the same round.

Errors a user can cause raise :class:`WorkflowError` subclasses carrying the HTTP status the app returns.
"""

from tasks.annotate.web.service import views
from tasks.annotate.web.service.annotators import Identity, add_annotator, require_role
from tasks.annotate.web.service.answers import MAX_TIME_SPENT_S, my_answers, score_assignment, submit_answer
from tasks.annotate.web.service.errors import Conflict, Forbidden, Invalid, NotFound, WorkflowError
from tasks.annotate.web.service.export import export_frames
from tasks.annotate.web.service.gold import gold_truth
from tasks.annotate.web.service.loading import LoadResult, load_tasks
from tasks.annotate.web.service.queues import (
    QUEUES,
    can_view_task,
    current_assignment,
    current_relabel,
    next_item,
    task_view,
)
from tasks.annotate.web.service.review import (
    assignment_summary,
    copy_answers,
    decide,
    feedback_for,
    review_queue,
    review_view,
    status,
)
from tasks.annotate.web.service.vocabulary import scene_intro, vocabulary, word_label

__all__ = [
    "Conflict",
    "Forbidden",
    "Identity",
    "Invalid",
    "LoadResult",
    "MAX_TIME_SPENT_S",
    "NotFound",
    "QUEUES",
    "WorkflowError",
    "add_annotator",
    "assignment_summary",
    "can_view_task",
    "copy_answers",
    "current_assignment",
    "current_relabel",
    "decide",
    "export_frames",
    "feedback_for",
    "gold_truth",
    "load_tasks",
    "my_answers",
    "next_item",
    "require_role",
    "review_queue",
    "review_view",
    "scene_intro",
    "score_assignment",
    "status",
    "submit_answer",
    "task_view",
    "views",
    "vocabulary",
    "word_label",
]
