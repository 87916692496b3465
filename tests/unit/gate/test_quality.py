"""The quality checks on records: token agreement (exact, close at top-k, diverged, unknown),
the output-length band, perplexity, and missing data that is never a pass."""

from __future__ import annotations

import pytest

from pytest_llem.gate import quality
from pytest_llem.gate.verdict import Comparison, Verdict, table
from pytest_llem.results.records import PromptOutput, QualityRecord
from pytest_llem.study.quality import QualityConfig

ALL = QualityConfig(token_agreement="95%", output_length=True, perplexity="5%")
NAMES = ("the reference arm", "the candidate arm")


def out(tokens: list[int], top: list[list[int]] | None = None) -> PromptOutput:
    # By default each position's top-3 is its own token and two others.
    lists = top if top is not None else [[t, 90 + i, 95 + i] for i, t in enumerate(tokens)]
    return PromptOutput(tokens=tokens, top=lists)


def record(
    outputs: list[PromptOutput], per_request: float = 4.0, ppl: float = 20.0
) -> QualityRecord:
    return QualityRecord(
        output_tokens_per_request=per_request,
        outputs=outputs,
        top_k=3,
        perplexity=ppl,
        perplexity_text="builtin:perplexity_en",
    )


def by_metric(
    records: list[tuple[QualityRecord | None, QualityRecord | None]], checks: QualityConfig = ALL
) -> dict[str, Comparison]:
    pairs = [(i + 1, r, c) for i, (r, c) in enumerate(records)]
    return {c.metric: c for c in quality.compare(checks, pairs, "paired", NAMES)}


def test_identical_outputs_agree_exactly() -> None:
    same = [out([1, 2, 3, 4]), out([5, 6, 7, 8])]
    comps = by_metric([(record(same), record(same))])
    agree = comps["token_agreement"]
    assert agree.status == "pass" and agree.current == 1.0
    assert agree.agreement.exact == 2 and agree.agreement.first == []
    assert {c.status for c in comps.values()} == {"pass"}


def test_a_near_tie_flipped_is_close_and_a_far_token_is_not() -> None:
    ref = out([1, 2, 3], top=[[1, 9, 8], [2, 7, 6], [3, 5, 4]])
    # Position 1: the candidate's 7 is in the reference's top-3, the reference's 2 in its own.
    near = out([1, 7, 3], top=[[1, 9, 8], [7, 2, 6], [3, 5, 4]])
    far = out([1, 42, 3], top=[[1, 9, 8], [42, 43, 44], [3, 5, 4]])
    found = quality.first_divergence(ref, near, 3)
    assert found is not None and (found.position, found.close) == (1, True)
    found = quality.first_divergence(ref, far, 3)
    assert found is not None and (found.reference, found.candidate, found.close) == (2, 42, False)
    exact_only = quality.first_divergence(ref, near, 0)  # top_k 0: exact matches only
    assert exact_only is not None and exact_only.close is False


def test_an_output_that_ended_early_diverges_and_is_never_close() -> None:
    full, cut = out([1, 2, 3, 4]), out([1, 2])
    found = quality.first_divergence(full, cut, 3)
    assert found is not None
    assert (found.position, found.reference, found.candidate, found.close) == (2, 3, None, False)


def test_agreement_names_the_first_diverging_prompt_and_fails_below_the_limit() -> None:
    ref = [out([1, 2, 3]), out([4, 5, 6]), out([7, 8, 9]), out([1, 1, 1])]
    cand = [
        out([1, 2, 3]),
        out([4, 50, 6], top=[[4], [50, 51, 52], [6]]),
        out([7, 8, 9]),
        out([1, 1, 1]),
    ]
    comps = by_metric([(record(ref), record(cand))])
    agree = comps["token_agreement"]
    assert agree.status == "fail"
    assert agree.current == pytest.approx(0.75)
    assert "3 of 4 prompts agree (3 exact, 0 close at top-3)" in agree.note
    assert "prompt 1 at token 1 in cycle 1 (reference 5, candidate 50)" in agree.note
    assert agree.agreement.first_far().prompt == 1


def test_top_k_is_the_smallest_both_sides_scored() -> None:
    ref = record([out([1, 2], top=[[1, 9], [2, 7]])])
    cand = record([out([1, 7], top=[[1, 9], [7, 2]])])
    ref = ref.model_copy(update={"top_k": 2})
    comps = by_metric([(ref, cand)], QualityConfig(token_agreement="100%", top_k=5))
    agree = comps["token_agreement"]
    assert agree.status == "pass"
    assert agree.agreement.top_k == 2 and agree.agreement.close == 1


