"""The appropriateness engine: pure rules from clinical-rules.md.

No I/O, no clock, no web framework: the caller passes the domain objects, the
settings and ``now``; the answer is an Assessment that explains itself.
"""

from .assessment import (
    RED_FLAG_RULES,
    Assessment,
    Episode,
    KeyFigures,
    NotApplicableReason,
    Recommendation,
    Remark,
    RuleFinding,
)
from .evaluate import assess
from .thresholds import RuleSettings

__all__ = [
    "RED_FLAG_RULES",
    "Assessment",
    "Episode",
    "KeyFigures",
    "NotApplicableReason",
    "Recommendation",
    "Remark",
    "RuleFinding",
    "RuleSettings",
    "assess",
]
