"""The labelling page's words: the expressions and their fine-grained words, PASS, and scene introductions."""

from __future__ import annotations

from functools import lru_cache

from keywords.taxonomy import UnknownSceneError, load_taxonomy
from tasks.annotate.recapture import PASS
from tasks.annotate.web.service.errors import Invalid
from tasks.annotate.web.service.views import ExpressionChoice, SceneIntro, Vocabulary, WordChoice


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """The page's choices: the 7 expressions (taxonomy order) with their words, each word with a
    keyboard shortcut (a-z, then digits), and PASS on '0'."""
    tax = load_taxonomy()
    keys = iter("abcdefghijklmnopqrstuvwxyz123456789")
    expressions = [
        ExpressionChoice(
            name=e,
            description=tax.expression_descriptions[e],
            words=[WordChoice(word=w, key=next(keys, None)) for w in tax.words.get(e, ())],
        )
        for e in tax.expressions
    ]
    return Vocabulary(expressions=expressions, pass_=WordChoice(word=PASS, key="0"))


def word_label(word: str) -> str | None:
    """The expression of a fine-grained word (None for PASS); :class:`Invalid` for any other word."""
    if word == PASS:
        return None
    label = load_taxonomy().word_to_expression.get(word)
    if label is None:
        words = sorted(load_taxonomy().word_to_expression)
        raise Invalid(f"word {word!r} is not one of the {len(words)} words or PASS: {', '.join(words)}")
    return label


def scene_intro(scene: str) -> SceneIntro:
    try:
        s = load_taxonomy().scene(scene)
    except UnknownSceneError:
        return SceneIntro(scene=scene, scenario="", description="")
    return SceneIntro(scene=s.name, scenario=s.scenario_name, description=s.description)