def test_unscored_closeness_is_inconclusive_not_a_pass() -> None:
    ref = record([out([1, 2], top=[]), out([3, 4], top=[])])
    cand = record([out([1, 9], top=[]), out([3, 4], top=[])])
    comps = by_metric([(ref, cand)], QualityConfig(token_agreement="100%"))
    agree = comps["token_agreement"]
    assert agree.status == "inconclusive", agree.note
    assert "not scored for closeness" in agree.note
    # Even in the best case it is below the limit: then it fails.
    ref3 = record([out([1, 2], top=[])] * 4)
    cand3 = record([out([1, 9], top=[])] * 2 + [out([1, 8], top=[])] * 2)
    assert (
        by_metric([(ref3, cand3)], QualityConfig(token_agreement="75%"))["token_agreement"].status
        == "inconclusive"
    )


def test_pairs_pool_and_each_divergence_names_its_cycle() -> None:
    ref = record([out([1, 2]), out([3, 4])])
    cand_ok, cand_bad = (
        record([out([1, 2]), out([3, 4])]),
        record([out([1, 2]), out([30, 4], top=[[30], [4]])]),
    )
    agree = by_metric([(ref, cand_ok), (ref, cand_bad)])["token_agreement"]
    assert agree.agreement.prompts == 4 and agree.agreement.diverged == 1
    assert agree.agreement.first[0].cycle == 2


def test_half_the_output_length_fails_the_band_and_a_longer_one_too() -> None:
    same = [out([1, 2, 3, 4])]
    half = by_metric([(record(same, 16.0), record(same, 8.0))])["output_length"]
    assert half.status == "fail" and half.ratio == pytest.approx(0.5)
    assert "shorter than the band allows" in half.note
    longer = by_metric([(record(same, 16.0), record(same, 18.0))])["output_length"]
    assert longer.status == "fail"  # 1.125x: MLPerf's 1.1 bound
    within = by_metric([(record(same, 16.0), record(same, 17.0))])["output_length"]
    assert within.status == "pass" and within.limit == "0.9-1.1x"


def test_perplexity_may_fall_but_not_rise_past_the_limit() -> None:
    same = [out([1])]
    assert (
        by_metric([(record(same, ppl=20.0), record(same, ppl=20.5))])["perplexity"].status == "pass"
    )
    assert (
        by_metric([(record(same, ppl=20.0), record(same, ppl=12.0))])["perplexity"].status == "pass"
    )
    worse = by_metric([(record(same, ppl=20.0), record(same, ppl=22.0))])["perplexity"]
    assert worse.status == "fail" and worse.delta_pct == pytest.approx(10.0)


def test_missing_data_is_inconclusive_and_names_the_side() -> None:
    ref = record([out([1])])
    comps = by_metric([(ref, None)])
    assert {c.status for c in comps.values()} == {"inconclusive"}
    assert comps["output_length"].note == "the candidate arm (cycle 1) has no quality data"
    no_ppl = ref.model_copy(update={"perplexity": None, "note": "this engine cannot score tokens"})
    comp = by_metric([(no_ppl, ref)])["perplexity"]
    assert comp.status == "inconclusive"
    assert (
        "the reference arm (cycle 1) has no perplexity (this engine cannot score tokens)"
        in comp.note
    )
    no_tokens = ref.model_copy(update={"outputs": []})
    assert "kept no output tokens" in by_metric([(no_tokens, ref)])["token_agreement"].note
    other_prompts = record([out([1]), out([2])])
    assert "different prompt sets" in by_metric([(ref, other_prompts)])["token_agreement"].note


def test_pending_and_incomplete_comparisons_carry_the_same_limits() -> None:
    pending = quality.undecided(ALL, "paired", "pending", "decided at the last pair")
    decided = quality.compare(ALL, [(1, record([out([1])]), record([out([1])]))], "paired", NAMES)
    assert [(c.metric, c.limit) for c in pending] == [(c.metric, c.limit) for c in decided]
    missing = quality.incomplete(ALL, "paired", {3: "candidate: failed"})
    assert {c.status for c in missing} == {"inconclusive"}
    assert missing[0].missing_cycles == {3: "candidate: failed"}


def test_a_verdict_lists_quality_first_and_its_table_names_the_check() -> None:
    from pytest_llem.gate import explain

    energy = Comparison(
        metric="energy_per_output_token_j", limit="5% worse", kind="paired", status="pass"
    )
    same = [out([1, 2, 3, 4])]
    length = by_metric([(record(same, 16.0), record(same, 8.0))])["output_length"]
    ordered = quality.quality_first([energy, length])
    assert [c.metric for c in ordered] == ["output_length", "energy_per_output_token_j"]
    verdict = Verdict(status="fail", comparisons=ordered)
    assert table(verdict).splitlines()[1].startswith("output_length")
    assert explain.headline("pytorch", None, verdict).endswith(
        "(candidate against reference), its answers changed (output_length):"
    )
    assert "answers differ from the reference's" in explain.fix(verdict)
