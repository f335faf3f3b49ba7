"""The card as Croissant 1.0 JSON-LD (MLCommons' metadata format for ML datasets).

The document describes the release's files (the provenance CSV, the face-crop and scene-image JPEGs) and
one record set, ``clips``, whose fields are read from ``provenance.csv``: the clip's folder, scene,
expression, split, source URL, uploader, licence and time span. ``mlcroissant`` validates it and reads
its records (:func:`validate`).

    >>> doc = croissant_jsonld(card, out / "provenance.csv")          # doctest: +SKIP
    >>> validate(out / "croissant.json")
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.release.card import Card

CROISSANT_FILE = "croissant.json"
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
#: The paper the pipeline reproduces; cited by every card.
CITATION = (
    "Wang, Y., Sun, Y., Huang, Y., Liu, Z., Gao, S., Zhang, W., Ge, W., Zhang, W.: FERV39k: A Large-Scale "
    "Multi-Scene Dataset for Facial Expression Recognition in Videos. CVPR 2022."
)
#: Croissant 1.0's JSON-LD context, as the specification publishes it.
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
#: Fields of the ``clips`` record set: (provenance column, Croissant data type, description).
CLIP_FIELDS = (
    ("clip_id", "sc:Text", "The clip's id in the catalog."),
    ("path", "sc:Text", "The clip's folder under 2_ClipsforFaceCrop/ and 3_ClipsforScenImages/."),
    ("scene", "sc:Text", "One of the 22 scenes."),
    ("label", "sc:Text", "The clip's expression (one of 7)."),
    ("split", "sc:Text", "'train' or 'test' of the All setup; empty where the release fixes none."),
    ("source_url", "sc:URL", "The source video's URL as crawled; empty when unknown."),
    ("uploader", "sc:Text", "The source video's uploader as crawled."),
    ("licence", "sc:Text", "The source video's licence as crawled; empty when unknown."),
    ("start_time", "sc:Float", "Start of the clip in the source video (s)."),
    ("end_time", "sc:Float", "End of the clip in the source video (s, exclusive)."),
    ("clip_run_id", "sc:Text", "The run that cut the clip."),
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def croissant_jsonld(card: Card, provenance_csv: Path) -> dict[str, Any]:
    """The Croissant document of ``card``; ``provenance_csv`` is the written table (hashed into it)."""
    licences = sorted(card.sources["licences"])
    description = card.settings.description.strip() or (
        f"A multi-scene facial-expression video dataset of {card.n_clips} clips in "
        f"{card.labels['scene'].nunique()} scenes, built the way FERV39k was (crawl, random 0.5-4 s clips, "
        "face filter, FER-refined subsampling, annotation). Licences of the source videos as crawled: "
        f"{', '.join(licences)}; see provenance.csv per clip."
    )
    field_prefix = "clips/"
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": card.settings.name,
        "description": description,
        "url": "card.md",
        "citeAs": CITATION,
        "license": ", ".join(licences),
        "version": "1.0.0",
        # The newest manifest row the card describes: the same catalog gives the same document.
        **({"datePublished": card.lineage["latest"]} if card.lineage["latest"] else {}),
        "keywords": ["facial expression recognition", "video", "FERV39k"],
        "distribution": [
            {
                "@type": "cr:FileObject",
                "@id": "provenance.csv",
                "name": "provenance.csv",
                "description": "One row per clip: source, licence, time span and runs.",
                "contentUrl": provenance_csv.name,
                "encodingFormat": "text/csv",
                "sha256": _sha256(provenance_csv),
            },
            {
                "@type": "cr:FileSet",
                "@id": "face-crops",
                "name": "face-crops",
                "description": "224x224 face crops, one JPEG per frame, one folder per clip.",
                "includes": "2_ClipsforFaceCrop/**/*.jpg",
                "encodingFormat": "image/jpeg",
            },
            {
                "@type": "cr:FileSet",
                "@id": "scene-images",
                "name": "scene-images",
                "description": "336x504 scene images, one JPEG per frame, one folder per clip.",
                "includes": "3_ClipsforScenImages/**/*.jpg",
                "encodingFormat": "image/jpeg",
            },
        ],
        "recordSet": [
            {
                "@type": "cr:RecordSet",
                "@id": "clips",
                "name": "clips",
                "description": "The release's clips with their labels and provenance.",
                "key": {"@id": f"{field_prefix}clip_id"},
                "field": [
                    {
                        "@type": "cr:Field",
                        "@id": f"{field_prefix}{column}",
                        "name": column,
                        "description": text,
                        "dataType": data_type,
                        "source": {"fileObject": {"@id": "provenance.csv"}, "extract": {"column": column}},
                    }
                    for column, data_type, text in CLIP_FIELDS
                ],
            }
        ],
    }


def validate(path: str | Path) -> list[dict[str, Any]]:
    """Load the Croissant file with ``mlcroissant`` (which checks it against the specification) and return
    the records of ``clips``. Raises ValueError naming the file and mlcroissant's message when invalid."""
    try:
        import mlcroissant as mlc
    except ImportError:
        raise ValueError(
            "validating a Croissant file needs mlcroissant (a dependency): pip install mlcroissant==1.1.1"
        ) from None
    try:
        dataset = mlc.Dataset(jsonld=str(path))
        return list(dataset.records("clips"))
    except Exception as exc:  # mlcroissant raises its own ValidationError and plain errors alike
        raise ValueError(f"{path}: not a valid Croissant file: {exc}") from None
