"""mloops: a static scanner for the attack surface of machine-learning platforms."""

__version__ = "0.1.0"

from .core import AttackClass, Capability, Finding, Location, Report, Severity
from .limits import Limits
from .scan import scan_path

__all__ = [
    "AttackClass",
    "Capability",
    "Finding",
    "Limits",
    "Location",
    "Report",
    "Severity",
    "__version__",
    "scan_path",
]
