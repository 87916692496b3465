"""A backend whose own server is the known-delay test server, as a third party would write one
(``BackendSpec.server``): its module text, the conftest that registers it and a study. The
server lifecycle (start on a free port, readiness, reuse, crash, hang, interrupt) is tested
through it with real processes."""

from __future__ import annotations

from pathlib import Path

SERVER = Path(__file__).with_name("server.py")

SERVED_BACKEND = f'''
"""Backend ``served``: no offline engine; its server is tests/serving/server.py."""
import sys

from pydantic import BaseModel, ConfigDict, Field

from pytest_llem.serving.process import Launch
from pytest_llem.study.backends import BackendSpec


class ServedSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    first_token_ms: float = 20.0
    itl_ms: float = 5.0
    options: tuple[str, ...] = ()  # more server.py options (faults)


def launch(config, base_dir, port):
    section = config.section()
    argv = [
        sys.executable, {str(SERVER)!r}, "--port", str(port),
        "--first-token-ms", str(section.first_token_ms), "--itl-ms", str(section.itl_ms),
        "--model", config.model, *section.options,
    ]
    return Launch(argv=tuple(argv), served_model=config.model)


SERVED = BackendSpec(
    name="served",
    section=ServedSection,
    engine="served_backend:NoEngine",
    hub_models=False,
    server="served_backend:launch",
    description="a test server as the backend's own",
)
'''

CONFTEST = """
import pytest
from served_backend import SERVED

@pytest.hookimpl
def pytest_llem_backends():
    return [SERVED]
"""


def study(
    served: str = "{}", serve: str = "concurrency: 2, num_requests: 8", extra: str = ""
) -> str:
    """A serving study of backend ``served`` (8 requests at once, 2 at a time by default)."""
    return (
        "name: lifecycle\n"
        "model: test-model\n"
        "backend: served\n"
        "device: cpu\n"
        "n: 4\n"
        "dataset: prompts-en\n"
        "max_output_tokens: 8\n"
        f"served: {served}\n"
        f"serve: {{{serve}, ready_timeout_s: 30, request_timeout_s: 20}}\n" + extra
    )
