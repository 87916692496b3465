"""A small OpenAI-compatible completions server whose delays are known, for the client's tests.

Run as a subprocess: ``python server.py [options]`` binds 127.0.0.1 on a free port and prints
``PORT <n>`` on stdout once it listens. Each streamed request gets its first token
``--first-token-ms`` after it arrives and each later one ``--itl-ms`` after the one before,
on an absolute schedule (sleep overshoot does not accumulate). Output length: ``max_tokens``,
or ``--eos-after`` tokens when set and neither ``ignore_eos`` nor a larger ``min_tokens``
asks for more. ``--max-num-seqs`` makes later requests wait for a slot, as continuous
batching does. ``/metrics`` exposes vLLM's gauges (running, waiting, KV-cache usage as
running / max-num-seqs) and ``llem_test:max_in_flight`` (the most requests in flight at
once). Faults by arrival order (0-based): ``--fault status500:3`` (answer 500),
``--fault close:2`` (close the connection after ``--close-after`` tokens), ``--fault hang:1``
(never answer); ``--fail-all 503`` answers every request so. As a backend's own server
(tests/serving/backend.py): ``--port`` to listen on, ``--startup-s`` before it listens,
``--unhealthy`` (``/health`` answers 503 forever), ``--crash-after N`` (the process exits
when request N arrives), ``--hang-after N`` (from request N on, nothing is answered).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class State:
    """The server's settings and counters."""

    first_token_s: float
    itl_s: float
    eos_after: int | None
    max_num_seqs: int | None
    faults: dict[int, str]
    fail_all: int | None
    metrics: bool
    model: str
    close_after: int = 2
    arrived: int = 0
    in_flight: int = 0
    running: int = 0
    max_in_flight: int = 0
    slots: asyncio.Semaphore | None = None
    hung: list[asyncio.Event] = field(default_factory=list)


def _length(body: dict[str, Any], state: State) -> int:
    max_tokens = int(body.get("max_tokens") or 16)
    if state.eos_after is None or body.get("ignore_eos"):
        return max_tokens
    return min(max_tokens, max(state.eos_after, int(body.get("min_tokens") or 0)))


def _chunk(i: int, n: int, body: dict[str, Any], model: str) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "text": f" t{i}",
        "logprobs": None,
        "finish_reason": None
        if i < n - 1
        else ("length" if n == body.get("max_tokens") else "stop"),
    }
    if body.get("logprobs") is not None:
        k = int(body["logprobs"])
        top = {f" t{i}": -0.5, **{f" alt{j}": -1.0 - j for j in range(max(k - 1, 0))}}
        choice["logprobs"] = {
            "tokens": [f" t{i}"], "token_logprobs": [-0.5], "top_logprobs": [top], "text_offset": [0],
        }  # fmt: skip
    if body.get("return_token_ids"):
        choice["token_ids"] = [100 + i]
    return {"id": "cmpl-test", "object": "text_completion", "model": model, "choices": [choice]}


