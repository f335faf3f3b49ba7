"""The pipeline configuration: one section per stage, layered, validated, hashed.

Layers, later wins: code defaults < a preset (``flows/configs/<name>.yaml``) < a user file < overrides
(``section.key=value`` strings, as the CLI's ``--set`` passes them). Unknown sections or keys are errors that
name the offending key and the file it came from. The resolved config's hash goes into every manifest row.

    >>> cfg = load_config(preset="demo", overrides=["storage.root=/tmp/ferv"])   # doctest: +SKIP
    >>> cfg.storage.catalog_dir
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from data_catalog.assets import AssetsConfig
from data_catalog.cache import default_cache_dir
from data_catalog.lineage import config_hash
from data_catalog.section import Section
from tasks.annotate.config import AnnotateConfig
from tasks.benchmark.config import BenchmarkConfig
from tasks.crawl.config import CrawlConfig
from tasks.face_filter.config import FaceFilterConfig
from tasks.refine import RefineConfig
from tasks.release.config import ReleaseConfig
from tasks.segment import SegmentConfig
from tasks.subsample import SubsampleConfig


class ConfigError(ValueError):
    """A malformed or invalid configuration; the message names the source and the key."""


class StorageConfig(Section):
    """Where a project's data lives. Everything but the asset cache sits under ``root``."""

    root: Path = Path("work")
    cache_dir: Path = Field(default_factory=default_cache_dir)

    @property
    def catalog_dir(self) -> Path:
        return self.root / "catalog"

    @property
    def media_dir(self) -> Path:
        """Downloaded source videos."""
        return self.root / "media"

    @property
    def crops_dir(self) -> Path:
        """Face crops and scene frames, one JPEG folder per clip."""
        return self.root / "crops"

    @property
    def clips_dir(self) -> Path:
        """Encoded clip files (mp4) for the clips that reach annotation."""
        return self.root / "clips"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"


class DistributionConfig(Section):
    """Where and how wide the heavy stages run (the flows' business, never a task's)."""

    shard_size: int = Field(default=8, ge=1, description="videos per segment + face-filter task run")
    workers: int = Field(default=1, ge=1, description="shards processed at once (threads, or Dask workers)")
    runner: Literal["threads", "dask"] = Field(
        default="threads", description="threads in the flow's process, or Dask (prefect-dask)"
    )
    dask_address: str | None = Field(
        default=None, description="an existing Dask scheduler (tcp://host:8786); None = a local cluster"
    )
    gpu_resource: str | None = Field(
        default=None,
        description="Dask worker resource the GPU stages (FER refinement) require, e.g. 'GPU'; "
        "only workers started with --resources GPU=1 take them. None = any worker",
    )

    @model_validator(mode="after")
    def _dask_only(self) -> DistributionConfig:
        if self.runner != "dask" and (self.dask_address or self.gpu_resource):
            raise ValueError("distribution.dask_address and gpu_resource need distribution.runner=dask")
        return self


class ServiceConfig(Section):
    """How the flows run as a service (flows/deployments.py): work pools, per-scene re-crawl schedules,
    and the event that starts the benchmark when labels land."""

    cpu_pool: str = Field(default="ferv-cpu", description="process work pool for CPU work")
    gpu_pool: str = Field(default="ferv-gpu", description="process work pool for GPU work (training)")
    timezone: str = Field(default="UTC", description="time zone of the re-crawl schedules")
    recrawl: dict[str, str] = Field(
        default_factory=dict, description="scene -> cron of its scheduled re-crawl (incremental)"
    )
    labels_event: str = Field(default="ferv.labels.landed", description="event the benchmark listens for")

    @field_validator("recrawl")
    @classmethod
    def _scenes_and_crons(cls, value: dict[str, str]) -> dict[str, str]:
        from flows.cron import cron_error  # pure Python: loading the config imports no Prefect
        from keywords.taxonomy import load_taxonomy

        taxonomy = load_taxonomy()
        for scene, cron in value.items():
            taxonomy.scene(scene)  # unknown scene: an error listing the valid ones
            problem = cron_error(cron)
            if problem:
                raise ValueError(
                    f"service.recrawl[{scene!r}]: {cron!r} is not a valid cron expression ({problem})"
                )
        return value


