"""A backend outside pytest-llem (``echo``), as a third party would write it: the module text,
the conftest that registers it and a study that uses it. Shared by the plugin and container
tests."""

ECHO_BACKEND = '''
"""A backend outside pytest-llem: its study section and an engine that echoes token ids."""
import time

from pydantic import BaseModel, ConfigDict, Field

from pytest_llem.engines.engine import BatchResult, Completion, MemoryInfo, Request
from pytest_llem.study.backends import BackendSpec

class EchoSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    batch: int = Field(default=2, ge=1)
    repeat: int = Field(default=1, ge=1)


class EchoEngine:
    def __init__(self, config):
        self.model = config.model

    @classmethod
    def load(cls, config, base_dir):
        return cls(config)

    def requests(self, config):
        return [Request(tuple(range(1, 5 + i))) for i in range(config.n)]

    def batches(self, requests, config):
        size = config.section().batch
        return [requests[i : i + size] for i in range(0, len(requests), size)]

    def generate(self, batch, config):
        start = time.perf_counter()
        out = [list(r.token_ids) * config.section().repeat for r in batch]
        wall = time.perf_counter() - start
        done = [Completion(len(r.token_ids), min(len(o), config.max_output_tokens), wall)
                for r, o in zip(batch, out)]
        return BatchResult(done, wall)

    def memory(self):
        return MemoryInfo(peak_mb=None, model_mb=None)

    def devices(self):
        return []

    def close(self):
        pass


def load_key(config):
    return config.model


def environment():
    return {"echo": "1.0"}


def study_problems(plan):
    """What "the installed echo" refuses, checked at collection."""
    from pytest_llem.errors import Problem
    return [
        Problem(field="echo.repeat", message=f"echo 1.0 repeats at most 10 times (point {p.id})",
                fix="use echo.repeat <= 10", line=p.line)
        for p in plan.points if p.config is not None and p.config.section().repeat > 10
    ]


def build_note(host):
    return "echo 1.0 (pure Python)"


ECHO = BackendSpec(
    name="echo",
    section=EchoSection,
    engine="echo_backend:EchoEngine",
    devices=frozenset({"cpu"}),
    precisions=frozenset({"fp32"}),
    hub_models=False,
    description="the echo test backend",
    collect_check="echo_backend:study_problems",
    build_note="echo_backend:build_note",
)
'''

CONFTEST = """
from echo_backend import ECHO

def pytest_llem_backends():
    return [ECHO]
"""

STUDY = """
name: echo
model: echo-model
backend: echo
device: cpu
precision: fp32
n: 4
max_output_tokens: 8
warmup: {n_warmup: 1}
window: {min_duration_s: 0}
validity: {min_window_s: 0, min_samples: 0}
execution: {n_cycles: 2}
echo: {batch: 2}
sweep:
  echo.repeat: [1, 3]
gate:
  budgets: {latency_p99_s: 600}
"""
