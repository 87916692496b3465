"""Study-level sections: ``execution:``, ``runners:``, ``gate:`` and ``ab:``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pytest_llem.study.metrics import METRICS

CycleOrder = Literal["sequential", "interleaved", "shuffled"]
RunnerMode = Literal["local", "docker", "python"]
AB_ARMS = ("reference", "candidate")

# A Docker image reference: [registry[:port]/]path[:tag][@digest]; no spaces or shell syntax.
_SECRET = r"(TOKEN|_KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL)"
_IMAGE_RE = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)


class _Section(BaseModel):
    # Frozen: sections are shared as defaults (no per-point copies) and safe to hash.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExecutionConfig(_Section):
    """How often and in which order the grid points run."""

    n_cycles: int = Field(default=1, ge=1, le=1000)
    cycle_order: CycleOrder = "sequential"
    shuffle_seed: int | None = None
    experiment_gap_s: float = Field(default=0.0, ge=0.0, description="Pause between items")
    cycle_gap_s: float = Field(default=0.0, ge=0.0, description="Pause between cycles")
    timeout_s: float | None = Field(
        default=None,
        gt=0.0,
        description="Fail an item that runs longer (model load included); needs pytest-timeout",
    )

    @field_validator("experiment_gap_s", "cycle_gap_s", mode="before")
    @classmethod
    def _none_is_no_gap(cls, value: object) -> object:
        # LLenergyMeasure wrote null for "the machine default", which was no gap.
        return 0.0 if value is None else value


def is_valid_image(image: str) -> bool:
    """True if ``image`` is a well-formed Docker image reference."""
    return len(image) <= 255 and _IMAGE_RE.match(image) is not None


def parse_runner_value(value: str) -> tuple[RunnerMode, str | None]:
    """Parse ``local``, ``docker``, ``docker:<image>`` or ``python:<interpreter>`` into (mode,
    target): the image, or the interpreter (a path, or a command on PATH).

    Raises:
        ValueError: for anything else, naming the allowed forms.
    """
    forms = "allowed: 'local', 'docker', 'docker:<image>', 'python:<interpreter>'"
    text = value.strip() if isinstance(value, str) else value
    if text == "local":
        return "local", None
    if text == "docker":
        return "docker", None
    if isinstance(text, str) and text.startswith("python:"):
        interpreter = text[len("python:") :].strip()
        if not interpreter or any(ch in interpreter for ch in "\n\r\0"):
            raise ValueError(f"runner {value!r} names no interpreter; {forms}")
        return "python", interpreter
    if isinstance(text, str) and text.startswith("docker:"):
        image = text[len("docker:") :]
        if not image:
            raise ValueError(f"runner {value!r} names no image; {forms}")
        if not is_valid_image(image):
            raise ValueError(f"runner {value!r}: {image!r} is not a valid image reference")
        return "docker", image
    raise ValueError(f"unknown runner {value!r}; {forms}")


def parse_limit(value: str | float | int) -> tuple[float, bool]:
    """Parse a gate limit: ``"5%"`` is relative (0.05, True); a number is absolute.

    Raises:
        ValueError: when the value is neither.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a limit; write e.g. '5%' or 0.5")
    if isinstance(value, (int, float)):
        return float(value), False
    text = str(value).strip()
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100.0, True
        return float(text), False
    except ValueError:
        raise ValueError(f"{value!r} is not a limit; write e.g. '5%' or 0.5") from None


def percent(text: str) -> float:
    """A positive percentage such as ``5%`` as a fraction (ini ``llem_max_cv``, merge's
    ``--max-cv``).

    Raises:
        ValueError: for anything else (argparse reports it as an invalid ``percent`` value).
    """
    amount, relative = parse_limit(text)
    if not relative or amount <= 0:
        raise ValueError(f"{text!r} is not a positive percentage such as 5%")
    return amount


class SignificanceConfig(_Section):
    """Statistical test a relative regression must pass when enough cycles exist."""

    test: Literal["mannwhitney", "welch"] = "welch"
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    min_cycles: int = Field(default=3, ge=2)
    paired_test: Literal["auto", "t", "signflip"] = Field(
        default="auto",
        description="A/B pairs: an exact sign-flip test where it can reach the level (up to "
        "16 pairs), else a one-sample t-test on the log ratios",
    )
    correction: Literal["bonferroni", "none"] = Field(
        default="bonferroni",
        description="family-wise: each 'beyond the limit' test of a study at alpha divided "
        "by its number of tests (configs x relative limits), so that unchanged work fails a "
        "whole study at most alpha of the time",
    )

    def fail_alpha(self, tests: int) -> float:
        """The level of each "beyond the limit" test in a family of ``tests`` tests."""
        return self.alpha / max(1, tests) if self.correction == "bonferroni" else self.alpha


