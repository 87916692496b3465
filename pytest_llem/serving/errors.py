"""The serving package's one error: a run or a server that cannot give figures."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_llem.errors import LlemError

if TYPE_CHECKING:
    from pytest_llem.serving.records import LoadRun


class ServingError(LlemError):
    """A serving run that produced no figures (every request failed, the server went away) or
    a server that never became ready; ``run`` keeps whatever was recorded."""

    def __init__(self, message: str, fix: str | None = None, run: LoadRun | None = None) -> None:
        super().__init__(message, fix)
        self.run = run
