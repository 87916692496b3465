"""The ``quality:`` section: limits on the answers, judged beside the cost.

Pure data and parsing; the checks are in ``gate/quality.py``, the scoring pass that feeds
them in ``measure/quality.py``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pytest_llem.study.sections import parse_limit


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# MLPerf Inference's bound on tokens per sample against the reference (0.9x to 1.1x).
DEFAULT_LENGTH_BAND = (0.9, 1.1)
QUALITY_CHECKS = ("token_agreement", "output_length", "perplexity")


class QualityConfig(_Section):
    """Quality guard: limits on the answers, judged beside the cost (``gate/quality.py``).

    An energy win that changes the answers is not a pass. Each limit compares this config's
    outputs with a reference: the reference arm of an A/B pair, or the outputs stored with the
    baseline. Nothing here changes the measured window: the window's own output token ids are
    kept, and what the checks need beyond them (top-k log probabilities, perplexity) comes from
    one scoring pass after the window, unmeasured. So the section stays out of the config hash.
    """

    token_agreement: str | float | None = Field(
        default=None,
        description="least share of prompts whose greedy output agrees with the reference "
        "('95%'): the same tokens, or a first divergence where each side's token is in the "
        "other's top_k",
    )
    top_k: int = Field(
        default=5,
        ge=0,
        le=20,
        description="a first divergence is close when each side's token is in the other's "
        "top-k log probabilities (vLLM's CI check); 0: exact matches only",
    )
    output_length: str | float | bool | list[float] | None = Field(
        default=None,
        description="band of mean output tokens per request against the reference: true "
        "(0.9-1.1x, MLPerf's), '10%', or [low, high] as ratios",
    )
    perplexity: str | float | None = Field(
        default=None,
        description="most perplexity may rise above the reference's ('5%'), on perplexity_text",
    )
    perplexity_text: str | None = Field(
        default=None,
        description="a .txt or .jsonl file (relative to the study file); None: the English "
        "text shipped with pytest-llem",
    )
    perplexity_tokens: int = Field(
        default=2048, ge=16, le=1_000_000, description="tokens of the text scored, at most"
    )

    @field_validator("token_agreement")
    @classmethod
    def _share(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            share(value)
        return value

    @field_validator("output_length")
    @classmethod
    def _band(cls, value: str | float | bool | list[float] | None) -> Any:
        if value is not None and value is not False:
            band(value)
        return value

    @field_validator("perplexity")
    @classmethod
    def _rise(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            amount, relative = parse_limit(value)
            if not relative or amount < 0:
                raise ValueError("perplexity must be a percentage such as '5%'")
        return value

    @property
    def agreement_min(self) -> float | None:
        """The least share of prompts that must agree (None: not checked)."""
        return share(self.token_agreement) if self.token_agreement is not None else None

    @property
    def length_band(self) -> tuple[float, float] | None:
        """(low, high) ratios of mean output length to the reference's (None: not checked)."""
        if self.output_length is None or self.output_length is False:
            return None
        return band(self.output_length)

    @property
    def perplexity_max(self) -> float | None:
        """The most perplexity may rise, as a fraction (None: not checked)."""
        return parse_limit(self.perplexity)[0] if self.perplexity is not None else None

    @property
    def active(self) -> bool:
        """True when any quality limit is set (the item then records what they need)."""
        return any(
            x is not None for x in (self.agreement_min, self.length_band, self.perplexity_max)
        )

    @property
    def records_tokens(self) -> bool:
        """True when the window's output token ids are kept (token agreement needs them)."""
        return self.token_agreement is not None

    def sampling_problem(self, sampling: bool) -> str | None:
        """Why this section cannot judge a config that samples (None when it can)."""
        if sampling and self.token_agreement is not None:
            return (
                "quality.token_agreement compares greedy outputs token by token, and this "
                "config samples (decoder.temperature > 0 or decoder.do_sample: true): set "
                "decoder.temperature: 0, or remove quality.token_agreement"
            )
        return None


def share(value: str | float) -> float:
    """A share such as ``'95%'`` or ``0.95`` as a fraction in (0, 1].

    Raises:
        ValueError: for anything else.
    """
    amount, relative = parse_limit(value)
    if not 0.0 < amount <= 1.0:
        shown = f"{amount * 100:g}%" if relative else f"{amount:g}"
        raise ValueError(f"{shown} is not a share of prompts: write e.g. '95%' (or 0.95)")
    return amount


def band(value: str | float | bool | list[float]) -> tuple[float, float]:
    """An output-length band: ``true`` (0.9-1.1x), ``'10%'`` (symmetric) or ``[low, high]``.

    Raises:
        ValueError: for anything else.
    """
    if value is True:
        return DEFAULT_LENGTH_BAND
    if isinstance(value, list):
        if len(value) != 2 or not 0.0 <= value[0] < 1.0 < value[1]:
            raise ValueError(
                f"{value} is not a band around the reference: write [low, high] with "
                "low < 1 < high, e.g. [0.9, 1.1]"
            )
        return float(value[0]), float(value[1])
    amount, relative = parse_limit(value)
    if not relative or not 0.0 < amount < 1.0:
        raise ValueError(
            f"{value!r} is not an output-length band: write true (0.9-1.1x), '10%' or [0.9, 1.1]"
        )
    return 1.0 - amount, 1.0 + amount
