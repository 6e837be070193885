"""mloops: a static scanner for the attack surface of machine-learning platforms."""

__version__ = "0.1.0"

from .core import AttackClass, Capability, Finding, Location, Report, Severity
from .limits import Limits
from .mitigations.safe_load import UnsafeModelError, safe_load, safe_torch_load
from .scan import scan_path

__all__ = [
    "AttackClass",
    "Capability",
    "Finding",
    "Limits",
    "Location",
    "Report",
    "Severity",
    "UnsafeModelError",
    "__version__",
    "safe_load",
    "safe_torch_load",
    "scan_path",
]
