"""A backend's own server, for real: started on a free loopback port, ready by its health
endpoint, kept warm across items, its log kept, and reaped on every exit path (session end,
a crash, a hang cut by the item's timeout, a server that never gets ready, a port taken,
Ctrl-C). After every session: no server process left, no port left bound."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving.backend import CONFTEST, SERVED_BACKEND, SERVER, study

pytestmark = pytest.mark.timeout(300)


def servers_running() -> list[int]:
    """Pids of test servers started as a backend's own (``--port`` on the command line)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(SERVER).encode() in cmdline and b"--port" in cmdline:
            pids.append(int(entry.name))
    return pids


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def served(pytester: pytest.Pytester) -> Iterator[pytest.Pytester]:
    """A pytester dir with the ``served`` backend registered; after the test, no test server
    of a backend may still run (each is killed before failing the test)."""
    pytester.makepyfile(served_backend=SERVED_BACKEND)
    pytester.makeconftest(CONFTEST)
    before = set(servers_running())
    yield pytester
    left = [pid for pid in servers_running() if pid not in before]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"server processes left behind: {left}"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    env = {"PYTHONPATH": str(pytester.path)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        return pytester.runpytest_subprocess("--llem-results=out", "-p", "no:cacheprovider", *args)


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    return dict(json.loads((pytester.path / "out" / "report.json").read_text()))


def ports(items: list[dict[str, Any]]) -> set[int]:
    return {int(i["serving"]["server"]["base_url"].split(":")[2].split("/")[0]) for i in items}


def test_one_server_per_load_key_is_kept_warm_and_reaped_at_the_end(
    served: pytest.Pytester,
) -> None:
    served.makefile(
        ".yaml",
        study_serve=study(
            extra="execution: {n_cycles: 2}\nsweep:\n  served.first_token_ms: [10, 30]\n"
        ),
    )
    result = run(served)
    result.assert_outcomes(passed=4)
    items = report(served)["items"]
    servers = [i["serving"]["server"] for i in items]
    # Sequential cycles: each config's server starts once and serves its second cycle warm.
    assert [s["reused"] for s in servers] == [False, True, False, True]
    assert all((s["ours"] and s["start_s"] is None) or s["start_s"] > 0 for s in servers)
    assert len(ports(items)) == 2 and all(port_is_free(p) for p in ports(items))
    for s in servers:
        log = Path(s["log"])
        assert log.parent == served.path / "out" / "servers" and log.read_text().startswith("$ ")
    got = {i["point_id"]: i["metrics"]["ttft_ms_p50"] for i in items}
    assert got["served-first_token_ms-10"] < got["served-first_token_ms-30"]


def test_a_server_that_crashes_mid_item_fails_it_with_its_log_and_the_next_starts_fresh(
    served: pytest.Pytester,
) -> None:
    served.makefile(
        ".yaml",
        study_serve=study(
            extra="sweep:\n  served.options: [['--crash-after', '5'], []]\n"
            "execution: {n_cycles: 2}\n"
        ),
    )
    result = run(served)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        ["*the server exited with status 3 during the item; its log: *out/servers/served-*.log*"]
    )
    items = report(served)["items"]
    crashed = [i for i in items if i["outcome"] == "failed"]
    assert len({i["nodeid"] for i in crashed}) == 2  # both cycles: the second on a new server
    assert all("last lines" in (i["traceback"] or "") for i in crashed)


def test_a_hung_server_is_cut_by_the_item_timeout_and_killed(served: pytest.Pytester) -> None:
    served.makefile(
        ".yaml",
        study_serve=study(
            served="{options: ['--hang-after', '0']}",
            extra="execution: {timeout_s: 8}\n",
        ),
    )
    result = run(served)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout*"])


def test_a_server_that_never_gets_ready_names_its_log(served: pytest.Pytester) -> None:
    text = study(served="{options: ['--unhealthy']}").replace(
        "ready_timeout_s: 30", "ready_timeout_s: 3"
    )
    served.makefile(".yaml", study_serve=text)
    result = run(served)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*did not answer http://127.0.0.1:*/health within 3 s*its log: *out/servers/served-*"]
    )


def test_a_port_taken_before_the_server_binds_it(served: pytest.Pytester) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        # argparse keeps the last --port: the server tries the taken one and exits.
        served.makefile(".yaml", study_serve=study(served=f"{{options: ['--port', '{port}']}}"))
        result = run(served)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the server exited with status 1 before it was ready*"])


INTERRUPT = """
import os, signal
import pytest_llem.measure.serving as serving

original = serving.run_load
starts = []

def run_load(spec, on_edge=None, clock=None):
    def edge(name, t):
        on_edge(name, t)
        if name == "start":
            starts.append(t)
            if len(starts) == 2:  # the second item's steady state, its server running
                os.kill(os.getpid(), signal.SIGINT)
    return original(spec, on_edge=edge, clock=clock)

serving.run_load = run_load
"""


def test_ctrl_c_during_a_serving_item_reaps_the_server(served: pytest.Pytester) -> None:
    served.makeconftest(CONFTEST + INTERRUPT)
    served.makefile(".yaml", study_serve=study(extra="execution: {n_cycles: 2}\n"))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--llem-results=out"],
        cwd=served.path,
        env={**os.environ, "PYTHONPATH": str(served.path)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, proc.stdout + proc.stderr
    assert "KeyboardInterrupt" in proc.stdout
    data = report(served)
    assert data["session"]["status"] == "interrupted"
    assert [i["outcome"] for i in data["items"]] == ["passed"]  # the first item is kept
