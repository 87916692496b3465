"""The runner runs the image's own Python (its CMD), here an image that has only ``python3``."""

from __future__ import annotations

import io
import json
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.containers.conftest import TEST_IMAGE, host_mounts

pytestmark = pytest.mark.containers


@pytest.fixture
def python3_only_image(docker_api: Any, pytester: pytest.Pytester) -> Iterator[str]:
    """The test image with a PATH holding one ``python3`` (this venv's) and no ``python``."""
    pybin = pytester.path / "pybin"
    pybin.mkdir()
    python3 = pybin / "python3"
    python3.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python3.chmod(python3.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    tag = f"localhost/llem-test-python3:{pytester.path.name.lower()[-40:]}"
    dockerfile = f'FROM {TEST_IMAGE}\nENV PATH={pybin}\nCMD ["python3", "-m", "pytest_llem.runners.entrypoint"]\n'
    docker_api.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    yield tag
    docker_api.images.remove(tag, force=True)


def test_an_image_with_only_python3_runs_through_its_cmd(
    pytester: pytest.Pytester,
    python3_only_image: str,
    tiny_gpt2: Path,
    fast_study: Callable[..., str],
) -> None:
    volumes = "\n".join(f"    {p}" for p in [*host_mounts(), str(pytester.path)])
    # No llem_docker_python: the runner must find the interpreter in the image.
    pytester.makeini(f"[pytest]\nllem_docker_hf_cache = none\nllem_docker_volumes =\n{volumes}\n")
    pytester.makefile(".yaml", study_p=fast_study(tiny_gpt2))
    result = pytester.runpytest("--llem-results=out", f"--llem-runner=docker:{python3_only_image}")
    result.assert_outcomes(passed=1)
    item = json.loads((pytester.path / "out" / "report.json").read_text())["items"][0]
    assert item["runner"]["type"] == "docker" and item["metrics"]["output_tokens"] > 0
