"""Is the server up? ``/health`` (vLLM) or ``/v1/models`` (any OpenAI-compatible server).

Synchronous and standard-library only (``urllib``), since the caller is synchronous pytest
code polling a server it has just started.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable

from pytest_llem.serving.errors import ServingError


def server_root(base_url: str) -> str:
    """``http://host:port`` for an API root such as ``http://host:port/v1``."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _get(url: str, timeout_s: float) -> str | None:
    """None when ``url`` answers 200, else what went wrong."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return None if response.status == 200 else f"HTTP {response.status} from {url}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} from {url}"
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return f"{url}: {reason}"


def health(base_url: str, timeout_s: float = 2.0) -> str | None:
    """None when the server is ready, else why not (the last check's words).

    ``/health`` answers first (vLLM's: 200 once the engine is up); a server without it
    (404) is asked for ``{base_url}/models`` instead.
    """
    problem = _get(server_root(base_url) + "/health", timeout_s)
    if problem is not None and problem.startswith("HTTP 404"):
        return _get(base_url.rstrip("/") + "/models", timeout_s)
    return problem


def wait_ready(
    base_url: str,
    deadline_s: float = 600.0,
    interval_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Poll ``health`` until the server is ready; return the seconds it took.

    Raises:
        ServingError: not ready within ``deadline_s``, with the last reason.
    """
    start = clock()
    while True:
        problem = health(base_url, timeout_s=min(5.0, max(interval_s, 0.5)))
        waited = clock() - start
        if problem is None:
            return waited
        if waited >= deadline_s:
            raise ServingError(
                f"the server at {base_url} was not ready after {waited:.1f} s "
                f"(deadline {deadline_s:g} s); last check: {problem}",
                fix="read the server's log; raise the readiness deadline if the model loads slowly",
            )
        sleep(min(interval_s, max(0.0, deadline_s - waited)))
