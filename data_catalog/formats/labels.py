"""The expression label of each clip, from the best source the catalog holds.

A ``labels`` manifest (human annotation, or an imported release) wins; before annotation the predicted
labels of the clips the subsampling stage selected stand in (paper, section 3.2: the candidates sent to
annotators). Reports and exports read labels through here so they agree on the source.

    >>> labels = current_labels(Catalog(root))                      # doctest: +SKIP
    >>> labels.source, labels.frame.columns.tolist()
    ('labels', ['clip_id', 'scene', 'label', 'split'])
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from data_catalog.io import Catalog

LABEL_COLUMNS = ["clip_id", "scene", "label", "split"]


@dataclass(frozen=True)
class LabelSet:
    """Labels per clip (``LABEL_COLUMNS``; ``split`` is null where the source has none) and their source:
    ``'labels'``, ``'selections'`` or ``'none'``."""

    frame: pd.DataFrame
    source: str


def current_labels(catalog: Catalog) -> LabelSet:
    """The ``labels`` manifest when it has rows, else the selected clips' predicted labels, else empty."""
    labels = catalog.read("labels", latest=True)
    if len(labels):
        return LabelSet(labels[LABEL_COLUMNS].reset_index(drop=True), "labels")
    sel = catalog.read("selections", latest=True)
    sel = sel[sel["selected"].astype(bool)]
    if len(sel):
        frame = sel[["clip_id", "scene", "label"]].assign(split=None).reset_index(drop=True)
        return LabelSet(frame, "selections")
    return LabelSet(pd.DataFrame({c: pd.Series(dtype=object) for c in LABEL_COLUMNS}), "none")
