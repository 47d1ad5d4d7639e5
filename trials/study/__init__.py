"""Search studies on Ray Tune with a crash-proof, resumable directory store (docs/studies.md).

Importing this package imports neither ray nor torch; running a study does.
"""

from trials.study.early_stop import EarlyStop
from trials.study.results import load_results
from trials.study.runner import run_study
from trials.study.store import Candidate, StudyBusy, StudyError, StudyStore, candidate_key

__all__ = [
    "Candidate",
    "EarlyStop",
    "StudyBusy",
    "StudyError",
    "StudyStore",
    "candidate_key",
    "load_results",
    "run_study",
]