async def completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/completions: the stream, on the known schedule."""
    state: State = request.app["state"]
    arrived = time.perf_counter()
    index = state.arrived
    state.arrived += 1
    body = await request.json()
    args = request.app["args"]
    if args.crash_after is not None and index >= args.crash_after:
        os._exit(3)  # a crash: no reply, no cleanup, the connections drop
    fault = state.faults.get(index, "")
    if args.hang_after is not None and index >= args.hang_after:
        fault = "hang"
    if state.fail_all is not None or fault == "status500":
        status = state.fail_all or 500
        return web.json_response({"error": {"message": f"injected failure {index}"}}, status=status)
    if fault == "hang":
        event = asyncio.Event()
        state.hung.append(event)
        await event.wait()
    state.in_flight += 1
    state.max_in_flight = max(state.max_in_flight, state.in_flight)
    try:
        if state.slots is not None:
            async with state.slots:
                return await _stream(request, state, body, arrived, fault)
        return await _stream(request, state, body, arrived, fault)
    finally:
        state.in_flight -= 1


async def _stream(
    request: web.Request, state: State, body: dict[str, Any], arrived: float, fault: str
) -> web.StreamResponse:
    state.running += 1
    try:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        n = _length(body, state)
        close_after = state.close_after if fault == "close" else None
        start = max(arrived, time.perf_counter())
        for i in range(n):
            if close_after is not None and i == close_after:
                assert request.transport is not None
                request.transport.abort()  # the connection dies mid-stream
                return response
            due = start + state.first_token_s + i * state.itl_s
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await response.write(
                f"data: {json.dumps(_chunk(i, n, body, state.model))}\n\n".encode()
            )
        prompt = body.get("prompt", "")
        usage = {"prompt_tokens": len(prompt) if isinstance(prompt, list) else len(prompt.split())}
        usage.update(completion_tokens=n, total_tokens=usage["prompt_tokens"] + n)
        if (body.get("stream_options") or {}).get("include_usage"):
            last = {"id": "cmpl-test", "object": "text_completion", "choices": [], "usage": usage}
            await response.write(f"data: {json.dumps(last)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
    finally:
        state.running -= 1


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: vLLM-like gauges of this server's requests."""
    state: State = request.app["state"]
    if not state.metrics:
        raise web.HTTPNotFound()
    cap = state.max_num_seqs
    waiting = max(0, state.in_flight - state.running)
    kv = state.running / cap if cap else 0.0
    labels = 'engine="0",model_name="test"'
    text = (
        "# TYPE vllm:num_requests_running gauge\n"
        f"vllm:num_requests_running{{{labels}}} {float(state.running)}\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        f"vllm:num_requests_waiting{{{labels}}} {float(waiting)}\n"
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        f"vllm:kv_cache_usage_perc{{{labels}}} {kv}\n"
        "# TYPE llem_test:max_in_flight gauge\n"
        f"llem_test:max_in_flight {float(state.max_in_flight)}\n"
        "# TYPE llem_test:arrived counter\n"
        f"llem_test:arrived_total {float(state.arrived)}\n"
    )
    return web.Response(text=text, content_type="text/plain")


async def health(request: web.Request) -> web.Response:
    """GET /health (503 forever with ``--unhealthy``)."""
    if request.app["args"].unhealthy:
        return web.Response(status=503, text="loading")
    return web.Response(text="")


async def models(request: web.Request) -> web.Response:
    """GET /v1/models."""
    model = request.app["state"].model
    return web.json_response({"object": "list", "data": [{"id": model, "root": model}]})


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--first-token-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--eos-after", type=int, default=None)
    parser.add_argument("--max-num-seqs", type=int, default=None)
    parser.add_argument("--fault", action="append", default=[], help="KIND:INDEX")
    parser.add_argument("--close-after", type=int, default=2)
    parser.add_argument("--fail-all", type=int, default=None, help="answer every request so")
    parser.add_argument("--no-metrics", action="store_true")
    parser.add_argument("--model", default="test-model")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--startup-s", type=float, default=0.0)
    parser.add_argument("--unhealthy", action="store_true")
    parser.add_argument("--crash-after", type=int, default=None)
    parser.add_argument("--hang-after", type=int, default=None)
    return parser.parse_args(argv)


def make_app(args: argparse.Namespace) -> web.Application:
    faults = {}
    for spec in args.fault:
        kind, _, index = spec.partition(":")
        faults[int(index)] = kind
    state = State(
        args.first_token_ms / 1000.0, args.itl_ms / 1000.0, args.eos_after, args.max_num_seqs,
        faults, args.fail_all, not args.no_metrics, args.model, args.close_after,
    )  # fmt: skip
    app = web.Application()
    app["state"] = state
    app["args"] = args
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    return app


async def serve(args: argparse.Namespace) -> None:
    app = make_app(args)
    state: State = app["state"]
    if args.max_num_seqs:
        state.slots = asyncio.Semaphore(args.max_num_seqs)
    await asyncio.sleep(args.startup_s)  # a server that takes its time to load
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(sys.argv[1:])))
