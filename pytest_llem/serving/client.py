"""The load generator: streamed OpenAI completions on a schedule, every chunk timestamped.

It sends as ``vllm bench serve`` does (vllm/benchmarks/serve.py and
vllm/benchmarks/lib/endpoint_request_func.py): one aiohttp session whose connector allows
``concurrency`` connections (no limit without a cap), a semaphore for the cap, each request
released by the arrival schedule and posted when the semaphore lets it, ``stream: true`` with
``stream_options.include_usage``. Unlike vLLM's client it bounds each request by a timeout
and the run by a deadline, records every failure on its request instead of a traceback, and
stops early only when the server is gone (a refused connection on loopback).

``on_edge(name, t)`` runs synchronously inside the event loop at the moments the meters are
to be read: ``run_start`` (before the first send), ``start`` (the k-th first token, so the
window opens on the very chunk that completes it), ``end`` (the m-th request over) and
``run_end`` (after the last). While it runs no chunk is read, so it should take milliseconds;
its duration is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from pytest_llem.serving.arrivals import send_offsets
from pytest_llem.serving.errors import ServingError
from pytest_llem.serving.prometheus import MetricsPoller
from pytest_llem.serving.records import LoadRun, RequestRecord
from pytest_llem.serving.spec import LoadSpec, check
from pytest_llem.serving.sse import DONE, EventDecoder, parse_chunk

EdgeCallback = Callable[[str, float], None]

__all__ = ["EdgeCallback", "LoadSpec", "check", "run_load"]


def run_load(
    spec: LoadSpec,
    on_edge: EdgeCallback | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> LoadRun:
    """Run the load on an event loop of its own and return what was recorded.

    Raises:
        ServingError: aiohttp missing, a spec that cannot run, the server gone mid-run, or a
            run in which every request failed (``.run`` holds the records).
    """
    aiohttp = _import_aiohttp()
    check(spec)
    runner = _Runner(spec, aiohttp, clock, on_edge)
    loop = asyncio.new_event_loop()
    try:
        run = loop.run_until_complete(runner.run())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    if runner.edge_error is not None:
        raise runner.edge_error
    problem = _problem(run)
    if problem is not None:
        raise ServingError(problem, fix=_fix(run), run=run)
    return run


def _import_aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise ServingError(
            "serving items need aiohttp, which is not installed",
            fix='pip install "pytest-llem[serve]"',
        ) from exc
    return aiohttp


def _problem(run: LoadRun) -> str | None:
    if run.stopped is not None and run.stopped.startswith("server gone"):
        return f"the serving run stopped: {run.stopped}"
    sent = run.sent
    if not sent:
        return f"no request was sent ({run.stopped or 'nothing due'})"
    if not run.completed:
        first = next(r.error for r in sent if r.error is not None)
        return f"every one of the {len(sent)} requests sent errored; the first: {first}"
    return None


def _fix(run: LoadRun) -> str:
    if run.stopped is not None and run.stopped.startswith("server gone"):
        return "check the server's log: it stopped listening during the run"
    return "check the endpoint, model name and request fields against the server's log"


class _Runner:
    """One run's state: records, counters for the edges, the stop signal."""

    def __init__(
        self, spec: LoadSpec, aiohttp: Any, clock: Callable[[], float], on_edge: EdgeCallback | None
    ) -> None:
        self.spec = spec
        self.aiohttp = aiohttp
        self.clock = clock
        self.on_edge = on_edge
        self.url = spec.base_url.rstrip("/") + "/completions"
        self.headers = {"Content-Type": "application/json", **spec.headers}
        self.timeout = aiohttp.ClientTimeout(total=spec.request_timeout_s)
        self.edges: dict[str, float] = {}
        self.edge_call_s: dict[str, float] = {}
        self.edge_error: BaseException | None = None
        self.first_count = 0
        self.done_count = 0
        self.stopped: str | None = None
        self.stop_event: asyncio.Event | None = None
        self.sem: asyncio.Semaphore | None = None

    async def run(self) -> LoadRun:
        spec = self.spec
        self.stop_event = asyncio.Event()
        self.sem = asyncio.Semaphore(spec.concurrency) if spec.concurrency else None
        payloads = [spec.payload(i) for i in range(max(spec.n, spec.warmup_requests))]
        offsets = send_offsets(spec.n, spec.rate, spec.arrival, spec.burstiness, spec.seed)
        connector = self.aiohttp.TCPConnector(
            limit=spec.concurrency or 0, limit_per_host=spec.concurrency or 0, keepalive_timeout=60
        )
        async with self.aiohttp.ClientSession(connector=connector) as session:
            warmup = await self._warmup(session, payloads)
            poller = None
            if spec.metrics_url:
                poller = MetricsPoller(spec.metrics_url, spec.metrics_interval_s, clock=self.clock)
                poller.start()
            cpu0, loop_cpu0 = time.process_time(), time.thread_time()
            origin = self.clock()
            self._fire("run_start", origin)
            records = await self._measure(session, payloads, offsets, origin)
            end = max([origin, *(r.done_s for r in records if r.done_s is not None)])
            self._fire("run_end", self.clock())
            cpu, loop_cpu = time.process_time() - cpu0, time.thread_time() - loop_cpu0
            gauges = poller.stop() if poller is not None else None
        return LoadRun(
            records=records, target_rate=spec.rate, arrival=spec.arrival,
            burstiness=spec.burstiness, concurrency=spec.concurrency, start_s=origin, end_s=end,
            cpu_s=cpu, loop_cpu_s=loop_cpu, warmup=warmup, edges=self.edges,
            edge_call_s=self.edge_call_s, stopped=self.stopped, gauges=gauges,
        )  # fmt: skip

    async def _warmup(self, session: Any, payloads: list[bytes]) -> list[RequestRecord]:
        records = [
            RequestRecord(index=i, due_s=self.clock()) for i in range(self.spec.warmup_requests)
        ]
        await asyncio.gather(
            *(self._request(session, r, payloads[r.index], False) for r in records)
        )
        return records

    async def _measure(
        self, session: Any, payloads: list[bytes], offsets: list[float], origin: float
    ) -> list[RequestRecord]:
        spec = self.spec
        deadline = origin + spec.deadline_s if spec.deadline_s is not None else None
        records = [RequestRecord(index=i, due_s=origin + off) for i, off in enumerate(offsets)]
        tasks: list[asyncio.Task[None]] = []
        for rec in records:
            if deadline is not None and rec.due_s > deadline:
                self._stop("deadline")
            if self.stopped is not None or not await self._wait_until(rec.due_s):
                break
            tasks.append(
                asyncio.create_task(self._request(session, rec, payloads[rec.index], True))
            )
        await self._settle(tasks, deadline)
        for rec in records:
            if rec.send_s is None and rec.error is None:
                rec.error = f"not sent: {self.stopped}"
        return records

    async def _wait_until(self, due: float) -> bool:
        """Sleep until ``due``; False if the run was stopped meanwhile."""
        assert self.stop_event is not None
        remaining = due - self.clock()
        if remaining > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), remaining)
        return not self.stop_event.is_set()

    async def _settle(self, tasks: list[asyncio.Task[None]], deadline: float | None) -> None:
        """Wait for the sent requests; past the deadline or on a stop, cancel the rest."""
        assert self.stop_event is not None
        if not tasks:
            return
        everything = asyncio.gather(*tasks, return_exceptions=True)
        stop = asyncio.create_task(self.stop_event.wait())
        timeout = None if deadline is None else max(0.0, deadline - self.clock())
        waiters: set[asyncio.Future[Any]] = {everything, stop}
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not everything.done():
            self._stop("deadline")
            for task in tasks:
                task.cancel()
        await asyncio.gather(everything, return_exceptions=True)
        stop.cancel()
        await asyncio.gather(stop, return_exceptions=True)

    def _stop(self, why: str) -> None:
        if self.stopped is None:
            self.stopped = why
        assert self.stop_event is not None
        self.stop_event.set()

    async def _request(self, session: Any, rec: RequestRecord, body: bytes, measured: bool) -> None:
        sem = self.sem if self.sem is not None else contextlib.nullcontext()
        try:
            async with sem:
                if self.stopped is not None:
                    return
                rec.send_s = self.clock()
                await self._post(session, rec, body, measured)
        except asyncio.CancelledError:
            if rec.send_s is not None:
                rec.cancelled = True
                rec.error = rec.error or f"cancelled: {self.stopped}"
            raise
        except asyncio.TimeoutError:
            rec.error = f"timeout: no complete answer within {self.spec.request_timeout_s} s"
        except self.aiohttp.ClientConnectorError as exc:
            rec.error = f"connection refused: {exc}"
            self._stop(f"server gone: {rec.error}")
        except (
            self.aiohttp.ClientPayloadError,
            self.aiohttp.ServerDisconnectedError,
            self.aiohttp.ClientOSError,
        ) as exc:
            rec.error = f"connection closed mid-stream after {len(rec.chunk_s)} chunks: {exc!r}"
        except self.aiohttp.ClientError as exc:
            rec.error = f"{type(exc).__name__}: {exc}"
        except ValueError as exc:
            rec.error = f"unreadable stream: {exc}"
        finally:
            if rec.send_s is not None:
                rec.done_s = self.clock()
                if measured and self.stopped is None:
                    self._finished(rec.done_s)

    async def _post(self, session: Any, rec: RequestRecord, body: bytes, measured: bool) -> None:
        async with session.post(
            self.url, data=body, headers=self.headers, timeout=self.timeout
        ) as response:
            rec.status = response.status
            if response.status != 200:
                excerpt = (await response.text(errors="replace"))[:300]
                rec.error = f"HTTP {response.status}: {excerpt}"
                return
            decoder = EventDecoder()
            async for data in response.content.iter_any():
                now = self.clock()
                for payload in decoder.feed(data):
                    self._event(rec, payload, now, measured)
            for payload in decoder.close():
                self._event(rec, payload, self.clock(), measured)
        if rec.first_token_s is None and rec.error is None:
            rec.error = "the stream ended without a token"

    def _event(self, rec: RequestRecord, payload: str, now: float, measured: bool) -> None:
        if payload == DONE:
            return
        chunk = parse_chunk(payload)
        if chunk.error is not None and rec.error is None:
            rec.error = f"error in the stream: {chunk.error}"
        usage = chunk.usage or {}
        if chunk.has_choice:
            tokens = chunk.tokens if chunk.tokens is not None else 1
            if self.spec.continuous_usage and "completion_tokens" in usage:
                tokens = max(0, int(usage["completion_tokens"]) - sum(rec.chunk_tokens))
            rec.chunk_s.append(now)
            rec.chunk_tokens.append(tokens)
            rec.end_s = now
            rec.text += chunk.text
            rec.finish_reason = chunk.finish_reason or rec.finish_reason
            _extend(rec, chunk.token_ids, chunk.logprobs, chunk.top_logprobs)
            if rec.first_token_s is None:
                rec.first_token_s = now
                if measured:
                    self._first_token(now)
        if "completion_tokens" in usage:
            rec.output_tokens = int(usage["completion_tokens"])
        if usage.get("prompt_tokens") is not None:
            rec.prompt_tokens = int(usage["prompt_tokens"])

    def _first_token(self, now: float) -> None:
        self.first_count += 1
        if self.spec.window is not None and self.first_count == self.spec.window[0]:
            self._fire("start", now)

    def _finished(self, now: float) -> None:
        self.done_count += 1
        if self.spec.window is not None and self.done_count == self.spec.window[1]:
            if "start" not in self.edges:
                # The end came first (too few requests): a zero-length window, as ML.ENERGY's
                # tracker does, so the meters' reads still pair up; window.py flags it.
                self._fire("start", now)
            self._fire("end", now)

    def _fire(self, name: str, t: float) -> None:
        self.edges[name] = t
        if self.on_edge is None or self.edge_error is not None:
            return
        before = self.clock()
        try:
            self.on_edge(name, t)
        except Exception as exc:  # the caller's meters failed: stop, and raise it after
            self.edge_error = exc
            self._stop(f"on_edge({name!r}) raised {type(exc).__name__}")
        self.edge_call_s[name] = self.clock() - before


def _extend(
    rec: RequestRecord,
    token_ids: list[int] | None,
    logprobs: list[float | None] | None,
    top: list[dict[str, float]] | None,
) -> None:
    if token_ids is not None:
        rec.token_ids = (rec.token_ids or []) + token_ids
    if logprobs is not None:
        rec.logprobs = (rec.logprobs or []) + logprobs
    if top is not None:
        rec.top_logprobs = (rec.top_logprobs or []) + top
