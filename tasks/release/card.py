"""The dataset card: what a data user, a reviewer or a person in the footage needs to know about a release.

Everything on the card is computed from the manifests (scenes, expressions, durations, splits, how clips
were chosen, annotation quality, sources and licences, lineage) for the clips of a release: every labelled
clip of a catalog, the clips of one labels run, or the clips an export shipped. The card is written as
markdown (``card.md``, with the figure ``card_expressions.png``) next to a Croissant JSON-LD file
(:mod:`tasks.release.croissant`) and the clips' provenance table (``provenance.parquet`` / ``.csv``).

    >>> card = build_card(Catalog(root / "catalog"), CardSettings(name="my-dataset"))  # doctest: +SKIP
    >>> write_card(card, "out/card")
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from data_catalog.formats.ferv39k_release import PROVENANCE_FILES, release_names, write_table_files
from data_catalog.formats.labels import LabelSet, current_labels
from data_catalog.io import Catalog, atomic_write_bytes
from data_catalog.provenance import provenance
from keywords.taxonomy import load_taxonomy
from tasks.report import Figure4Stats, duration_table, expression_table, figure4_stats
from tasks.reporting import markdown_table
from tasks.subsample import SubsampleConfig, subsample_summary

CARD_FILE = "card.md"
FIGURE_FILE = "card_expressions.png"
#: The pipeline's stages in order, as the ``stage`` lineage column names them.
STAGES = ("crawl", "segment", "face_filter", "refine", "subsample", "annotate")


@dataclass(frozen=True)
class CardSettings:
    """What the card says about how clips were chosen, from the configuration the run used: the face
    rules, the refiner, the prior and targets, and the hash the build-candidates run recorded."""

    rules: list[dict[str, Any]] = field(default_factory=list)
    refiner: dict[str, Any] = field(default_factory=dict)
    subsample: SubsampleConfig = field(default_factory=SubsampleConfig)
    build_config_hash: str | None = None
    name: str = "ferv-dataset"
    description: str = ""


@dataclass(frozen=True)
class Card:
    """The card's content: the clips (with labels and splits), their provenance and the statistics."""

    labels: pd.DataFrame  # clip_id, scene, label, split
    label_source: str
    provenance: pd.DataFrame  # data_catalog.provenance columns + path, label, split
    stats: Figure4Stats
    settings: CardSettings
    selection: dict[str, Any]
    annotation: dict[str, Any]
    sources: dict[str, Any]
    lineage: dict[str, Any]
    left_out: dict[str, int]
    short_scenes: list[str]

    @property
    def n_clips(self) -> int:
        return len(self.labels)


def card_labels(catalog: Catalog, labels_run: str | None = None) -> LabelSet:
    """The clips a card describes: the current labels of the catalog, or those one labels run wrote."""
    if labels_run is None:
        return current_labels(catalog)
    labels = catalog.read("labels", latest=True)
    mine = labels[labels["run_id"] == labels_run]
    if mine.empty:
        runs = sorted(set(labels["run_id"]))
        raise ValueError(
            f"labels run {labels_run!r} has no rows in {catalog.root}; labels runs: {', '.join(runs) or 'none'}"
        )
    return LabelSet(mine[["clip_id", "scene", "label", "split"]].reset_index(drop=True), "labels")


def _rows_of(catalog: Catalog, manifest: str, clip_ids: set[str]) -> pd.DataFrame:
    df = catalog.read(manifest, latest=True)
    return df[df["clip_id"].isin(clip_ids)] if "clip_id" in df.columns else df


def _selection(catalog: Catalog, clip_ids: set[str], settings: CardSettings) -> dict[str, Any]:
    """How the clips were chosen: candidate outcomes per rule, refiner, targets vs achieved, hashes."""
    clips = catalog.read("clips", latest=True)
    video_ids = set(clips.loc[clips["clip_id"].isin(clip_ids), "video_id"])
    cand = catalog.read("candidates", latest=True)
    cand = cand[cand["video_id"].isin(video_ids)]  # every candidate of the sources the release draws on
    outcomes = (
        cand.assign(outcome=cand["reason"].where(~cand["keep"].astype(bool), "kept").fillna("dropped"))
        .groupby("outcome")
        .size()
        .sort_values(ascending=False)
    )
    scores = _rows_of(catalog, "fer_scores", clip_ids)
    refiners = scores.groupby(["model_name", "device"]).size().reset_index(name="clips")
    summary = subsample_summary(catalog, settings.subsample)
    summary = summary[summary["scene"].isin(set(clips.loc[clips["clip_id"].isin(clip_ids), "scene"]))]
    # Per scene: the selection's size against its target (a short class is made up from others).
    per_scene = (
        summary.groupby("scene")[["target", "achieved"]].sum().reset_index()
        if len(summary)
        else pd.DataFrame(columns=["scene", "target", "achieved"])
    )
    per_scene["shortfall"] = (per_scene["target"] - per_scene["achieved"]).clip(lower=0)
    hashes = sorted(set(_rows_of(catalog, "clips", clip_ids)["config_hash"]))
    stages = [
        s
        for s in STAGES
        if any(
            s in set(_rows_of(catalog, m, clip_ids)["stage"])
            for m in ("clips", "candidates", "fer_scores", "selections", "labels")
        )
    ]
    return {
        "stages": stages,
        "candidates": {str(k): int(v) for k, v in outcomes.items()},
        "refiners": refiners,
        "targets": per_scene,
        "config_hashes": hashes,
    }


