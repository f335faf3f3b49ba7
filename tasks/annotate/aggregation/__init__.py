"""Aggregators over an answer frame (task, worker, label): WWTa, majority vote, Dawid-Skene; agreement.
Each registers itself in :data:`AGGREGATORS` (registry.py), the one list of method names.

>>> from tasks.annotate.aggregation import AGGREGATORS, WWTa, MajorityVote, DawidSkene
"""

from tasks.annotate.aggregation.agreement import fleiss_kappa, krippendorff_alpha
from tasks.annotate.aggregation.dawid_skene import DawidSkene
from tasks.annotate.aggregation.majority import MajorityVote
from tasks.annotate.aggregation.registry import AGGREGATORS, create_aggregator
from tasks.annotate.aggregation.wwta import WWTa

__all__ = [
    "AGGREGATORS",
    "DawidSkene",
    "MajorityVote",
    "WWTa",
    "create_aggregator",
    "fleiss_kappa",
    "krippendorff_alpha",
]
