"""The ``serve:`` section: a grid point measured as served requests under a load profile.

Pure pydantic. The section's load keys (rate, arrival, concurrency, requests, lengths) are
part of the workload and enter the config hash; where the server is (``endpoint``) and how
long to wait for it change how, not what, and stay out (``ServeConfig.workload``).
"""

from __future__ import annotations

import math
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Arrival = Literal["poisson", "constant", "gamma"]
# Keys that say where and how patiently, not what: kept out of the config hash.
NOT_WORKLOAD: frozenset[str] = frozenset(
    {"endpoint", "ready_timeout_s", "request_timeout_s", "deadline_s", "scrape_metrics"}
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SloConfig(_Section):
    """Service-level objectives in milliseconds: goodput counts requests meeting all given."""

    ttft_ms: float | None = Field(default=None, gt=0)
    tpot_ms: float | None = Field(default=None, gt=0)
    e2el_ms: float | None = Field(default=None, gt=0)


class ServeConfig(_Section):
    """How a serving item loads its server (see the manual's Serving page).

    (``rate: inf`` travels as the string "Infinity" in JSON, which the validator reads back.)

    ``rate`` is requests per second (``inf``: all at once); ``arrival`` how they are spaced;
    ``concurrency`` caps requests in flight (and, with the server's ``max_num_seqs``, sets
    where the steady-state window opens); ``num_requests`` are measured after
    ``warmup_requests``. Without ``endpoint`` the backend starts its own server.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")

    rate: float = Field(default=math.inf, gt=0, description="requests/s; inf: all at once")
    arrival: Arrival = "poisson"
    burstiness: float = Field(default=1.0, gt=0, description="gamma arrivals' shape")
    concurrency: int | None = Field(default=None, ge=1, description="cap on requests in flight")
    batch: int | None = Field(
        default=None,
        ge=1,
        description="the server's batch cap (vLLM's max_num_seqs) when smaller than "
        "concurrency: the window opens when this many requests have their first token, and "
        "occupancy is judged against it; None: concurrency",
    )
    num_requests: int = Field(default=64, ge=2)
    warmup_requests: int | None = Field(
        default=None, ge=0, description="None: the concurrency cap (or 4)"
    )
    fixed_output: bool = Field(
        default=True, description="every request produces max_output_tokens (ignore_eos)"
    )
    endpoint: str | None = Field(
        default=None,
        description="an OpenAI-compatible server already running, e.g. "
        "http://127.0.0.1:8000/v1; None: the backend starts its own",
    )
    served_model: str | None = Field(
        default=None, description="the model name the server knows; None: model"
    )
    slo: SloConfig | None = None
    ready_timeout_s: float = Field(default=900.0, gt=0)
    request_timeout_s: float = Field(default=600.0, gt=0)
    deadline_s: float | None = Field(default=None, gt=0)
    scrape_metrics: bool = Field(default=True, description="read the server's /metrics")

    @field_validator("rate", mode="before")
    @classmethod
    def _inf(cls, value: Any) -> Any:
        # YAML reads `inf` as a string (`.inf` is YAML's float): both mean "all at once".
        if isinstance(value, str) and value.strip().lower() in ("inf", ".inf", "infinity"):
            return math.inf
        return value

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(
                f"serve.endpoint {value!r} is not an http(s) URL; give the OpenAI API root, "
                "e.g. http://127.0.0.1:8000/v1"
            )
        return value.rstrip("/")

    @property
    def window_batch(self) -> int:
        """B of ML.ENERGY's window: the server's batch cap, else the client's, else 1."""
        return self.batch or self.concurrency or 1

    @model_validator(mode="after")
    def _window_fits(self) -> ServeConfig:
        cap = self.window_batch
        if self.num_requests < 2 * cap + 2:
            raise ValueError(
                f"serve.num_requests {self.num_requests} leaves no steady state at "
                f"concurrency {cap}: the window opens at the {cap}th first token and closes "
                f"when {self.num_requests - cap - 1} requests are over; use num_requests >= "
                f"{2 * cap + 2}"
            )
        return self

    @property
    def warmup(self) -> int:
        """Requests sent before the measured run."""
        if self.warmup_requests is not None:
            return self.warmup_requests
        return self.concurrency or 4

    def workload(self) -> dict[str, Any]:
        """What enters the config hash (``inf`` written as a string: JSON has no infinity)."""
        data = self.model_dump(mode="json", exclude=set(NOT_WORKLOAD), exclude_none=True)
        if math.isinf(self.rate):
            data["rate"] = "inf"
        return data