def _annotation(catalog: Catalog, clip_ids: set[str]) -> dict[str, Any]:
    """Workers by role, copies per group, gold share, verdict shares and agreement, for these clips."""
    from tasks.annotate.aggregation.agreement import fleiss_kappa, krippendorff_alpha

    tasks = _rows_of(catalog, "annotation_tasks", clip_ids)
    answers = _rows_of(catalog, "answers", clip_ids)
    if tasks.empty and answers.empty:
        return {}
    checks = catalog.read("group_checks")
    checks = checks[checks["group_id"].isin(set(tasks["group_id"]))]
    verdicts = checks["verdict"].value_counts(normalize=True)
    crowd = answers[answers["role"] == "CA"]
    frame = crowd.rename(columns={"clip_id": "task", "annotator_id": "worker"})
    frame = frame.drop_duplicates(["task", "worker"], keep="last")[["task", "worker", "label"]]
    return {
        "workers": {str(k): int(v) for k, v in answers.groupby("role")["annotator_id"].nunique().items()},
        "copies": int(tasks.groupby("group_id")["copy"].nunique().max()) if len(tasks) else 0,
        "gold_share": float(tasks["gold"].mean()) if len(tasks) else float("nan"),
        "n_answers": len(answers),
        "verdicts": {v: float(verdicts.get(v, 0.0)) for v in ("AC", "IP", "UA")},
        "n_checks": len(checks),
        "fleiss_kappa": fleiss_kappa(frame),
        "krippendorff_alpha": krippendorff_alpha(frame),
    }


def _sources(prov: pd.DataFrame) -> dict[str, Any]:
    """Sites, uploaders, licences as crawled and the upload date range of the clips' source videos."""
    known = prov.dropna(subset=["video_id"]).drop_duplicates("video_id")
    dates = known["upload_date"].dropna().astype(str)
    return {
        "n_videos": int(known["video_id"].nunique()),
        "sites": {str(k): int(v) for k, v in known["engine"].fillna("unknown").value_counts().items()},
        # Counts only: the card names no uploader (the provenance table does, per clip).
        "n_uploaders": int(known["uploader"].dropna().nunique()),
        "licences": {str(k): int(v) for k, v in prov["licence"].fillna("unknown").value_counts().items()},
        "upload_dates": (dates.min(), dates.max()) if len(dates) else None,
        "n_without_source": int(prov["source_url"].isna().sum()),
    }


def _lineage(catalog: Catalog, clip_ids: set[str]) -> dict[str, Any]:
    """Run ids per manifest and the tool versions any of those rows recorded."""
    runs: dict[str, list[str]] = {}
    versions: dict[str, set[str]] = {}
    latest = None
    for manifest in ("clips", "candidates", "fer_scores", "selections", "labels", "answers"):
        rows = _rows_of(catalog, manifest, clip_ids)
        if rows.empty:
            continue
        runs[manifest] = sorted(set(rows["run_id"]))
        newest = rows["created_at"].max()
        latest = newest if latest is None or newest > latest else latest
        for text in set(rows["tool_versions"]):
            for name, version in json.loads(text).items():
                versions.setdefault(name, set()).add(version)
    return {
        "runs": runs,
        "tool_versions": {k: sorted(v) for k, v in sorted(versions.items())},
        "latest": latest.date().isoformat() if latest is not None else None,
    }


