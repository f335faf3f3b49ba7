"""One pyarrow schema per manifest: the typed contract between pipeline stages.

A stage reads manifests and writes one; it never reaches into another stage's internals. Every row also
carries the lineage columns (:data:`data_catalog.lineage.LINEAGE_FIELDS`). Dropped or failed items stay
in their manifest with a ``status``/``keep`` flag and a snake_case ``reason``.

    >>> MANIFESTS["videos"].key
    ('video_id',)
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from data_catalog.lineage import LINEAGE_FIELDS

#: Status values of a ``videos`` row, in the order a video passes through them.
VIDEO_STATUSES = ("discovered", "not_selected", "selected", "downloaded", "failed")
#: Status values of a ``media`` row (the segment stage's probe of a downloaded file).
MEDIA_STATUSES = ("ok", "failed")

#: Why an input video cannot be used: the one ``reason`` vocabulary for unreadable media, shared by the
#: crawl's check of a download (a failed ``videos`` row) and the segment stage's probe (a ``media`` row),
#: so the same bad file gets the same reason in both manifests. The last three are reasons of an ``ok``
#: ``media`` row: the video reads, but yields no clip or stops decoding part-way. Besides these, a failed
#: ``media`` row may say ``not_downloaded`` (the video has no local file) or ``face_filter_error``
#: (detection failed on it).
MEDIA_REASONS = {
    "missing_file": "no such file (or a broken symlink)",
    "not_a_file": "a directory, FIFO, socket, device or symlink loop where a video file was expected",
    "empty_file": "the file is empty (0 bytes)",
    "not_a_video": "not a media file, or a still image",
    "truncated": "a known container cut short",
    "no_video_stream": "a media file without a video stream (audio only)",
    "undecodable": "the video stream does not decode",
    "no_frames": "the video stream holds no frames",
    "too_short": "readable, but shorter than one clip (segment.min_len)",
    "no_clip_fits": "readable, but shot cuts leave no span as long as one clip",
    "decode_error": "decoding stopped part-way; the clips before the fault are kept",
}


@dataclass(frozen=True)
class Manifest:
    """A named manifest: its schema (lineage included), key columns and required (non-null) columns."""

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    description: str

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema if not f.nullable)


def _manifest(name: str, key: tuple[str, ...], description: str, *fields: pa.Field) -> Manifest:
    return Manifest(name, pa.schema([*fields, *LINEAGE_FIELDS]), key, description)


def _req(name: str, type_: pa.DataType) -> pa.Field:
    return pa.field(name, type_, nullable=False)


def _opt(name: str, type_: pa.DataType) -> pa.Field:
    return pa.field(name, type_, nullable=True)


VIDEOS = _manifest(
    "videos",
    ("video_id",),
    "Stage 1 (crawl): one row per discovered video, its metadata, selection and download outcome.",
    _req("video_id", pa.string()),  # stable id: '<engine>-<source_id>', filesystem-safe
    _req("engine", pa.string()),  # yt-dlp extractor key, or 'local' / 'url'
    _req("source_id", pa.string()),  # the site's own id
    _req("url", pa.string()),
    _opt("title", pa.string()),
    _opt("uploader", pa.string()),
    _opt("duration", pa.float64()),  # seconds
    _opt("upload_date", pa.string()),  # YYYYMMDD as sites report it
    _opt("license", pa.string()),
    _opt("keyword", pa.string()),  # the search keyword (or source spec) that found it
    _req("scene", pa.string()),
    _req("scenario", pa.string()),
    _req("status", pa.string()),  # one of VIDEO_STATUSES
    # snake_case, why not_selected or failed, e.g. 'over_scene_target', 'http_404'; a download that is
    # not a usable video: one of MEDIA_REASONS
    _opt("reason", pa.string()),
    _opt("error", pa.string()),
    _opt("local_path", pa.string()),
    _opt("bytes", pa.int64()),
    _opt("sha256", pa.string()),
    _req("selected", pa.bool_()),
    _req("crawl_run_id", pa.string()),
)

MEDIA = _manifest(
    "media",
    ("video_id",),
    "Stage 2 (segment): the probe of each downloaded video, or why it could not be read.",
    _req("video_id", pa.string()),
    _req("scene", pa.string()),
    _req("status", pa.string()),  # one of MEDIA_STATUSES
    _opt("reason", pa.string()),  # one of MEDIA_REASONS, or 'not_downloaded' / 'face_filter_error'
    _opt("error", pa.string()),
    _opt("path", pa.string()),
    _opt("width", pa.int32()),  # after rotation
    _opt("height", pa.int32()),
    _opt("rotation", pa.int16()),
    _opt("fps", pa.float64()),
    _opt("variable_frame_rate", pa.bool_()),
    _opt("n_frames", pa.int64()),
    _opt("duration", pa.float64()),
    _opt("n_shots", pa.int32()),
    _opt("n_clips", pa.int32()),
)

CLIPS = _manifest(
    "clips",
    ("clip_id",),
    "Stage 2 (segment): random 0.5-4 s spans; a clip is the frames with timestamps in [start, end).",
    _req("clip_id", pa.string()),  # '<video_id>_<start_frame>-<end_frame>'
    _req("video_id", pa.string()),
    _req("scene", pa.string()),
    _req("start_time", pa.float64()),
    _req("end_time", pa.float64()),
    _req("start_frame", pa.int64()),  # inclusive
    _req("end_frame", pa.int64()),  # exclusive
    _req("n_frames", pa.int32()),
    _req("fps", pa.float64()),
    _req("duration", pa.float64()),
    _opt("shot_id", pa.int32()),
    _opt("clip_path", pa.string()),  # the encoded mp4, once materialised (stage 4 selections only)
    _opt("name", pa.string()),  # the clip's folder in a release layout (an imported clip keeps the release's)
)

FACES = _manifest(
    "faces",
    ("clip_id", "frame_index", "face_index"),
    "Stage 3 (face filter): every detection on every sampled frame.",
    _req("clip_id", pa.string()),
    _req("frame_index", pa.int64()),  # index in the source video
    _req("time", pa.float64()),
    _req("face_index", pa.int16()),  # 0 = largest face of the frame
    _req("x1", pa.float32()),
    _req("y1", pa.float32()),
    _req("x2", pa.float32()),
    _req("y2", pa.float32()),
    _req("score", pa.float32()),
    _opt("landmarks", pa.list_(pa.float32(), 10)),  # 5 (x, y) points
    _req("frame_width", pa.int32()),
    _req("frame_height", pa.int32()),
)

CANDIDATES = _manifest(
    "candidates",
    ("clip_id",),
    "Stage 3 (face filter): per clip, kept or not, the first rule it failed, all measured values, rank.",
    _req("clip_id", pa.string()),
    _req("video_id", pa.string()),
    _req("scene", pa.string()),
    _req("keep", pa.bool_()),
    _opt("reason", pa.string()),  # first failed rule, or 'over_budget'; null when kept
    _opt("value", pa.float64()),  # the measured value that failed the rule
    _req("measures", pa.map_(pa.string(), pa.float64())),
    _opt("quality", pa.float64()),
    _opt("rank", pa.int32()),  # 1 = best face quality within the scene
    _opt("face_dir", pa.string()),  # 224x224 face crops, one JPEG per frame
    _opt("scene_dir", pa.string()),  # 336x504 scene frames, one JPEG per frame
    _opt("n_crops", pa.int32()),
)

FER_SCORES = _manifest(
    "fer_scores",
    ("clip_id",),
    "Stage 4 (refine): the FER refiner's 7-class probabilities per kept clip.",
    _req("clip_id", pa.string()),
    _req("scene", pa.string()),
    _req("status", pa.string()),  # 'ok', or 'failed' with a reason and null scores
    _opt("reason", pa.string()),  # snake_case, e.g. 'face_dir_missing', 'no_face_crops', 'unreadable_crop'
    _opt("probs", pa.list_(pa.float32())),  # in keywords/emotions.yaml index order
    _opt("label", pa.string()),
    _opt("confidence", pa.float32()),
    _opt("entropy", pa.float32()),
    _req("n_frames", pa.int32()),
    _req("model_name", pa.string()),
    _req("device", pa.string()),
)

SELECTIONS = _manifest(
    "selections",
    ("clip_id",),
    "Stage 4 (subsample): clips chosen so predicted expressions match a prior; 2x the target per scene.",
    _req("clip_id", pa.string()),
    _req("scene", pa.string()),
    _req("label", pa.string()),  # predicted expression
    _req("selected", pa.bool_()),
    _opt("order", pa.int32()),  # selection order within the scene
    _opt("clip_path", pa.string()),  # the encoded clip (mp4) for annotation
)

LABELS = _manifest(
    "labels",
    ("clip_id",),
    "Stage 5 (annotate) or an imported release: the final expression label of each clip.",
    _req("clip_id", pa.string()),
    _req("scene", pa.string()),
    _req("scenario", pa.string()),
    _req("label", pa.string()),
    _req("label_index", pa.int32()),  # in keywords/emotions.yaml index order
    _req("source", pa.string()),  # e.g. 'ferv39k' (imported release), 'wwta' (aggregated annotation)
    _opt("split", pa.string()),  # 'train' / 'test' where the source fixes one (the release's own split)
    # Aggregated annotation only (null for an imported release): see tasks/annotate/aggregation/.
    _opt("method", pa.string()),  # 'wwta', 'majority', 'dawid_skene'
    _opt("vote_share", pa.float64()),  # the winning label's share of the (weighted) votes
    _opt("confidence", pa.float64()),  # the aggregator's probability of the winning label
    _opt("n_votes", pa.int32()),  # accepted answers that voted (PASS excluded)
    _opt("word_distribution", pa.map_(pa.string(), pa.float64())),  # weighted share of each chosen word
)

ANNOTATION_TASKS = _manifest(
    "annotation_tasks",
    ("task_id",),
    "Stage 5 (annotate.package): one row per clip per shuffled group copy; ~5% of a group are gold items.",
    _req("task_id", pa.string()),  # '<batch_id>-g<group:04d>-c<copy>-<clip_id>'
    _req("batch_id", pa.string()),
    _req("group_id", pa.string()),  # '<batch_id>-g0003'
    _req("copy", pa.int16()),  # 0 .. n_copies-1
    _req("position", pa.int32()),  # order inside the shuffled copy
    _req("clip_id", pa.string()),
    _req("scene", pa.string()),
    _req("gold", pa.bool_()),  # labelled by a professional researcher (PR) first
    _opt("clip_path", pa.string()),  # the encoded mp4 (selections.clip_path)
    _opt("predicted_label", pa.string()),  # the FER refiner's expression (selections.label)
)

ANSWERS = _manifest(
    "answers",
    ("answer_id",),
    "Stage 5 (annotate): every answer of a crowd annotator (CA) or professional researcher (PR).",
    _req("answer_id", pa.string()),
    _req("task_id", pa.string()),
    _req("batch_id", pa.string()),
    _req("group_id", pa.string()),
    _req("copy", pa.int16()),
    _req("clip_id", pa.string()),
    _req("scene", pa.string()),
    _req("annotator_id", pa.string()),
    _req("role", pa.string()),  # 'CA' or 'PR'
    _req("round", pa.int16()),  # 1 = first pass, 2.. = relabelling
    _req("word", pa.string()),  # one of the 26 fine-grained words, or 'PASS'
    _opt("label", pa.string()),  # the word's expression; null for PASS
    _req("answered_at", pa.timestamp("us", tz="UTC")),
    _req("time_spent_s", pa.float64()),
    _req("source", pa.string()),  # 'web', 'label_studio', 'simulator'
)

GROUP_CHECKS = _manifest(
    "group_checks",
    ("group_id", "copy", "round"),
    "Stage 5 (annotate.recapture): the flag-recapture score of each group copy, its verdict and review.",
    _req("group_id", pa.string()),
    _req("copy", pa.int16()),
    _req("round", pa.int16()),
    _req("scene", pa.string()),  # the group's scene (a group never mixes scenes)
    _req("annotator_id", pa.string()),
    _req("n_items", pa.int32()),
    _req("n_gold", pa.int32()),
    _req("n_gold_answered", pa.int32()),  # gold items answered with a word: the "recaptured" ones
    _req("n_gold_correct", pa.int32()),
    _req("estimate", pa.float64()),  # estimated correct rate of the copy's answered items (0: none answered)
    _req("ci_low", pa.float64()),
    _req("ci_high", pa.float64()),
    _req("verdict", pa.string()),  # 'AC', 'IP', 'UA'
    _opt("pr_decision", pa.string()),  # 'accept' / 'reject'
    _opt("reviewer_id", pa.string()),
    _opt("feedback", pa.string()),
)

SIMULATED_TRUTH = _manifest(
    "simulated_truth",
    ("batch_id", "clip_id"),
    "Annotation simulator: the hidden true expression of each simulated clip, to score aggregators against.",
    _req("batch_id", pa.string()),
    _req("clip_id", pa.string()),
    _req("scene", pa.string()),
    _req("label", pa.string()),  # the true expression (emotions.yaml names)
)

SPLITS = _manifest(
    "splits",
    ("setup", "clip_id"),
    "Benchmark protocol (paper 4.1): the side of each clip in each setup (27 + cross-scenario).",
    _req("setup", pa.string()),  # 'All', a scenario code ('DL'), a scene ('Social'), or 'DL-to-WIS'
    _req("clip_id", pa.string()),
    _req("scene", pa.string()),  # the clip's scene (the partition)
    _req("label", pa.string()),
    _req("side", pa.string()),  # 'train' or 'test'
    _req("split_source", pa.string()),  # 'labels' (the release's own split) or 'stratified'
)

RESULTS = _manifest(
    "results",
    ("model", "variant", "train_setup", "test_setup", "group"),
    "Benchmark (paper 4.3, Tables 2-3): WAR/UAR of a trained model on one group of a setup's test side.",
    _req("model", pa.string()),  # zoo registry name, e.g. 'r18-lstm'
    _req("variant", pa.string()),  # the ablation axes as a name, e.g. 'f8' or 'f8-init'
    _req("train_setup", pa.string()),
    _req("test_setup", pa.string()),
    _req("group", pa.string()),  # 'overall', 'scenario=DL' or 'scene=Social'
    # 'ok'; 'failed' with a reason and null scores; 'stale' (reason 'source_taken_down') when a clip it
    # was trained or tested on was taken down
    _req("status", pa.string()),
    _opt("reason", pa.string()),
    _opt("error", pa.string()),
    _opt("war", pa.float64()),
    _opt("uar", pa.float64()),
    _req("n_clips", pa.int64()),
    _opt("recall", pa.list_(pa.float64())),  # per class, emotions.yaml order; NaN where absent
    _opt("confusion", pa.list_(pa.int64())),  # 7 x 7, row = true class, flattened row-major
    _req("n_frames", pa.int32()),
    _req("streams", pa.string()),  # 'face' or 'face+scene'
    _opt("init_checkpoint", pa.string()),
    _opt("n_params", pa.int64()),
    _opt("epochs", pa.int32()),
    _opt("train_loss", pa.float64()),  # mean loss of the last epoch
    _opt("checkpoint", pa.string()),
    _opt("device", pa.string()),
)

TAKEDOWNS = _manifest(
    "takedowns",
    ("takedown_id",),
    "Takedowns: a source video removed with everything derived from it; later crawls skip it. Holds "
    "hashes of the source, never its id, URL or any face data.",
    _req("takedown_id", pa.string()),  # 'td-' + the first 16 hex digits of source_hash
    _req("source_hash", pa.string()),  # sha256 of the video id (of the reference when no video matched)
    _opt("url_hash", pa.string()),  # sha256 of the source URL
    _req("requested_by", pa.string()),
    _req("requested_at", pa.timestamp("us", tz="UTC")),
    _opt("note", pa.string()),
    _req("status", pa.string()),  # 'pending' (recorded, removal under way) or 'done'
    _opt("removed", pa.map_(pa.string(), pa.int64())),  # rows per manifest, files per kind
    _opt("n_stale_results", pa.int64()),  # benchmark results marked stale
    _opt("completed_at", pa.timestamp("us", tz="UTC")),
)

MANIFESTS: dict[str, Manifest] = {
    m.name: m
    for m in (VIDEOS, MEDIA, CLIPS, FACES, CANDIDATES, FER_SCORES, SELECTIONS, LABELS)
    + (ANNOTATION_TASKS, ANSWERS, GROUP_CHECKS, SIMULATED_TRUTH)
    + (SPLITS, RESULTS, TAKEDOWNS)
}


def get_manifest(name: str) -> Manifest:
    try:
        return MANIFESTS[name]
    except KeyError:
        raise ValueError(f"unknown manifest {name!r}; known manifests: {', '.join(MANIFESTS)}") from None
