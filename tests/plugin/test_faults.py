"""Faults: interrupts, crashes, OOM, dead workers, bad results dirs, secrets. Nothing measured
is lost and the report stays complete."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

StudyText = Callable[..., str]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_mid_study_keeps_finished_items_and_writes_the_report(
    pytester: pytest.Pytester, interrupt_study: Callable[..., Any], sig: signal.Signals
) -> None:
    returncode, stdout, lines = interrupt_study(sig)
    assert returncode == 2, stdout
    assert 1 <= len(lines) < 6
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert report["session"]["status"] == "interrupted"
    assert [i["nodeid"] for i in report["items"]][: len(lines)] == [i["nodeid"] for i in lines]
    assert all(i["metrics"]["output_tokens"] > 0 for i in lines if i["outcome"] == "passed")


def test_simulated_cuda_oom_fails_the_item_and_the_session_goes_on(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makeconftest(
        "import pytest, torch, transformers\n"
        "@pytest.fixture(autouse=True)\n"
        "def oom_on_n2(request, monkeypatch):\n"
        "    if request.node.name.endswith('n2'):\n"
        "        def boom(self, *a, **k):\n"
        "            raise torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')\n"
        "        monkeypatch.setattr(transformers.GenerationMixin, 'generate', boom)\n"
    )
    pytester.makefile(".yaml", study_oom=fast_study(tiny_gpt2, "sweep:\n  n: [1, 2, 3]\n"))
    result = pytester.runpytest("--llem-results=out")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*EngineError: CUDA out of memory*", "*fix: lower batch_size or max tokens*"]
    )
    items = json.loads((pytester.path / "out" / "report.json").read_text())["items"]
    assert [i["outcome"] for i in items] == ["passed", "failed", "passed"]


def test_a_dead_xdist_worker_becomes_an_error_item(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makeconftest(
        "import os\n"
        "def pytest_runtest_call(item):\n"
        "    if item.name.endswith('n2') and os.environ.get('PYTEST_XDIST_WORKER'):\n"
        "        os._exit(13)\n"
    )
    pytester.makefile(".yaml", study_crash=fast_study(tiny_gpt2, "sweep:\n  n: [1, 2, 3]\n"))
    result = pytester.runpytest_subprocess(
        "-n", "2", "--max-worker-restart=2", "--llem-results=out"
    )
    outcomes = result.parseoutcomes()
    # xdist retries a crashing item on replacement workers until --max-worker-restart.
    assert outcomes["passed"] == 2 and outcomes["failed"] >= 1
    result.stdout.fnmatch_lines(
        ["*worker 'gw?' crashed while running 'study_crash.yaml::pytorch-n2'*"]
    )
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    ids = [i["point_id"] for i in report["items"]]
    assert sorted(ids) == ["pytorch-n1", "pytorch-n2", "pytorch-n3"]  # one entry per item
    items = {i["point_id"]: i for i in report["items"]}
    assert items["pytorch-n2"]["outcome"] == "error" and "crashed" in items["pytorch-n2"]["message"]


def test_unwritable_or_full_results_dir_stops_before_measuring(
    pytester: pytest.Pytester,
    tiny_gpt2: Path,
    fast_study: StudyText,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makefile(".yaml", study_w=fast_study(tiny_gpt2))
    blocker = pytester.path / "not-a-dir"
    blocker.write_text("a file where the results dir should be")
    result = pytester.runpytest(f"--llem-results={blocker}/out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        ["*pytest-llem: results directory *not-a-dir/out is not writable*--llem-results DIR*"]
    )
    result.assert_outcomes()  # nothing ran
    monkeypatch.setenv("LLEM_MIN_FREE_BYTES", str(10**18))
    result = pytester.runpytest("--llem-results=out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*MB free (need 1000000000000 MB)*"])


def test_secrets_never_reach_an_artefact(
    pytester: pytest.Pytester,
    tiny_gpt2: Path,
    fast_study: StudyText,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    canary, key = "hf_CANARY_1a2b3c4d5e", "sk-KEYCANARY-9z8y7x"
    monkeypatch.setenv("HF_TOKEN", canary)
    monkeypatch.setenv("MY_SERVICE_API_KEY", key)
    # The key also sits in a config value (as a careless study might have it): the effective
    # config in the report must not carry it.
    pytester.makefile(
        ".yaml",
        study_s=fast_study(
            tiny_gpt2,
            (
                f"experiments:\n  - {{n: 1}}\n  - {{passthrough_kwargs: {{note_x: '{key}'}}, n: 2}}\n"
            ),
        ),
    )
    result = pytester.runpytest(
        "--llem-results=out", "--junitxml=junit.xml", "-v", "--llem-bmf=bmf.json"
    )
    result.assert_outcomes(passed=1, failed=1)  # note_x is no generate() argument
    files = [
        p
        for p in [
            *(pytester.path / "out").rglob("*"),
            pytester.path / "junit.xml",
            pytester.path / "bmf.json",
        ]
        if p.is_file()
    ]
    assert len(files) >= 4
    for path in files:
        text = path.read_text(errors="replace")
        assert canary not in text and key not in text, path
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert report["items"][1]["config"]["passthrough_kwargs"] == {"note_x": "***"}
    terminal = result.stdout.str() + result.stderr.str()
    assert canary not in terminal and key not in terminal
