"""A failed pre-flight check, and the policy that skips rather than fails.

Beneath the backends: their own pre-flight modules (``engines/<backend>/preflight.py``) return
``Check``s too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CheckKind = Literal["gpu", "energy", "backend", "model", "memory", "docker", "image", "runner"]
# Problems that mean "this machine lacks the hardware" (or the container engine the study
# needs): skip unless --llem-require-gpu.
HARDWARE_KINDS: frozenset[str] = frozenset({"gpu", "energy", "docker"})


@dataclass(frozen=True)
class Check:
    """One failed pre-flight check."""

    kind: CheckKind
    message: str
    fix: str

    def render(self) -> str:
        """``[kind] message (fix: ...)``."""
        return f"[{self.kind}] {self.message}\n    fix: {self.fix}"


def should_skip(checks: list[Check], require_gpu: bool) -> bool:
    """Skip (rather than fail) when only hardware is missing and GPUs are not required."""
    return bool(checks) and not require_gpu and all(c.kind in HARDWARE_KINDS for c in checks)