class PipelineConfig(Section):
    """The whole configuration. Stages add their section here."""

    storage: StorageConfig = Field(default_factory=StorageConfig)
    assets: AssetsConfig = Field(default_factory=AssetsConfig)
    crawl: CrawlConfig = Field(default_factory=CrawlConfig)
    refine: RefineConfig = Field(default_factory=RefineConfig)
    segment: SegmentConfig = Field(default_factory=SegmentConfig)
    face_filter: FaceFilterConfig = Field(default_factory=FaceFilterConfig)
    subsample: SubsampleConfig = Field(default_factory=SubsampleConfig)
    annotate: AnnotateConfig = Field(default_factory=AnnotateConfig)
    benchmark: BenchmarkConfig = Field(default_factory=BenchmarkConfig)
    release: ReleaseConfig = Field(default_factory=ReleaseConfig)
    distribution: DistributionConfig = Field(default_factory=DistributionConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)

    def lineage_json(self, sections: Iterable[str] | None = None) -> dict[str, Any]:
        """The config that determines results, as JSON: ``sections`` (default: all but where and how the
        work runs, :data:`PLACEMENT`). Hashed into every row's lineage."""
        names = (
            list(sections)
            if sections is not None
            else [n for n in type(self).model_fields if n not in PLACEMENT]
        )
        unknown = sorted(set(names) - set(type(self).model_fields))
        if unknown:
            raise ValueError(f"unknown config sections {unknown}; known: {list(type(self).model_fields)}")
        return self.model_dump(mode="json", include=set(names))

    def hash(self, sections: Iterable[str] | None = None) -> str:
        return config_hash(self.lineage_json(sections))


#: Sections that say where or how work runs, not what it computes: not part of the lineage hash.
PLACEMENT = frozenset({"storage", "assets", "distribution", "service"})


def list_presets() -> list[str]:
    root = resources.files("flows") / "configs"
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def _load_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections, got {type(data).__name__}")
    return data


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8); expected a YAML config"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict[str, Any]:
    """``'segment.seed=3'`` -> ``{'segment': {'seed': 3}}``; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    dotted, raw = text.split("=", 1)
    parts = [p for p in dotted.strip().split(".") if p]
    if len(parts) < 2:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    value: Any = _load_yaml(f"v: {raw}", f"override {text!r}")["v"] if raw.strip() else ""
    for part in reversed(parts):
        value = {part: value}
    return value


def load_config(
    preset: str | None = None,
    user_file: str | os.PathLike | None = None,
    overrides: list[str] | None = None,
) -> PipelineConfig:
    """Resolve the layered configuration (see module docstring)."""
    layers: list[tuple[str, dict[str, Any]]] = []
    if preset:
        ref = resources.files("flows") / "configs" / f"{preset}.yaml"
        if not ref.is_file():
            raise ConfigError(f"unknown preset {preset!r}; presets: {', '.join(list_presets())}")
        layers.append((f"preset {preset}", _load_yaml(ref.read_text(encoding="utf-8"), f"preset {preset}")))
    if user_file:
        path = Path(user_file)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        layers.append((str(path), _load_yaml(_read_text(path), str(path))))
    for text in overrides or []:
        layers.append((f"override {text!r}", parse_override(text)))
    merged: dict[str, Any] = {}
    for origin, layer in layers:
        try:
            PipelineConfig.model_validate(_merge(merged, layer))  # locate errors layer by layer
        except ValidationError as exc:
            raise ConfigError(f"{origin}: {_describe(exc)}") from None
        merged = _merge(merged, layer)
    return PipelineConfig.model_validate(merged)


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