def build_card(
    catalog: Catalog,
    settings: CardSettings | None = None,
    *,
    labels: LabelSet | None = None,
    clips: pd.DataFrame | None = None,
    left_out: Mapping[str, int] | None = None,
) -> Card:
    """The card of the clips in ``labels`` (default: the catalog's current labels), or of the rows of
    ``clips`` (an export's provenance: clip_id, scene, label, split, path). ``left_out`` counts clips an
    export left out, per reason."""
    settings = settings or CardSettings()
    labels = labels if labels is not None else current_labels(catalog)
    frame = labels.frame
    if clips is not None:
        frame = clips[["clip_id", "scene", "label", "split"]]
    if frame.empty:
        raise ValueError(f"{catalog.root}: no labelled clips to describe (no 'labels' or selected clips)")
    ids = set(frame["clip_id"])
    stats = figure4_stats(catalog, LabelSet(frame.reset_index(drop=True), labels.source))
    prov = clips if clips is not None else _release_provenance(catalog, frame)
    selection = _selection(catalog, ids, settings)
    targets = selection["targets"]
    short = sorted(targets.loc[targets["shortfall"] > 0, "scene"].astype(str))
    return Card(
        labels=frame.reset_index(drop=True),
        label_source=labels.source,
        provenance=prov,
        stats=stats,
        settings=settings,
        selection=selection,
        annotation=_annotation(catalog, ids),
        sources=_sources(prov),
        lineage=_lineage(catalog, ids),
        left_out=dict(left_out or {}),
        short_scenes=short,
    )


def _release_provenance(catalog: Catalog, frame: pd.DataFrame) -> pd.DataFrame:
    prov = provenance(catalog, frame["clip_id"]).drop(columns=["scene"])
    # The folder an export gives each clip (an imported clip keeps the release's own name).
    names = release_names(frame.reset_index(drop=True), catalog)
    table = frame.reset_index(drop=True)
    table = table.assign(path=table["scene"] + "/" + table["label"] + "/" + names)
    table = table[["clip_id", "scene", "path", "label", "split"]]
    return table.merge(prov, on="clip_id", how="left").sort_values("path").reset_index(drop=True)


# --- rendering ------------------------------------------------------------------------------------------


def _kv(items: Iterable[tuple[str, object]]) -> str:
    return "".join(f"- {k}: {v}\n" for k, v in items)


