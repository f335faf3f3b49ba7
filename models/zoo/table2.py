"""The 16 baselines of the paper's Table 2, in its order, with the model-zoo README's parameter counts.

A plain table (no torch) so reports and commands can list the rows without building a network.
``readme_params`` is the "# of Parameters" column of the FERV39k model-zoo README, in millions; the README
does not say at what input those were counted, and several cannot be reproduced from the paper's text
(R50 124M against R50-LSTM 57M), so ``ferv zoo list`` shows ours next to theirs rather than asserting them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["2D", "2D+LSTM", "3D", "two-stream"]


@dataclass(frozen=True)
class ZooEntry:
    """One row of Table 2: our registry name, the paper's name, the family, the README's count (M)."""

    name: str
    paper_name: str
    family: Family
    readme_params: float | None


TABLE2: tuple[ZooEntry, ...] = (
    ZooEntry("r18", "R18", "2D", 17.0),
    ZooEntry("r50", "R50", "2D", 124.0),
    ZooEntry("vgg13", "VGG13", "2D", 128.0),
    ZooEntry("vgg16", "VGG16", "2D", 134.0),
    ZooEntry("r18-lstm", "R18-LSTM", "2D+LSTM", 132.0),
    ZooEntry("r50-lstm", "R50-LSTM", "2D+LSTM", 57.0),
    ZooEntry("vgg13-lstm", "VGG13-LSTM", "2D+LSTM", 133.0),
    ZooEntry("vgg16-lstm", "VGG16-LSTM", "2D+LSTM", 138.0),
    ZooEntry("c3d", "C3D", "3D", 78.0),
    ZooEntry("i3d", "I3D", "3D", 12.0),
    ZooEntry("r3d-18", "3D-R18", "3D", 33.0),
    ZooEntry("ts-c3d", "Two-stream C3D", "two-stream", 97.0),
    ZooEntry("ts-i3d", "Two-stream I3D", "two-stream", 26.0),
    ZooEntry("ts-r3d-18", "Two-stream 3D-R18", "two-stream", 67.0),
    ZooEntry("ts-r18-lstm", "Two-stream R18-LSTM", "two-stream", 27.0),
    ZooEntry("ts-vgg13-lstm", "Two-stream VGG13-LSTM", "two-stream", 144.0),
)


def entry(name: str) -> ZooEntry:
    """The Table 2 row of registry name ``name``."""
    for row in TABLE2:
        if row.name == name:
            return row
    raise ValueError(f"{name!r} is not a Table 2 baseline; rows: {', '.join(r.name for r in TABLE2)}")
