"""Keep the loaded model across items whose load configuration is identical."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_llem.engines import loading
from pytest_llem.engines.engine import Engine
from pytest_llem.study.experiment import ExperimentConfig


@dataclass
class CachedEngine:
    """An engine handed out by the cache, with whether it was reused and its load time."""

    engine: Engine
    cached: bool
    load_s: float


class ModelCache:
    """One loaded model per worker; a different load key evicts the previous model first.

    Holding one model at a time keeps device memory predictable: a GPU never holds two
    studies' weights at once, so memory figures stay per-configuration.
    """

    def __init__(
        self,
        loader: Callable[[ExperimentConfig, Path | None], Engine] = loading.load_engine,
        key: Callable[[ExperimentConfig], str] = loading.load_key,
    ) -> None:
        self._loader = loader
        self._key = key
        self._current: tuple[str, Engine, float] | None = None
        self.loads = 0
        self.load_s = 0.0  # seconds spent loading, over every load

    def get(self, config: ExperimentConfig, base_dir: Path | None) -> CachedEngine:
        """The engine for ``config``, loading (and evicting) only when the key changes."""
        # Relative model paths resolve against the study's directory, so it is part of the key.
        key = f"{base_dir}|{self._key(config)}"
        if self._current is not None and self._current[0] == key:
            return CachedEngine(self._current[1], cached=True, load_s=self._current[2])
        self.clear()
        start = time.perf_counter()
        engine = self._loader(config, base_dir)
        load_s = time.perf_counter() - start
        self.loads += 1
        self.load_s += load_s
        self._current = (key, engine, load_s)
        return CachedEngine(engine, cached=False, load_s=load_s)

    def clear(self) -> None:
        """Close and forget the loaded engine."""
        if self._current is not None:
            _, engine, _ = self._current
            self._current = None
            engine.close()
