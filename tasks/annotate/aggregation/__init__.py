"""Aggregators over an answer frame (task, worker, label): WWTa, majority vote, Dawid-Skene; agreement.

>>> from tasks.annotate.aggregation import WWTa, MajorityVote, DawidSkene
"""

from tasks.annotate.aggregation.agreement import fleiss_kappa, krippendorff_alpha
from tasks.annotate.aggregation.dawid_skene import DawidSkene
from tasks.annotate.aggregation.majority import MajorityVote
from tasks.annotate.aggregation.wwta import WWTa

__all__ = ["DawidSkene", "MajorityVote", "WWTa", "fleiss_kappa", "krippendorff_alpha"]
