"""Simulated annotators running the whole annotation workflow in memory (paper, section 3.2, Fig. 3(c)).

The workflow is the real one: ``package`` forms groups with gold items and shuffled copies, PRs label the
gold first, ``assign_copies`` hands the copies to CAs, ``score_copy`` scores each finished copy,
``next_step`` moves it (PR review, back to another CA, PR relabelling) and ``land.aggregate`` votes the
accepted answers. Only the people are simulated:

- **Hidden truth**: each clip's expression drawn from the FERV39k release's distribution; the FER
  prediction is right with probability ``fer_accuracy``, else a confusable expression.
- **A CA** has a confusion matrix over the 7 expressions: accuracy ``a`` (uniform in the crowd quality's
  range) on the diagonal, the rest spread over the other expressions with extra weight on the confusable
  pairs (Angry-Disgust, Fear-Surprise, Sad-Neutral, Happy-Surprise) and Dirichlet noise per annotator.
  The word is one of the expression's fine-grained words; a share ``pass_rate`` of answers is PASS.
- **Spammers** (``spammer_share`` of the CAs): half answer uniformly at random over the 26 words, half
  always give the same word.
- **A PR** is a CA with accuracy ``pr_accuracy`` and no PASS. Reviewing a copy, the PR checks
  ``review_items`` of its answered items against their own judgement and accepts when at least
  ``review_agreement`` of them agree; the feedback says how many disagreed.

    >>> result = simulate(n_clips=300, quality="mixed", seed=0)                # doctest: +SKIP
    >>> evaluate(result).round(3)                                               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from data_catalog.io import Catalog, PartRef
from data_catalog.lineage import RunContext
from data_catalog.release_counts import release_prior
from keywords.taxonomy import load_taxonomy
from tasks.annotate.aggregation import AGGREGATORS
from tasks.annotate.config import AnnotateConfig
from tasks.annotate.land import aggregate
from tasks.annotate.package import assign_copies, package, reassign_copy
from tasks.annotate.recapture import PASS, score_copy
from tasks.annotate.workflow import CopyState, gold_labels, next_step

STAGE = "annotate.simulate"
CONFUSABLE = (("Angry", "Disgust"), ("Fear", "Surprise"), ("Sad", "Neutral"), ("Happy", "Surprise"))
_T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class CrowdQuality:
    """A crowd: CA accuracy range (non-spammers), share of spammers, share of PASS answers."""

    name: str
    accuracy: tuple[float, float]
    spammer_share: float
    pass_rate: float = 0.02


QUALITIES: dict[str, CrowdQuality] = {
    q.name: q
    for q in (
        CrowdQuality("expert", (0.85, 0.95), 0.0),
        CrowdQuality("good", (0.70, 0.90), 0.10),
        CrowdQuality("mixed", (0.55, 0.85), 0.25),
        CrowdQuality("poor", (0.40, 0.70), 0.40),
    )
}


@dataclass
class Annotator:
    """A simulated person: id, role, confusion matrix (rows: true expression) and answering habits."""

    id: str
    role: str
    accuracy: float
    confusion: np.ndarray
    pass_rate: float = 0.0
    spam: str | None = None  # None, 'random' or 'constant'
    constant_word: str | None = None

    def answer(
        self, truth: int, rng: np.random.Generator, words: dict[str, tuple[str, ...]], labels: list[str]
    ) -> str:
        """A word (or PASS) for a clip whose true expression is ``labels[truth]``."""
        if rng.random() < self.pass_rate:
            return PASS
        if self.spam == "constant":
            return str(self.constant_word)
        if self.spam == "random":
            every = [w for lab in labels for w in words[lab]]
            return every[int(rng.integers(len(every)))]
        label = labels[int(rng.choice(len(labels), p=self.confusion[truth]))]
        return words[label][int(rng.integers(len(words[label])))]


def confusion_matrix(accuracy: float, labels: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """Row-stochastic: ``accuracy`` on the diagonal, the rest on other labels, confusable pairs favoured."""
    k = len(labels)
    base = np.ones((k, k))
    pos = {lab: i for i, lab in enumerate(labels)}
    for a, b in CONFUSABLE:
        if a in pos and b in pos:
            base[pos[a], pos[b]] = base[pos[b], pos[a]] = 4.0
    out = np.zeros((k, k))
    for i in range(k):
        weights = rng.dirichlet(5 * np.delete(base[i], i))
        out[i] = np.insert(weights * (1 - accuracy), i, accuracy)
    return out


def make_annotators(
    n: int,
    role: str,
    accuracy: tuple[float, float],
    spammer_share: float,
    pass_rate: float,
    rng: np.random.Generator,
) -> list[Annotator]:
    """``n`` annotators named ``<role>-01``...; ``round(spammer_share * n)`` of them spammers."""
    tax = load_taxonomy()
    labels = list(tax.expressions)
    n_spam = int(round(spammer_share * n))
    spam_slots = set(rng.choice(n, size=n_spam, replace=False).tolist()) if n_spam else set()
    out = []
    for i in range(n):
        acc = float(rng.uniform(*accuracy))
        person = Annotator(
            f"{role.lower()}-{i + 1:02d}", role, acc, confusion_matrix(acc, labels, rng), pass_rate
        )
        if i in spam_slots:
            person.spam = "random" if len(out) % 2 == 0 else "constant"
            lab = labels[int(rng.integers(len(labels)))]
            person.constant_word = tax.words[lab][0]
            person.accuracy = 1 / len(labels) if person.spam == "random" else float("nan")
        out.append(person)
    return out


@dataclass
class SimulationResult:
    """Everything the simulated workflow produced, as the manifests would hold it (no lineage)."""

    batch_id: str
    tasks: pd.DataFrame
    answers: pd.DataFrame
    checks: pd.DataFrame
    truth: pd.Series  # clip_id -> hidden expression
    annotators: pd.DataFrame  # id, role, accuracy, spam
    cfg: AnnotateConfig = field(default_factory=AnnotateConfig)


def simulate(
    n_clips: int = 300,
    quality: str | CrowdQuality = "mixed",
    seed: int = 0,
    cfg: AnnotateConfig | None = None,
    n_ca: int = 20,
    n_pr: int = 10,
    scenes: Sequence[str] = ("Interview", "Talkshow"),
    pr_accuracy: float = 0.95,
    fer_accuracy: float = 0.5,
    review_items: int = 10,
    review_agreement: float = 0.7,
    batch_id: str = "sim",
    selections: pd.DataFrame | None = None,
) -> SimulationResult:
    """Run the annotation workflow on ``n_clips`` synthetic clips with simulated people (module docstring).
    The paper's crew: 20 CAs and 10 PRs. With ``selections`` (rows of the ``selections`` manifest) the
    clips are those real selected clips instead (their hidden truth still drawn from the prior)."""
    crowd = QUALITIES[quality] if isinstance(quality, str) else quality
    cfg = cfg or AnnotateConfig(seed=seed)
    tax = load_taxonomy()
    for s in scenes:
        tax.scene(s)
    labels = list(tax.expressions)
    rng = np.random.default_rng(seed)
    prior = release_prior()
    p = np.array([prior[lab] for lab in labels], dtype=float)
    if selections is not None:
        selections = selections[selections["selected"].astype(bool)].reset_index(drop=True)
        if selections.empty:
            raise ValueError("no selected clips to annotate")
        n_clips = len(selections)
    truth_idx = rng.choice(len(labels), size=n_clips, p=p / p.sum())
    fer = Annotator("fer", "FER", fer_accuracy, confusion_matrix(fer_accuracy, labels, rng))
    if selections is None:
        selections = pd.DataFrame(
            {
                "clip_id": [f"simclip{i:05d}" for i in range(n_clips)],
                "scene": [scenes[i % len(scenes)] for i in range(n_clips)],
                "label": [labels[int(rng.choice(len(labels), p=fer.confusion[t]))] for t in truth_idx],
                "selected": True,
                "clip_path": None,
            }
        )
    clip_ids = selections["clip_id"].tolist()
    truth = pd.Series([labels[t] for t in truth_idx], index=pd.Index(clip_ids, name="clip_id"), name="truth")
    cas = make_annotators(n_ca, "CA", crowd.accuracy, crowd.spammer_share, crowd.pass_rate, rng)
    prs = make_annotators(n_pr, "PR", (pr_accuracy, pr_accuracy), 0.0, 0.0, rng)
    people = {a.id: a for a in cas + prs}
    tasks = package(selections, cfg, batch_id)
    sim = _Run(cfg, tax.words, labels, truth, tasks, people, rng, review_items, review_agreement)

    # 1. PRs label the gold items first (round-robin over PRs), on copy 0's task of each gold clip.
    gold_tasks = tasks[tasks["gold"] & (tasks["copy"] == 0)]
    for i, task in enumerate(gold_tasks.itertuples()):
        sim.answer(prs[i % len(prs)], [task], round_=1)
    gold = gold_labels(pd.DataFrame(sim.rows), tasks)

    # 2. Copies to CAs, each scored when complete, then moved by the workflow until done.
    assignment = assign_copies(tasks, [a.id for a in cas], seed)
    holders: dict[str, set[str]] = {}
    for ca in assignment.values():
        sim.load[ca] = sim.load.get(ca, 0) + 1
    for (group_id, copy), ca in sorted(assignment.items()):
        holders.setdefault(group_id, set()).add(ca)
        items = tasks[(tasks["group_id"] == group_id) & (tasks["copy"] == copy)].sort_values("position")
        round_, state = 1, sim.ca_round(people[ca], items, 1, gold)
        while (step := next_step(state, cfg.max_ca_rounds)) != "done":
            if step == "pr_review":
                reviewer = prs[int(rng.integers(len(prs)))]
                state = sim.review(reviewer, items, round_, state)
            elif step == "back_to_ca":
                other = reassign_copy(holders[group_id], [a.id for a in cas], seed + round_, sim.load)
                holders[group_id].add(other)
                sim.load[other] = sim.load.get(other, 0) + 1
                round_ += 1
                state = sim.ca_round(people[other], items, round_, gold)
            else:  # pr_relabel: a PR labels the copy's non-gold items; gold keeps its gold label
                relabeller = prs[int(rng.integers(len(prs)))]
                sim.answer(relabeller, list(items[~items["gold"]].itertuples()), round_)
                state = CopyState(state.verdict, state.round, state.pr_decision, relabelled=True)

    annotators = pd.DataFrame(
        [{"id": a.id, "role": a.role, "accuracy": a.accuracy, "spam": a.spam} for a in cas + prs]
    )
    answers = pd.DataFrame(sim.rows).astype({"copy": "int16", "round": "int16"})
    checks = pd.DataFrame(sim.checks).astype({"copy": "int16", "round": "int16"})
    return SimulationResult(batch_id, tasks, answers, checks, truth, annotators, cfg)


class _Run:
    """The mutable state of one simulation: answers and checks so far, CA load, a clock."""

    def __init__(self, cfg, words, labels, truth, tasks, people, rng, review_items, review_agreement) -> None:
        self.cfg, self.words, self.labels, self.truth = cfg, words, labels, truth
        self.review_items, self.review_agreement = review_items, review_agreement
        self.truth_index = {c: labels.index(t) for c, t in truth.items()}
        self.word_label = {w: e for e, ws in words.items() for w in ws}
        self.group_scene = tasks.drop_duplicates("group_id").set_index("group_id")["scene"].to_dict()
        self.people, self.rng = people, rng
        self.rows: list[dict] = []
        self.checks: list[dict] = []
        self.load: dict[str, int] = {}
        self.clock = _T0

    def answer(self, person: Annotator, items: list, round_: int) -> list[dict]:
        out = []
        for task in items:
            word = person.answer(self.truth_index[task.clip_id], self.rng, self.words, self.labels)
            spent = float(self.rng.lognormal(np.log(6.0), 0.4))
            self.clock += timedelta(seconds=spent)
            row = {
                "answer_id": f"{task.task_id}-{person.id}-r{round_}",
                "task_id": task.task_id,
                "batch_id": task.batch_id,
                "group_id": task.group_id,
                "copy": task.copy,
                "clip_id": task.clip_id,
                "scene": task.scene,
                "annotator_id": person.id,
                "role": person.role,
                "round": round_,
                "word": word,
                "label": self.word_label.get(word),
                "answered_at": self.clock,
                "time_spent_s": round(spent, 3),
                "source": "simulator",
            }
            out.append(row)
        self.rows += out
        return out

    def ca_round(self, ca: Annotator, items: pd.DataFrame, round_: int, gold: dict[str, str]) -> CopyState:
        answers = pd.DataFrame(self.answer(ca, list(items.itertuples()), round_))
        score = score_copy(answers, gold, self.cfg)
        first = items.iloc[0]
        feedback = (
            f"gold items: {score.n_gold_correct} of {score.n_gold_answered} answered correctly"
            if score.verdict == "UA"
            else None
        )
        self.checks.append(
            {
                "group_id": first["group_id"],
                "copy": int(first["copy"]),
                "round": round_,
                "scene": self.group_scene[first["group_id"]],
                "annotator_id": ca.id,
                **{k: getattr(score, k) for k in score.__dataclass_fields__},
                "pr_decision": None,
                "reviewer_id": None,
                "feedback": feedback,
            }
        )
        return CopyState(score.verdict, round_)

    def review(self, reviewer: Annotator, items: pd.DataFrame, round_: int, state: CopyState) -> CopyState:
        check = self.checks[-1]
        answers = [
            r for r in self.rows[::-1] if r["group_id"] == check["group_id"] and r["copy"] == check["copy"]
        ]
        answers = [r for r in answers if r["round"] == round_ and r["role"] == "CA" and r["label"]]
        picked = self.rng.permutation(len(answers))[: self.review_items]
        own = [
            self.word_label[w]
            if (
                w := reviewer.answer(
                    self.truth_index[answers[i]["clip_id"]], self.rng, self.words, self.labels
                )
            )
            != PASS
            else None
            for i in picked
        ]
        agree = sum(answers[i]["label"] == o for i, o in zip(picked, own, strict=True))
        accept = bool(len(picked)) and agree / len(picked) >= self.review_agreement
        check.update(
            pr_decision="accept" if accept else "reject",
            reviewer_id=reviewer.id,
            feedback=f"{len(picked) - agree} of {len(picked)} checked answers disagree with the reviewer",
        )
        return CopyState(state.verdict, state.round, check["pr_decision"])


def evaluate(result: SimulationResult, methods: Sequence[str] | None = None) -> pd.Series:
    """Accuracy against the hidden truth per method (default: every registered one), over every clip (a
    clip without a label counts as wrong), from the accepted answers; plus ``<method>_no_qc``: the same
    method on every first-round CA answer and the gold labels, without scoring or review."""
    methods = AGGREGATORS.names() if methods is None else methods
    out = {}
    first_round = result.checks.assign(verdict="AC", pr_decision="accept")
    first_round = first_round[first_round["round"] == 1]
    gold_tasks = set(result.tasks.loc[result.tasks["gold"], "task_id"])
    first_answers = result.answers[
        (result.answers["round"] == 1)
        & ((result.answers["role"] == "CA") | result.answers["task_id"].isin(gold_tasks))
    ]
    for method in methods:
        for name, answers, checks in (
            (method, result.answers, result.checks),
            (f"{method}_no_qc", first_answers, first_round),
        ):
            labels = aggregate(answers, result.tasks, checks, result.cfg, method).labels
            got = labels.set_index("clip_id")["label"].reindex(result.truth.index)
            out[name] = float((got == result.truth).mean())
    return pd.Series(out, name="accuracy")


def write_simulation(catalog: Catalog, result: SimulationResult, ctx: RunContext) -> list[PartRef]:
    """Write the simulation's ``annotation_tasks``, ``answers`` and ``group_checks`` into ``catalog``
    (one part per scene, ``run=<batch_id>``), as a real batch would be after export from the web app, and
    its hidden truth as ``simulated_truth``, so an aggregator can be scored without simulating again."""
    lineage = ctx.lineage(STAGE)
    scenes = result.tasks.drop_duplicates("clip_id").set_index("clip_id")["scene"]
    truth = pd.DataFrame(
        {
            "batch_id": result.batch_id,
            "clip_id": result.truth.index,
            "scene": scenes.reindex(result.truth.index).to_numpy(),
            "label": result.truth.to_numpy(),
        }
    )
    refs = []
    for manifest, frame in (
        ("annotation_tasks", result.tasks),
        ("answers", result.answers),
        ("group_checks", result.checks),
        ("simulated_truth", truth),
    ):
        for scene, rows in frame.groupby("scene", sort=True):
            refs.append(
                catalog.write(manifest, rows.assign(**lineage), scene=str(scene), run_id=result.batch_id)
            )
    return refs
