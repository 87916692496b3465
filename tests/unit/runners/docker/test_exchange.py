"""Exchange files, the entrypoint's contract, and container settings."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.runners.docker import create
from pytest_llem.runners.docker.container_options import (
    DockerOptions,
    default_timeout_s,
    parse_volume,
)
from pytest_llem.runners.docker.exchange import MOUNT, ExchangeDir
from pytest_llem.runners.docker.images import default_image
from pytest_llem.runners.run_spec import RunSpec


def spec(tmp_path: Path, **kw: object) -> RunSpec:
    config = BuiltinConfig.model_validate({"model": "m", "device": "cpu", **kw})
    return RunSpec(
        nodeid="s::p",
        point_id="p",
        config_hash="0123456789abcdef",
        config=config,
        base_dir=str(tmp_path),
    )


def test_config_in_token_as_a_0600_file(tmp_path: Path) -> None:
    ex = ExchangeDir(spec(tmp_path), root=tmp_path)
    env = ex.write(ex.spec, {"HF_TOKEN": "hf_secret"})
    assert env["LLEM_CONFIG_PATH"] == f"{MOUNT}/0123456789abcdef_config.json"
    assert "hf_secret" not in json.dumps(env)
    token = ex.path / "0123456789abcdef_token"
    assert token.read_text() == "hf_secret" and stat.S_IMODE(token.stat().st_mode) == 0o600
    assert RunSpec.model_validate_json((ex.path / ex.config_name).read_text()).point_id == "p"
    ex.remove_token()
    assert not token.exists()
    nested = ExchangeDir(spec(tmp_path), root=tmp_path, nested=True)
    assert nested.container_path("x") == f"{MOUNT}/{nested.path.name}/x"


def test_entrypoint_writes_an_error_file_for_a_bad_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_llem.runners import entrypoint

    config = tmp_path / "abc_config.json"
    config.write_text("{not json")
    (tmp_path / "token").write_text("hf_x")
    monkeypatch.setenv("LLEM_CONFIG_PATH", str(config))
    monkeypatch.setenv("LLEM_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("LLEM_LOG_FILE", str(tmp_path / "abc_log.txt"))
    assert entrypoint.main() == 1
    error = json.loads((tmp_path / "abc_error.json").read_text())
    assert error["type"] == "ValidationError" and "Traceback" in error["traceback"]
    assert not (tmp_path / "token").exists()  # read and deleted
    assert os.environ.get("HF_TOKEN") == "hf_x"
    assert "ValidationError" in (tmp_path / "abc_log.txt").read_text()
    monkeypatch.delenv("HF_TOKEN")


def test_mounts_env_and_volumes(tmp_path: Path) -> None:
    model = tmp_path.parent / f"{tmp_path.name}-model"
    model.mkdir()
    opts = DockerOptions(hf_cache="/cache", volumes=("/data", "/a:/b:rw"))
    mounts = create.mounts_for(spec(tmp_path, model=str(model)), opts)
    assert mounts[str(tmp_path.resolve())] == {"bind": str(tmp_path), "mode": "ro"}
    assert mounts[str(model.resolve())] == {"bind": str(model), "mode": "ro"}
    assert mounts["/cache"] == {"bind": create.CONTAINER_HF_HOME, "mode": "rw"}
    assert mounts["/data"] == {"bind": "/data", "mode": "ro"} and mounts["/a"] == {
        "bind": "/b",
        "mode": "rw",
    }
    with pytest.raises(ValueError, match="expected /host/path"):
        parse_volume("relative:/x")
    assert default_timeout_s(BuiltinConfig(model="m", n=100, max_output_tokens=128)) > 1000


def test_device_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert create.device_requests(BuiltinConfig(model="m", device="cpu")) == []
    [all_gpus] = create.device_requests(BuiltinConfig(model="m", device="cuda"))
    assert all_gpus["Count"] == -1 and all_gpus["Capabilities"] == [["gpu"]]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-abc")
    [pinned] = create.device_requests(BuiltinConfig(model="m", device="cuda"))
    assert pinned["DeviceIDs"] == ["GPU-abc"]


def test_default_image_names() -> None:
    assert default_image("vllm", "0.1.0", 12) == "ghcr.io/llenergymeasure/vllm:0.1.0-cuda12"
    assert default_image("pytorch", "0.1.0", None) == "ghcr.io/llenergymeasure/pytorch:0.1.0"


def test_corrupt_exchange_files_are_a_clear_error(tmp_path: Path) -> None:
    from pytest_llem.runners.docker.errors import ContainerError
    from pytest_llem.runners.docker.outcome import read_outcome as collect

    ex = ExchangeDir(spec(tmp_path), root=tmp_path)
    (ex.path / "0123456789abcdef_result.json").write_text('{"metrics": {"truncat')
    with pytest.raises(ContainerError, match="CorruptExchangeFile: unreadable file") as err:
        collect(ex, ex.spec, 0, False, "")
    assert "exchange dir kept for debugging" in str(err.value) and ex.path.exists()
