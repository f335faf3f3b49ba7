"""Lineage: which run, configuration, stage and tool versions produced a manifest row.

Every manifest row carries the columns of :data:`LINEAGE_FIELDS`, filled by :meth:`RunContext.lineage`.

    >>> ctx = RunContext.create(config={"segment": {"seed": 0}})
    >>> row = ctx.lineage("segment")
    >>> sorted(row) == sorted(f.name for f in LINEAGE_FIELDS)
    True
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata

import pyarrow as pa

LINEAGE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("config_hash", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("tool_versions", pa.string(), nullable=False),  # JSON object: package -> version
    pa.field("model_version", pa.string()),
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
)

# Packages whose versions change what a stage produces; recorded with every row.
TRACKED_PACKAGES = (
    "ferv-builder",
    "yt-dlp",
    "av",
    "imageio-ffmpeg",
    "insightface",
    "onnxruntime-gpu",
    "onnxruntime",
    "torch",
    "torchvision",
    "prefect",
)


def tool_versions() -> dict[str, str]:
    """Installed versions of :data:`TRACKED_PACKAGES` (absent packages are left out)."""
    found = {}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def config_hash(config: object) -> str:
    """A short, stable hash of a JSON-able configuration (key order does not matter)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def new_run_id(prefix: str = "run") -> str:
    """A sortable, unique run id such as ``run-20261123T101500-3f9a``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{prefix}-{stamp}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class RunContext:
    """Who is writing: the run id, the resolved config's hash and the tool versions."""

    run_id: str
    config_hash: str
    versions: dict[str, str] = field(default_factory=tool_versions)

    @classmethod
    def create(cls, config: object, run_id: str | None = None) -> RunContext:
        return cls(run_id=run_id or new_run_id(), config_hash=config_hash(config))

    def lineage(self, stage: str, model_version: str | None = None) -> dict[str, object]:
        """The lineage columns for rows written by ``stage`` now."""
        return {
            "run_id": self.run_id,
            "config_hash": self.config_hash,
            "stage": stage,
            "tool_versions": json.dumps(self.versions, sort_keys=True),
            "model_version": model_version,
            "created_at": datetime.now(timezone.utc),
        }