class GateConfig(_Section):
    """Regression limits (relative to a baseline) and absolute budgets, per metric."""

    max_regression: dict[str, str | float] = Field(default_factory=dict)
    budgets: dict[str, float] = Field(default_factory=dict)
    significance: SignificanceConfig = SignificanceConfig()
    max_cv: str | float | None = None  # cycle-to-cycle CV beyond which a config is unstable

    @field_validator("max_cv")
    @classmethod
    def _max_cv(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            amount, relative = parse_limit(value)
            if not relative or amount <= 0:
                raise ValueError("max_cv must be a positive percentage such as '5%'")
        return value

    @field_validator("max_regression", "budgets")
    @classmethod
    def _known_metrics(cls, value: dict[str, object]) -> dict[str, object]:
        unknown = sorted(k for k in value if k not in METRICS)
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; known: {sorted(METRICS)}")
        return value

    @field_validator("max_regression")
    @classmethod
    def _relative_limits(cls, value: dict[str, str | float]) -> dict[str, str | float]:
        for metric, limit in value.items():
            amount, relative = parse_limit(limit)
            if not relative:
                raise ValueError(
                    f"max_regression.{metric} must be a percentage such as '5%'; "
                    "absolute limits go under budgets:"
                )
            if amount < 0:
                raise ValueError(f"max_regression.{metric} must not be negative")
        return value


class ArmConfig(_Section):
    """One arm of an A/B study: where it runs, its environment, and overrides of any study
    field (``precision: fp16``, ``vllm.engine.enable_prefix_caching: true``, ...)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    runner: str | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("runner")
    @classmethod
    def _runner(cls, value: str | None) -> str | None:
        if value is not None:
            parse_runner_value(value)
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            bad = [k for k in value if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(k))]
            if bad:
                raise ValueError(f"env names {bad} are not environment variable names")
            secret = [k for k in value if re.search(_SECRET, str(k), re.IGNORECASE)]
            if secret:
                raise ValueError(
                    f"env {secret} look like secrets: a study file is committed; set them in "
                    "the environment that runs pytest instead"
                )
            return {str(k): "" if v is None else str(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _no_quality(self) -> ArmConfig:
        # The quality limits judge the pair, candidate against reference: one set for both.
        named = [k for k in self.overrides if k == "quality" or k.startswith("quality.")]
        if named:
            raise ValueError(
                f"{named[0]}: quality limits judge the pair (candidate against reference), so "
                "they are set once for the study (a top-level quality: section), not per arm"
            )
        return self

    @property
    def overrides(self) -> dict[str, Any]:
        """The study fields this arm changes (dotted keys as written)."""
        return dict(self.model_extra or {})

    def runner_value(self) -> str:
        """The arm's runner, ``local`` when it names none."""
        return self.runner or "local"


class AbConfig(_Section):
    """Same-session A/B: a candidate against a reference, interleaved, gated on pairs."""

    calibrate: bool = Field(
        default=False, description="an A/A run: allow two identical arms (to size the noise)"
    )
    reference: ArmConfig = ArmConfig()
    candidate: ArmConfig = ArmConfig()

    def arm(self, name: str) -> ArmConfig:
        """``reference`` or ``candidate``."""
        return self.reference if name == "reference" else self.candidate

    def runner_of(self, name: str, cli: Mapping[str, str]) -> str:
        """An arm's runner: ``--llem-ab`` over the study's, ``local`` when neither names one."""
        return cli.get(name) or self.arm(name).runner_value()

    def identical(self, cli: Mapping[str, str]) -> bool:
        """True when both arms would run the same thing the same way (an A/A run)."""
        ref, cand = self.reference, self.candidate
        return (
            self.runner_of("reference", cli) == self.runner_of("candidate", cli)
            and ref.env == cand.env
            and ref.overrides == cand.overrides
        )

    def shares_process(self, cli: Mapping[str, str]) -> bool:
        """True when both arms run locally in the pytest process (no env of their own)."""
        return all(self.runner_of(a, cli) == "local" and not self.arm(a).env for a in AB_ARMS)


class RunnersConfig(_Section):
    """Per-backend runner choice (``local``, ``docker``, ``docker:<image>``), keyed by backend
    name; the grammar checks the names against the registry."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for name, value in data.items():
                if value is None:
                    continue
                if not isinstance(value, str):
                    raise ValueError(
                        f"{name}: expected local, docker, docker:<image> or python:<interpreter>"
                    )
                try:
                    parse_runner_value(value)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        return data

    def for_backend(self, backend: str) -> str | None:
        """The raw runner value configured for ``backend``, if any."""
        value = (self.model_extra or {}).get(backend)
        return value if isinstance(value, str) else None
