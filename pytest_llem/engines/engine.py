"""The Engine interface and the data it exchanges with the measurement protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pytest_llem.devices import GpuRef
from pytest_llem.study.experiment import ExperimentConfig


@dataclass(frozen=True)
class Request:
    """One prompt, as token ids (exact lengths; identical for every backend of a tokenizer)."""

    token_ids: tuple[int, ...]


@dataclass(frozen=True)
class Completion:
    """What one request produced.

    ``latency_s`` is None when the engine cannot time this request on its own (``timing_note``
    says why): a batch's wall time is never passed off as a request's latency. ``itl_s`` are
    per-token gaps (where the engine sees each token); ``tpot_s`` is the request's mean gap
    between output tokens (time per output token), where only that is known.

    ``output_token_ids`` are kept only when the config's ``quality:`` section asks (the quality
    checks compare them), so a window without quality checks carries no per-token data. The
    top-k log probabilities those checks also need are not asked of the window's generate
    calls (that would change the measured work): ``TokenScorer.score`` gives them after it.
    """

    input_tokens: int
    output_tokens: int
    latency_s: float | None
    ttft_s: float | None = None
    itl_s: tuple[float, ...] = ()
    tpot_s: float | None = None
    timing_note: str | None = None
    output_token_ids: tuple[int, ...] = ()


def keeps_output_ids(config: ExperimentConfig) -> bool:
    """True when an engine keeps each completion's output token ids (``quality:`` asks)."""
    return config.quality is not None and config.quality.records_tokens


@dataclass(frozen=True)
class BatchResult:
    """One generate call: its completions and its wall time."""

    completions: list[Completion]
    wall_s: float


@dataclass(frozen=True)
class MemoryInfo:
    """Memory figures in MB (None where the device cannot tell)."""

    peak_mb: float | None
    model_mb: float | None
    details: dict[str, float] = field(default_factory=dict)


class Engine(Protocol):
    """A loaded model that can serve the measurement protocol."""

    def requests(self, config: ExperimentConfig) -> list[Request]:
        """Tokenise the configured dataset into ``config.n`` requests (truncated, seeded)."""

    def batches(self, requests: list[Request], config: ExperimentConfig) -> list[list[Request]]:
        """Split requests into the engine's generate calls (static batches, or one for vLLM)."""

    def generate(self, batch: list[Request], config: ExperimentConfig) -> BatchResult:
        """Run one generate call; must return only after the device finished the work."""

    def memory(self) -> MemoryInfo:
        """Peak and model memory since the last reset."""

    def devices(self) -> list[GpuRef]:
        """The CUDA devices holding the model (empty on CPU), with UUIDs when known."""

    def close(self) -> None:
        """Free the model and its device memory."""


@dataclass(frozen=True)
class Scored:
    """Teacher-forced log probabilities of one token sequence, from its ``start`` on.

    ``logprobs[i]`` is the log probability of token ``start + i`` given every token before it;
    ``top[i]`` the ids of the ``top_k`` most likely tokens at that position, best first.
    """

    logprobs: tuple[float, ...]
    top: tuple[tuple[int, ...], ...] = ()


@runtime_checkable
class TokenScorer(Protocol):
    """An engine that can score token sequences (the quality checks' pass after the window).

    Optional: an engine without it still measures; the checks that need scores then say so.
    """

    def score(
        self, sequences: Sequence[Sequence[int]], starts: Sequence[int], top_k: int
    ) -> list[Scored]:
        """Score each sequence from its start (each start >= 1); ``top_k`` 0: no top lists."""

    def text_tokens(self, source: str | None) -> tuple[list[int], str]:
        """The token ids of a text to score and its name (``source`` None: the text shipped
        with pytest-llem; else a .txt or .jsonl path, relative to the study file)."""

    def context_tokens(self) -> int:
        """The longest sequence the model takes."""
