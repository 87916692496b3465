"""The figures of a token-agreement check, as a verdict carries them (pure data)."""

from __future__ import annotations

from pydantic import BaseModel, Field

# The check names of the ``quality:`` section, as comparisons name their metric.
QUALITY_METRICS = ("token_agreement", "output_length", "perplexity")


class Divergence(BaseModel):
    """Where one prompt's output first differs from the reference's.

    ``reference`` / ``candidate``: each side's token there (None where that side's output had
    already ended). ``close``: each side's token is in the other's top-k there; None where the
    top-k lists were not scored.
    """

    prompt: int  # the prompt's index in the window's prompt set (0-based)
    position: int  # the output token's index (0-based)
    reference: int | None
    candidate: int | None
    close: bool | None
    cycle: int | None = None  # A/B: the pair's cycle


class Agreement(BaseModel):
    """How many prompts' outputs agree with the reference's, and the first divergences."""

    prompts: int
    exact: int
    close: int  # diverged, but each side's token is in the other's top-k at the divergence
    diverged: int  # diverged and not close
    unknown: int = 0  # diverged, closeness not known (no top-k scores on a side)
    top_k: int = 0
    first: list[Divergence] = Field(default_factory=list)  # the first few, in prompt order

    @property
    def share(self) -> float:
        """Share of prompts that agree (exact or close)."""
        return (self.exact + self.close) / self.prompts if self.prompts else 0.0

    def describe(self, limit: int = 3) -> str:
        """``6 of 8 prompts agree (5 exact, 1 close at top-5); 2 diverged: prompt 3 at token 0
        (reference 273, candidate 45), ...``"""
        closeness = f", {self.close} close at top-{self.top_k}" if self.top_k else ""
        text = (
            f"{self.exact + self.close} of {self.prompts} prompts agree "
            f"({self.exact} exact{closeness})"
        )
        far = [d for d in self.first if not d.close]
        if self.diverged or self.unknown:
            where = ", ".join(_where(d) for d in far[:limit])
            more = " ..." if self.diverged + self.unknown > limit else ""
            text += f"; {self.diverged + self.unknown} diverged: {where}{more}"
        if self.unknown:
            text += f" ({self.unknown} not scored for closeness: a side has no top-k lists)"
        return text

    def first_far(self) -> Divergence | None:
        """The first divergence that is not close (the one a failure names)."""
        return next((d for d in self.first if not d.close), None)


def _token(value: int | None) -> str:
    return "(ended)" if value is None else str(value)


def _where(d: Divergence) -> str:
    cycle = f" in cycle {d.cycle}" if d.cycle is not None else ""
    return (
        f"prompt {d.prompt} at token {d.position}{cycle} (reference {_token(d.reference)}, "
        f"candidate {_token(d.candidate)})"
    )
