"""Error hierarchy: every error a user can cause carries the place and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class LlemError(Exception):
    """Base of every pytest-llem error; ``fix`` says what the user should do."""

    def __init__(self, message: str, fix: str | None = None, summary: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self._summary = summary

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message}\n  fix: {self.fix}"

    def summary(self) -> str:
        """The error in one line: given, or the message's first line (a heading ending in a
        colon takes its first point along), with the fix."""
        if self._summary is not None:
            return self._summary
        lines = [ln.strip() for ln in self.message.splitlines() if ln.strip()]
        head = (
            " ".join(lines[:2])
            if len(lines) > 1 and lines[0].endswith(":")
            else (lines[0] if lines else "")
        )
        return f"{head}; fix: {self.fix}" if self.fix else head


@dataclass(frozen=True)
class Problem:
    """One problem found in a study file, located as precisely as the file allows."""

    field: str
    message: str
    fix: str | None = None
    line: int | None = None

    def render(self, path: Path | str) -> str:
        """Format as ``file:line: field: message (fix: ...)``."""
        where = f"{path}:{self.line}" if self.line else f"{path}"
        text = (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )
        return f"{text}\n    fix: {self.fix}" if self.fix else text


class StudyError(LlemError):
    """A study file that cannot be turned into a plan; lists every problem found at once."""

    def __init__(self, path: Path | str, problems: list[Problem]) -> None:
        self.path = Path(path)
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        body = "\n".join(p.render(self.path) for p in problems)
        super().__init__(f"invalid study file {self.path} ({count}):\n{body}")

    def __str__(self) -> str:
        return self.message

    @classmethod
    def single(
        cls,
        path: Path | str,
        field: str,
        message: str,
        fix: str | None = None,
        line: int | None = None,
    ) -> StudyError:
        """Build an error that holds one problem."""
        return cls(path, [Problem(field, message, fix, line)])


class ModelNotFoundError(LlemError):
    """A model id, alias or path that cannot be resolved offline."""


class EngineError(LlemError):
    """The inference engine failed to load or generate."""


class PreflightError(LlemError):
    """A pre-flight check failed for an item."""


class RunnerError(LlemError):
    """A runner could not execute an item."""


class GateFailure(LlemError):  # noqa: N818 - a verdict, not a programming error
    """The regression gate rejected an item's results."""
