"""The quality guard through real sessions on the tiny model: an A/A study passes it; a
candidate whose answers are half as long (and so faster) fails output_length; a candidate with
a broken weight fails token_agreement, naming the first diverging prompt, and perplexity;
baselines saved before the guard load and say they hold no quality data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.measure.test_quality import corrupted

StudyText = Callable[..., str]
GUARD = "quality: {token_agreement: 95%, output_length: true, perplexity: 5%}\n"
AA = "ab:\n  calibrate: true\n  reference: {}\n  candidate: {}\n"
LENIENT = "gate: {max_regression: {output_tokens_per_s: 90%}}\n"


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "out" / "report.json").read_text())  # type: ignore[no-any-return]


def write(pytester: pytest.Pytester, model: Path, fast_study: StudyText, extra: str) -> Path:
    text = fast_study(model, "execution: {n_cycles: 4}\n" + extra)
    text = text.replace("max_output_tokens: 4\n", "max_output_tokens: 8\n")
    return pytester.makefile(".yaml", study_q=text)


def quality_of(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = ("token_agreement", "output_length", "perplexity")
    return {c["metric"]: c for c in item["gate"]["comparisons"] if c["metric"] in names}


def test_an_aa_study_passes_and_every_report_shows_the_answers(
    pytester: pytest.Pytester,
    tiny_gpt2: Path,
    fast_study: StudyText,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(pytester, tiny_gpt2, fast_study, LENIENT + GUARD + AA)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest("--llem-results=out", "--junitxml=j.xml")
    result.assert_outcomes(passed=9)  # 8 arms and the pair
    items = report(pytester)["items"]
    for item in items:
        assert item["quality"]["output_tokens_per_request"] == 8.0
        assert item["quality"]["perplexity"] > 1.0 and len(item["quality"]["outputs"]) == 4
        checks = quality_of(item)
        assert {m: c["status"] for m, c in checks.items()} == dict.fromkeys(checks, "pass")
        assert list(checks) == [c["metric"] for c in item["gate"]["comparisons"][:3]]
    agreement = quality_of(items[0])["token_agreement"]["agreement"]
    assert agreement == {**agreement, "prompts": 16, "exact": 16, "diverged": 0}
    config = report(pytester)["configs"][0]["quality"]  # both arms: one config hash (A/A)
    assert config["output_tokens_per_request_mean"] == 8.0 and len(config["perplexity"]) == 8
    result.stdout.fnmatch_lines(
        [
            "*item*outcome*gate*energy J*quality*duration s*",
            "pytorch[[]ab[]]*token_agreement pass 16/16 agree, output_length pass 1.000x*",
            "pytorch-reference-c1*8.0 tok/req, ppl *, 16/16 agree*",
        ]
    )
    xml = (pytester.path / "j.xml").read_text()
    assert 'name="llem.quality.output_tokens_per_request" value="8.0"' in xml
    assert 'name="llem.gate.token_agreement.exact" value="16"' in xml
    assert "| quality |" in summary.read_text() and "16/16 agree" in summary.read_text()


def test_half_as_long_answers_fail_output_length_though_they_are_faster(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    # The candidate stops at half the tokens (a changed max-token default, an early EOS):
    # each request takes less time and energy, and its answers are not the reference's.
    half = "ab:\n  reference: {}\n  candidate: {max_output_tokens: 4}\n"
    gate = "gate: {max_regression: {latency_p50_s: 10%}}\n"
    write(pytester, tiny_gpt2, fast_study, gate + GUARD + half)
    result = pytester.runpytest("--llem-results=out")
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*regression gate failed for A/B pair pytorch (candidate against reference), its "
            "answers changed (token_agreement, output_length):",
            "*metric*reference*candidate*ratio*",
            "token_agreement *fail (0 of 16 prompts agree*prompt 0 at token 4 in cycle 1 "
            "(reference *, candidate (ended))*",
            "output_length *8 *4 *0.500 *0.9-1.1x*fail (4 output tokens per request against 8*",
            "*fix: the candidate's answers differ from the reference's*",
            "FAILED study_q.yaml::pytorch[[]ab[]] - regression gate failed for A/B pair*",
        ]
    )
    last = report(pytester)["items"][-1]
    comparisons = last["gate"]["comparisons"]
    assert [c["metric"] for c in comparisons[:3]] == [
        "token_agreement",
        "output_length",
        "perplexity",
    ]
    latency = next(c for c in comparisons if c["metric"] == "latency_p50_s")
    assert latency["ratio"] < 0.9 and latency["status"] != "fail"  # faster: no cost regression
    assert comparisons[2]["status"] == "pass"  # the same weights: the same perplexity


def test_a_broken_weight_fails_token_agreement_and_perplexity(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText, tmp_path: Path
) -> None:
    broken = corrupted(tiny_gpt2, tmp_path / "broken", "transformer.wte.weight", 10.0)
    arms = f"ab:\n  reference: {{}}\n  candidate: {{model: {broken}}}\n"
    write(pytester, tiny_gpt2, fast_study, LENIENT + GUARD + arms)
    study = pytester.path / "study_q.yaml"
    study.write_text(study.read_text().replace("n: 4\n", "n: 8\n"))
    result = pytester.runpytest("--llem-results=out", "--junitxml=j.xml")
    result.assert_outcomes(passed=8, failed=1)
    checks = quality_of(report(pytester)["items"][-1])
    agree = checks["token_agreement"]
    assert agree["status"] == "fail" and agree["agreement"]["diverged"] > 0
    first = next(d for d in agree["agreement"]["first"] if not d["close"])
    named = f"prompt {first['prompt']} at token {first['position']} in cycle {first['cycle']}"
    assert named in agree["note"]
    assert checks["perplexity"]["status"] == "fail" and checks["perplexity"]["ratio"] > 2
    result.stdout.fnmatch_lines(
        ["*its answers changed (token_agreement, perplexity):*", f"*{named}*"]
    )
    xml = (pytester.path / "j.xml").read_text()
    assert (
        f'name="llem.gate.token_agreement.first_divergence" '
        f'value="prompt {first["prompt"]} token {first["position"]}"' in xml
    )


def test_a_baseline_without_answers_is_no_pass_and_one_with_them_is_compared(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    plain = fast_study(tiny_gpt2, "execution: {n_cycles: 3}\n")
    pytester.makefile(".yaml", study_q=plain)
    save = ("--llem-results=out", "--llem-save-baseline=main", "--llem-save-baseline-force")
    pytester.runpytest(*save).assert_outcomes(passed=3)
    stored = json.loads((pytester.path / ".llem" / "baselines" / "main.json").read_text())
    assert stored["entries"][0]["quality"] is None

    # The same study with a quality: section: the same config (the section is no workload).
    pytester.makefile(".yaml", study_q=plain + GUARD)
    compare = ("--llem-results=out", "--llem-compare=main", "--llem-fail-on=latency_p50_s>900%")
    result = pytester.runpytest(*compare)
    result.assert_outcomes(failed=3)
    item = report(pytester)["items"][0]
    assert {c["status"] for c in quality_of(item).values()} == {"inconclusive"}
    assert "baseline 'main' has no quality data" in quality_of(item)["output_length"]["note"]
    result.stdout.fnmatch_lines(["*fix: save the baseline again with this study's quality:*"])

    pytester.runpytest(*save).assert_outcomes(passed=3)
    stored = json.loads((pytester.path / ".llem" / "baselines" / "main.json").read_text())
    assert stored["version"] == 3 and len(stored["entries"][0]["quality"]["outputs"]) == 4
    pytester.runpytest(*compare)
    for item in report(pytester)["items"]:
        checks = quality_of(item)
        assert {c["kind"] for c in checks.values()} == {"quality"}
        assert {c["status"] for c in checks.values()} == {"pass"}, checks