def _fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def card_markdown(card: Card) -> str:
    """The card as markdown (the figure is ``card_expressions.png`` next to it)."""
    tax = load_taxonomy()
    expr = expression_table(card.stats)
    counts = expr[["scene", "scenario", *card.stats.expressions.columns, "total"]]
    scenarios = counts.groupby("scenario")["total"].agg(["size", "sum"]).reset_index()
    scenarios.columns = ["scenario", "scenes", "clips"]
    scenarios.insert(1, "name", [tax.scenarios.get(s, s) for s in scenarios["scenario"]])
    split = card.labels["split"].fillna("not fixed by the labels").value_counts()
    s, sel, ann = card.sources, card.selection, card.annotation
    out = [f"# Dataset card: {card.settings.name}\n\n"]
    if card.settings.description:
        out.append(card.settings.description.strip() + "\n\n")
    out.append(
        f"{card.n_clips} clips in {counts['scene'].nunique()} scenes of {len(scenarios)} scenarios; "
        f"labels from `{card.label_source}`. Generated from the catalog's manifests; the machine-readable "
        "version is `croissant.json` (Croissant 1.0), the per-clip provenance `provenance.parquet` / "
        "`provenance.csv`.\n\n"
    )
    out += ["## Scenarios and scenes\n\n", markdown_table(scenarios), "\n"]
    out += ["## Expressions per scene\n\n", markdown_table(counts), f"\n![expressions]({FIGURE_FILE})\n\n"]
    out += ["## Durations (s)\n\n", markdown_table(duration_table(card.stats)), "\n"]
    out += ["## Splits and setups\n\n", _kv((str(k), int(v)) for k, v in split.items())]
    out.append(
        "\nSetups: All scenes, one per scene and one per scenario (paper, section 4.1), 80/20 per scene "
        "and expression where the labels carry no split.\n\n"
    )
    out += ["## How clips were chosen\n\n", f"Stages: {', '.join(sel['stages']) or 'none recorded'}.\n\n"]
    if sel["candidates"]:
        out.append("Candidate clips of the same source videos, by outcome (first failed rule):\n\n")
        out.append(_kv(sel["candidates"].items()) + "\n")
    if card.settings.rules:
        rules = ", ".join(f"`{r['name']}` ({r.get('threshold')})" for r in card.settings.rules)
        out.append(f"Face rules, in order (threshold): {rules}.\n\n")
    for r in sel["refiners"].itertuples():
        out.append(f"Refiner: `{r.model_name}` on {r.device} ({r.clips} clips).\n")
    if card.settings.refiner:
        out.append(f"Refiner settings: `{json.dumps(card.settings.refiner, sort_keys=True)}`.\n")
    prior = card.settings.subsample.prior
    out.append(f"\nPrior: `{prior if isinstance(prior, str) else json.dumps(prior)}`")
    out.append(f" (split `{card.settings.subsample.prior_split}`).\n\n")
    if len(sel["targets"]):
        out += ["Selected (2x the final size) vs target per scene:\n\n", markdown_table(sel["targets"]), "\n"]
    hashes = ", ".join(f"`{h}`" for h in sel["config_hashes"]) or "none recorded"
    out.append(f"Config hash of the runs that made the clips: {hashes}")
    if card.settings.build_config_hash:
        same = card.settings.build_config_hash in sel["config_hashes"]
        out.append(
            f"; the settings above (hash `{card.settings.build_config_hash}`) "
            + ("are those runs'." if same else "are NOT those runs': the rules shown may differ.")
        )
    out.append("\n\n## Annotation\n\n")
    if ann:
        out.append(
            _kv(
                [
                    ("annotators by role", ", ".join(f"{k} {v}" for k, v in ann["workers"].items())),
                    ("copies per group", ann["copies"]),
                    ("gold share", _fmt(ann["gold_share"])),
                    ("answers", ann["n_answers"]),
                    ("copy verdicts (AC / IP / UA)", " / ".join(_fmt(v) for v in ann["verdicts"].values())),
                    ("Fleiss' kappa (crowd)", _fmt(ann["fleiss_kappa"])),
                    ("Krippendorff's alpha (crowd)", _fmt(ann["krippendorff_alpha"])),
                ]
            )
        )
    else:
        out.append(f"None recorded: the labels are `{card.label_source}`.\n")
    dates = s["upload_dates"]
    out += ["\n## Sources\n\n"]
    out.append(
        _kv(
            [
                ("source videos", s["n_videos"]),
                ("sites", ", ".join(f"{k} {v}" for k, v in s["sites"].items()) or "none"),
                ("uploaders", s["n_uploaders"]),
                ("upload dates", f"{dates[0]} to {dates[1]}" if dates else "unknown"),
                ("clips without source metadata", s["n_without_source"]),
            ]
        )
    )
    out += ["\nLicences as crawled (clips):\n\n", _kv(s["licences"].items())]
    out.append("\n## Left out of this release\n\n")
    out.append(_kv(card.left_out.items()) if card.left_out else "Nothing.\n")
    out.append("\n## Known limits\n\n")
    refiners = ", ".join(f"`{m}`" for m in sel["refiners"]["model_name"]) or "none recorded"
    out.append(
        f"- Clips were pre-selected by a FER refiner ({refiners}) so that predicted expressions follow the "
        "prior: the distribution reflects that model's biases as much as the footage.\n"
    )
    out.append(f"- Scenes short of their target: {', '.join(card.short_scenes) or 'none'}.\n")
    if s["n_without_source"]:
        out.append(f"- {s['n_without_source']} clips have no source metadata (imported or local).\n")
    out.append("\n## Lineage\n\n")
    out.append(_kv((m, ", ".join(f"`{r}`" for r in runs)) for m, runs in card.lineage["runs"].items()))
    tools = ", ".join(f"{k} {'/'.join(v)}" for k, v in card.lineage["tool_versions"].items())
    out.append(f"\nTool versions: {tools or 'none recorded'}.\n")
    return "".join(out)


def plot_card_figure(card: Card, path: Path) -> None:
    """The expressions-per-scene figure (stacked bars, as the report's Figure 4 left)."""
    from tasks.report import _plot_expressions

    _plot_expressions(card.stats, path)


@dataclass(frozen=True)
class CardFiles:
    markdown: Path
    figure: Path
    croissant: Path
    provenance: list[Path]


def write_card(card: Card, out_dir: str | Path, *, write_provenance: bool = True) -> CardFiles:
    """Write ``card.md``, its figure, ``croissant.json`` and (unless an export already did)
    the provenance table into ``out_dir``, each atomically."""
    from tasks.release.croissant import CROISSANT_FILE, croissant_jsonld

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prov_files = [out / name for name in PROVENANCE_FILES]
    if write_provenance:
        write_table_files(card.provenance, *prov_files)
    figure = out / FIGURE_FILE
    tmp = out / f".{FIGURE_FILE}.tmp.png"
    plot_card_figure(card, tmp)
    tmp.replace(figure)
    atomic_write_bytes(out / CARD_FILE, card_markdown(card).encode())
    doc = croissant_jsonld(card, prov_files[1])
    atomic_write_bytes(out / CROISSANT_FILE, json.dumps(doc, indent=2).encode())
    return CardFiles(out / CARD_FILE, figure, out / CROISSANT_FILE, prov_files)
