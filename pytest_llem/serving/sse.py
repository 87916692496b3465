"""Server-sent events of the OpenAI completions stream, parsed without I/O (pure).

A stream is ``data: {json}`` events separated by a blank line and ended by
``data: [DONE]``; lines starting with ``:`` are comments (keep-alive pings). vLLM's client
(``StreamedResponseHandler`` in vllm/benchmarks/lib/endpoint_request_func.py) splits on blank
lines and decodes UTF-8 incrementally, since a read can end inside an event or a character;
this decoder does the same.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from typing import Any

DONE = "[DONE]"


class EventDecoder:
    """Turns the bytes of a stream, as they arrive, into the data of complete events."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""

    def feed(self, data: bytes) -> list[str]:
        """The data payloads of the events completed by ``data`` (``[DONE]`` included)."""
        self._buffer += self._decoder.decode(data).replace("\r\n", "\n")
        payloads: list[str] = []
        while "\n\n" in self._buffer:
            event, self._buffer = self._buffer.split("\n\n", 1)
            payload = _data_of(event)
            if payload is not None:
                payloads.append(payload)
        return payloads

    def close(self) -> list[str]:
        """The last event, when the stream ended without its blank line."""
        rest = self._buffer + self._decoder.decode(b"", final=True)
        self._buffer = ""
        payload = _data_of(rest)
        return [payload] if payload is not None else []


def _data_of(event: str) -> str | None:
    """The event's data lines joined (SSE allows several), None for comments and blanks."""
    lines = [line[5:].removeprefix(" ") for line in event.split("\n") if line.startswith("data:")]
    return "\n".join(lines) if lines else None


@dataclass
class Chunk:
    """What one parsed completion chunk carries.

    Attributes:
        has_choice: the chunk carries a choice (vLLM's client times these; text may be empty).
        text: the choice's text.
        finish_reason: the choice's ``finish_reason``, if set.
        tokens: output tokens in the chunk per the logprobs it carries, else None.
        usage: the chunk's ``usage`` object (the final one, or continuous usage stats).
        token_ids: token ids, when the server returned them (vLLM's ``return_token_ids``, or
            logprobs tokens written ``token_id:N``).
        logprobs: the sampled tokens' logprobs.
        top_logprobs: the top-k logprobs per token.
        error: an error object the server sent inside the stream.
    """

    has_choice: bool = False
    text: str = ""
    finish_reason: str | None = None
    tokens: int | None = None
    usage: dict[str, Any] | None = None
    token_ids: list[int] | None = None
    logprobs: list[float | None] | None = None
    top_logprobs: list[dict[str, float]] | None = None
    error: str | None = None


def parse_chunk(payload: str) -> Chunk:
    """One event's JSON as a ``Chunk`` (raises ``ValueError`` on text that is not JSON)."""
    data = json.loads(payload)
    if not isinstance(data, dict):
        raise ValueError(f"a stream event that is not a JSON object: {payload[:80]!r}")
    chunk = Chunk(usage=data.get("usage") if isinstance(data.get("usage"), dict) else None)
    if "error" in data:
        chunk.error = json.dumps(data["error"])[:300]
    choices = data.get("choices")
    if not choices:
        return chunk
    choice = choices[0]
    chunk.has_choice = True
    chunk.text = choice.get("text") or ""
    chunk.finish_reason = choice.get("finish_reason")
    logprobs = choice.get("logprobs")
    if isinstance(logprobs, dict):
        _read_logprobs(chunk, logprobs)
    token_ids = choice.get("token_ids")
    if isinstance(token_ids, list):  # vLLM's return_token_ids
        chunk.token_ids = [int(t) for t in token_ids]
        chunk.tokens = len(token_ids)
    return chunk


def _read_logprobs(chunk: Chunk, logprobs: dict[str, Any]) -> None:
    """The completions API's logprobs: ``tokens``, ``token_logprobs``, ``top_logprobs``."""
    tokens = logprobs.get("tokens") or []
    chunk.tokens = len(tokens)
    chunk.logprobs = list(logprobs.get("token_logprobs") or [])
    top = logprobs.get("top_logprobs")
    if top is not None:
        chunk.top_logprobs = [dict(t or {}) for t in top]
    # vLLM's return_tokens_as_token_ids writes each token as "token_id:<id>".
    if tokens and all(isinstance(t, str) and t.startswith("token_id:") for t in tokens):
        chunk.token_ids = [int(t.split(":", 1)[1]) for t in tokens]
