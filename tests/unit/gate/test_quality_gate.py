"""The quality: section in the grammar and the gate: its forms and errors, the config hash,
greedy decoding, arms, baselines with and without answers, and A/B pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.gate.apply import Gate, judge_pair
from pytest_llem.gate.baseline_file import BaselineEntry, BaselineFile, build, load
from pytest_llem.results.records import ExperimentResult, Metrics, PromptOutput, QualityRecord
from pytest_llem.study.identity import short_hash
from pytest_llem.study.quality import QualityConfig
from pytest_llem.study.sections import AbConfig, GateConfig

CHECKS = QualityConfig(token_agreement="95%", output_length=True)
METRICS = {"output_tokens_per_s": 100.0}


def answers(tokens: list[list[int]], per_request: float = 4.0) -> QualityRecord:
    outputs = [PromptOutput(tokens=t, top=[[x] for x in t]) for t in tokens]
    return QualityRecord(output_tokens_per_request=per_request, outputs=outputs, top_k=1)


@pytest.mark.parametrize(
    ("raw", "band"),
    [(True, (0.9, 1.1)), ("20%", (0.8, 1.2)), ([0.5, 2.0], (0.5, 2.0)), (None, None)],
)
def test_output_length_forms(raw: object, band: tuple[float, float] | None) -> None:
    assert QualityConfig.model_validate({"output_length": raw}).length_band == band


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"token_agreement": "150%"}, "150% is not a share of prompts"),
        ({"token_agreement": 3}, "3 is not a share of prompts"),
        ({"output_length": [1.2, 1.5]}, "not a band around the reference"),
        ({"output_length": "0.1"}, "is not an output-length band"),
        ({"perplexity": 0.05}, "perplexity must be a percentage"),
        ({"top_k": 50}, "less than or equal to 20"),
        ({"tokens_agreement": "95%"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_values_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        QualityConfig.model_validate(raw)


def test_the_section_is_not_the_workload() -> None:
    plain = BuiltinConfig.model_validate({"model": "m"})
    guarded = BuiltinConfig.model_validate(
        {"model": "m", "quality": {"token_agreement": "95%", "perplexity": "2%"}}
    )
    assert short_hash(plain.workload()) == short_hash(guarded.workload())


def test_agreement_needs_greedy_decoding_and_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"quality\.token_agreement compares greedy outputs"):
        BuiltinConfig.model_validate(
            {"model": "m", "decoder": {"temperature": 0.7}, "quality": {"token_agreement": 0.9}}
        )
    sampled = {"model": "m", "decoder": {"temperature": 0.7}, "quality": {"output_length": True}}
    assert BuiltinConfig.model_validate(sampled).quality is not None  # a length band may sample


def test_an_arm_cannot_set_its_own_quality_limits() -> None:
    with pytest.raises(ValidationError, match="quality limits judge the pair"):
        AbConfig.model_validate({"reference": {}, "candidate": {"quality.token_agreement": "50%"}})


def result(cycle: int, record: QualityRecord | None) -> ExperimentResult:
    m = Metrics(
        output_tokens=16,
        input_tokens=8,
        requests=4,
        duration_s=1.0,
        output_tokens_per_s=100.0,
        input_tokens_per_s=50.0,
    )
    return ExperimentResult(
        nodeid=f"s::p-c{cycle}",
        outcome="passed",
        study="s",
        study_hash="h",
        point_id="p",
        config_hash="c1",
        cycle=cycle,
        config={},
        metrics=m,
        hardware="cpu:x",
        quality=record,
    )


def test_a_baseline_stores_the_first_cycles_outputs_and_the_mean_figures() -> None:
    first = answers([[1, 2], [3, 4]], 4.0).model_copy(update={"perplexity": 10.0})
    second = answers([[1, 2], [3, 4]], 6.0).model_copy(update={"perplexity": 12.0})
    entry = build("main", [result(2, second), result(1, first)]).entries[0]
    assert entry.quality is not None
    assert entry.quality.output_tokens_per_request == 5.0 and entry.quality.perplexity == 11.0
    assert [o.tokens for o in entry.quality.outputs] == [[1, 2], [3, 4]]
    assert build("main", [result(1, None)]).entries[0].quality is None


def test_a_baseline_saved_before_the_quality_checks_loads_and_is_not_a_pass(
    tmp_path: Path,
) -> None:
    old = {
        "format": "pytest-llem-baseline",
        "version": 2,
        "name": "old",
        "created_at": "2025-01-01T00:00:00+00:00",
        "entries": [
            {
                "config_hash": "c1",
                "hardware": "cpu:x",
                "point_id": "p",
                "study": "s",
                "samples": {"output_tokens_per_s": [100.0, 101.0, 99.0]},
                "cv": {"output_tokens_per_s": 0.01},
            }
        ],
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    baseline = load(path)
    assert baseline.version == 2 and baseline.entries[0].quality is None
    gate = Gate(baseline=baseline)
    verdict, _ = gate.judge(
        GateConfig(),
        "c1",
        "cpu:x",
        METRICS,
        final=False,
        cycle=1,
        quality=answers([[1, 2]]),
        checks=CHECKS,
    )
    assert verdict is not None and verdict.status == "inconclusive" and verdict.failed
    first = verdict.comparisons[0]
    assert (first.metric, first.kind, first.status) == (
        "token_agreement",
        "quality",
        "inconclusive",
    )
    assert "baseline 'old' has no quality data for this config" in first.note
    assert "save it again" in first.note


def test_an_item_is_judged_on_its_own_answers_against_the_baseline() -> None:
    stored = answers([[1, 2], [3, 4]], 4.0)
    entry = BaselineEntry(
        config_hash="c1",
        hardware="cpu:x",
        point_id="p",
        study="s",
        samples={"output_tokens_per_s": [100.0, 101.0, 99.0]},
        quality=stored,
    )
    gate = Gate(baseline=BaselineFile(name="main", created_at="now", entries=[entry]))
    same, _ = gate.judge(
        GateConfig(), "c1", "cpu:x", METRICS, final=False, cycle=1, quality=stored, checks=CHECKS
    )
    assert same is not None and [c.status for c in same.comparisons[:2]] == ["pass", "pass"]
    assert same.status == "pending"  # the relative limits wait for the last cycle
    changed = answers([[1, 2], [30, 4]], 4.0)
    verdict, _ = gate.judge(
        GateConfig(), "c1", "cpu:x", METRICS, final=False, cycle=2, quality=changed, checks=CHECKS
    )
    assert verdict is not None and verdict.status == "fail"
    agree = verdict.comparisons[0]
    assert agree.metric == "token_agreement" and agree.status == "fail"
    assert "prompt 1 at token 0 (reference 3, candidate 30)" in agree.note
    # Not comparing (no baseline): no quality comparison, as no relative limit.
    plain = Gate(cli=[])
    alone, _ = plain.judge(
        GateConfig(budgets={"output_tokens_per_s": 1.0}),
        "c1",
        "cpu:x",
        METRICS,
        final=True,
        quality=stored,
        checks=CHECKS,
    )
    assert alone is not None and [c.metric for c in alone.comparisons] == ["output_tokens_per_s"]


def test_a_pair_is_judged_on_every_pairs_answers_at_its_last_pair() -> None:
    gate = Gate()
    keys = {"reference": "h:p@reference", "candidate": "h:p@candidate"}
    ref, half = answers([[1, 2, 3, 4]], 4.0), answers([[1, 2]], 2.0)
    verdicts = []
    for cycle in (1, 2, 3):
        for arm, record in (("reference", ref), ("candidate", half)):
            verdict, _ = judge_pair(
                gate, GateConfig(), keys, arm, cycle, 3, METRICS, quality=record, checks=CHECKS
            )
            verdicts.append(verdict)
    first, last = verdicts[0], verdicts[-1]
    assert [c.status for c in first.comparisons[:2]] == ["pending", "pending"]
    assert [c.metric for c in last.comparisons[:2]] == ["token_agreement", "output_length"]
    assert [c.kind for c in last.comparisons[:2]] == ["paired", "paired"]
    length = last.comparisons[1]
    assert length.status == "fail" and length.ratio == pytest.approx(0.5)
    own, pair = last.split()
    assert pair is not None and pair.status == "fail" and own.comparisons == []
    assert last.comparisons[0].agreement is not None
    assert last.comparisons[0].agreement.prompts == 3  # one prompt in each of three pairs
