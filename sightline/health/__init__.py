"""Is a dataset healthy? ``check`` finds what makes a model learn the wrong thing or an
evaluation lie: unreadable files, duplicates (and the same image under two labels), near
copies, test images that are copies of training images, class counts, odd sizes and modes."""

from sightline._lazy import lazy_exports
from sightline.health.check import check as check
from sightline.health.problems import KINDS as KINDS
from sightline.health.problems import HealthReport as HealthReport
from sightline.health.problems import Problem as Problem

# What the faces use besides ``check``: the fixes and their journal, and the thresholds they show.
_EXPORTS = {
    "QUARANTINE": "sightline.health.fix",
    "apply_fix": "sightline.health.fix",
    "keep": "sightline.health.fix",
    "plan_fix": "sightline.health.fix",
    "revoke": "sightline.health.fix",
    "undo_fix": "sightline.health.fix",
    "REMOVED": "sightline.health.fix",
    "last_fix": "sightline.health.fix",
    "last_journal": "sightline.health.fix",
    "recommended": "sightline.health.fix",
    "review_move": "sightline.health.fix",
    "set_aside": "sightline.health.fix",
    "decision_key": "sightline.health.decisions",
    "recheck": "sightline.health.check",
    "FolderReader": "sightline.health.scan",
    "NEAR": "sightline.health.duplicates",
    "FIX_CONFIDENCE": "sightline.health.label_quality",
    "FIX_OWN": "sightline.health.label_quality",
    "RELIABLE_ACCURACY": "sightline.health.label_quality",
}
__all__ = ["KINDS", "HealthReport", "Problem", "check", *sorted(_EXPORTS)]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
