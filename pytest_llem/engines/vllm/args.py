"""vLLM engine keys checked against the installed vLLM's ``EngineArgs`` (introspection).

Keys a study writes under ``vllm.engine`` beyond the declared ones are passed through; where
vLLM is importable its ``EngineArgs`` dataclass is the schema, so a misspelt key fails before
the model loads, with a hint, instead of deep inside vLLM. Where it is not (no
``vllm.engine.arg_utils``), the keys are accepted as written: collection already said so.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from collections.abc import Callable, Iterable
from types import ModuleType

from pytest_llem.errors import EngineError

Importer = Callable[[str], ModuleType]


def engine_arg_names(import_module: Importer = importlib.import_module) -> frozenset[str] | None:
    """Field names of ``vllm.engine.arg_utils.EngineArgs``; None when it cannot be imported."""
    try:
        module = import_module("vllm.engine.arg_utils")
        engine_args = module.EngineArgs
    except (ImportError, AttributeError):
        return None
    if dataclasses.is_dataclass(engine_args):
        return frozenset(f.name for f in dataclasses.fields(engine_args))
    return frozenset(inspect.signature(engine_args).parameters) - {"self"}


def check_engine_keys(keys: Iterable[str], names: frozenset[str] | None) -> None:
    """Raise an EngineError naming every key ``EngineArgs`` does not have (no-op for None)."""
    if names is None:
        return
    unknown = sorted(k for k in keys if k not in names)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(names), n=1, cutoff=0.7)
        if close:
            hints.append(f"{key} -> {close[0]}?")
    spelled = f"did you mean {', '.join(hints)} " if hints else ""
    raise EngineError(
        f"vllm.engine keys {unknown} are not fields of the installed vLLM's EngineArgs",
        f"{spelled}check the spelling against your vLLM version; keyword arguments of "
        "vllm.LLM() beyond EngineArgs go under passthrough_kwargs",
    )
