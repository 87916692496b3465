"""Keep secrets out of every artefact: values of secret-looking environment variables are
replaced wherever pytest-llem writes text (JSONL, JSON report, JUnit properties, failure text).

The token itself reaches containers only as a 0600 file (see runners/docker/exchange.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_SECRET_NAME = re.compile(r"(TOKEN|_KEY|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
MASK = "***"
MIN_LENGTH = 6  # shorter values ("1", "true") would mask innocent text


def looks_secret(name: str) -> bool:
    """True for an environment variable name that looks like it holds a secret."""
    return bool(_SECRET_NAME.search(name))


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names look secret, longest first."""
    source = os.environ if env is None else env
    values = {v for k, v in source.items() if looks_secret(k) and len(v) >= MIN_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret value masked."""
    for value in secret_values(env):
        text = text.replace(value, MASK)
    return text


def redact_data(data: Any, env: Mapping[str, str] | None = None) -> Any:
    """A JSON-like structure with every string masked."""
    if isinstance(data, str):
        return redact(data, env)
    if isinstance(data, dict):
        return {redact_data(k, env): redact_data(v, env) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(v, env) for v in data]
    return data
