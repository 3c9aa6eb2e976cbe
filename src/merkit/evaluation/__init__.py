"""Protocols (splitters), metrics, the resumable runner and its reports."""

from merkit.evaluation.metrics import confusion_matrix, scores
from merkit.evaluation.protocols import (
    PROTOCOLS,
    Fold,
    LeaveOneDatasetOut,
    LeaveOneSubjectOut,
    SampleKFold,
    SubjectKFold,
    make_protocol,
    shared_subjects,
)
from merkit.evaluation.runner import RunResult, evaluate, fold_seed, summarize

__all__ = [
    "PROTOCOLS",
    "Fold",
    "LeaveOneDatasetOut",
    "LeaveOneSubjectOut",
    "RunResult",
    "SampleKFold",
    "SubjectKFold",
    "confusion_matrix",
    "evaluate",
    "fold_seed",
    "make_protocol",
    "scores",
    "shared_subjects",
    "summarize",
]
