"""The scene vocabulary and expression classes, loaded from YAML and validated (paper, section 3.2).

    >>> from keywords.taxonomy import load_taxonomy
    >>> tax = load_taxonomy()
    >>> tax.scene("Terror").scenario
    'AI'
    >>> tax.word_to_expression["horror"]
    'Fear'

A user extends the vocabulary by editing ``scenes.yaml`` / ``emotions.yaml`` or by pointing
``load_taxonomy`` at files of their own; nothing in code lists scenes or words.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class TaxonomyError(ValueError):
    """A taxonomy file is missing, malformed or inconsistent; the message names the file."""


class UnknownSceneError(ValueError):
    """A scene name that the taxonomy does not define; the message lists the valid ones."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SceneSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    keywords: dict[str, list[str]]
    description: str = ""  # one line, the scene's introduction on the labelling page
    engines: list[str] | None = None

    @field_validator("keywords")
    @classmethod
    def _non_empty(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not value or not any(value.values()):
            raise ValueError("a scene needs at least one keyword")
        for lang, words in value.items():
            if any(not w.strip() for w in words):
                raise ValueError(f"empty keyword in language {lang!r}")
        return value


class ScenarioSpec(_Strict):
    code: str = Field(pattern=r"^[A-Z]+$")
    name: str
    scenes: list[SceneSpec] = Field(min_length=1)


class ScenesFile(_Strict):
    version: int
    scenarios: list[ScenarioSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ScenesFile:
        names = [s.name for sc in self.scenarios for s in sc.scenes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"scene names must be unique; repeated: {', '.join(dupes)}")
        codes = [sc.code for sc in self.scenarios]
        if len(set(codes)) != len(codes):
            raise ValueError("scenario codes must be unique")
        return self


class ExpressionSpec(_Strict):
    name: str
    index: int = Field(ge=0)
    description: str


class EmotionsFile(_Strict):
    version: int
    expressions: list[ExpressionSpec] = Field(min_length=2)
    words: dict[str, list[str]]

    @model_validator(mode="after")
    def _consistent(self) -> EmotionsFile:
        names = [e.name for e in self.expressions]
        if sorted(e.index for e in self.expressions) != list(range(len(names))):
            raise ValueError("expression indices must be 0..n-1, each once")
        unknown = sorted(set(self.words) - set(names))
        if unknown:
            raise ValueError(f"words listed under unknown expressions {unknown}; expressions are {names}")
        flat = [w for ws in self.words.values() for w in ws]
        dupes = sorted({w for w in flat if flat.count(w) > 1})
        if dupes:
            raise ValueError(f"each fine-grained word maps to one expression; repeated: {dupes}")
        return self


@dataclass(frozen=True)
class Scene:
    name: str
    scenario: str
    scenario_name: str
    keywords: dict[str, tuple[str, ...]]
    engines: tuple[str, ...] | None
    description: str = ""

    def all_keywords(self, languages: list[str] | None = None) -> list[str]:
        """Keywords in the given languages (all when None), in file order."""
        langs = languages or list(self.keywords)
        return [k for lang in langs for k in self.keywords.get(lang, ())]


@dataclass(frozen=True)
class Taxonomy:
    scenes: tuple[Scene, ...]
    scenarios: dict[str, str]  # code -> display name
    expressions: tuple[str, ...]  # in label-index order
    expression_descriptions: dict[str, str]
    words: dict[str, tuple[str, ...]]  # expression -> fine-grained words

    @property
    def scene_names(self) -> list[str]:
        return [s.name for s in self.scenes]

    @property
    def word_to_expression(self) -> dict[str, str]:
        return {w: e for e, ws in self.words.items() for w in ws}

    def scene(self, name: str) -> Scene:
        for s in self.scenes:
            if s.name == name:
                return s
        raise UnknownSceneError(f"unknown scene {name!r}; valid scenes: {', '.join(self.scene_names)}")

    def scenes_of(self, scenario: str) -> list[Scene]:
        if scenario not in self.scenarios:
            raise UnknownSceneError(
                f"unknown scenario {scenario!r}; valid scenarios: {', '.join(self.scenarios)}"
            )
        return [s for s in self.scenes if s.scenario == scenario]

    def expression_index(self, name: str) -> int:
        try:
            return self.expressions.index(name)
        except ValueError:
            raise ValueError(
                f"unknown expression {name!r}; valid expressions: {', '.join(self.expressions)}"
            ) from None


def _read_yaml(path: Path | None, default_name: str) -> tuple[dict, str]:
    if path is None:
        ref = resources.files("keywords") / default_name
        return yaml.safe_load(ref.read_text(encoding="utf-8")), f"keywords/{default_name}"
    path = Path(path)
    if not path.is_file():
        raise TaxonomyError(f"{path}: taxonomy file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{path}: not valid YAML: {exc}") from exc
    return data, str(path)


def _validate(model: type[BaseModel], data: object, origin: str) -> BaseModel:
    if not isinstance(data, dict):
        raise TaxonomyError(f"{origin}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise TaxonomyError(f"{origin}: {problems}") from None


@functools.lru_cache(maxsize=8)
def load_taxonomy(scenes_path: Path | None = None, emotions_path: Path | None = None) -> Taxonomy:
    """Load and validate the taxonomy; the packaged files unless paths are given."""
    raw_scenes, scenes_origin = _read_yaml(scenes_path, "scenes.yaml")
    raw_emotions, emotions_origin = _read_yaml(emotions_path, "emotions.yaml")
    sf = _validate(ScenesFile, raw_scenes, scenes_origin)
    ef = _validate(EmotionsFile, raw_emotions, emotions_origin)
    scenes = tuple(
        Scene(
            name=s.name,
            scenario=sc.code,
            scenario_name=sc.name,
            keywords={lang: tuple(ws) for lang, ws in s.keywords.items()},
            engines=tuple(s.engines) if s.engines else None,
            description=s.description,
        )
        for sc in sf.scenarios
        for s in sc.scenes
    )
    ordered = sorted(ef.expressions, key=lambda e: e.index)
    return Taxonomy(
        scenes=scenes,
        scenarios={sc.code: sc.name for sc in sf.scenarios},
        expressions=tuple(e.name for e in ordered),
        expression_descriptions={e.name: e.description for e in ordered},
        words={e: tuple(ws) for e, ws in ef.words.items()},
    )
