"""The serving path's quality record: per prompt its first completed request's tokens and
top-k ids (keys ``token_id:N``), what is missing said, and the checks on it."""

from __future__ import annotations

from pytest_llem.gate import quality
from pytest_llem.gate.quality_serving import from_requests, token_id, top_ids
from pytest_llem.study.quality import QualityConfig

CHECKS = QualityConfig(token_agreement="95%", output_length=True, top_k=2)


def steps(*ids: int) -> list[dict[str | int, float]]:
    # Each step: the token itself most likely, then the next id.
    return [
        {f"token_id:{i}": -0.1, f"token_id:{i + 1}": -2.0, f"token_id:{i + 2}": -3.0} for i in ids
    ]


def test_keys_name_token_ids() -> None:
    assert token_id("token_id:42") == 42 and token_id(7) == 7
    assert token_id(" the") is None
    assert top_ids([{"token_id:5": -3.0, "token_id:9": -0.5}], 1) == [[9]]
    assert top_ids([{" the": -0.1}], 1) is None


def test_each_prompt_is_its_first_completed_request() -> None:
    record = from_requests(
        CHECKS,
        prompts=2,
        index=[0, 1, 2, 3],
        output_tokens=[3, 3, 3, 1],
        token_ids=[None, [4, 5, 6], [1, 2, 3], [9]],
        top_logprobs=[None, steps(4, 5, 6), steps(1, 2, 3), steps(9)],
    )
    assert record is not None and record.output_tokens_per_request == 2.5
    assert [o.tokens for o in record.outputs] == [[1, 2, 3], [4, 5, 6]]  # request 2 for prompt 0
    assert record.outputs[0].top == [[1, 2], [2, 3], [3, 4]] and record.top_k == 2
    assert record.note is None
    same = quality.compare(CHECKS, [(1, record, record)], "paired", ("ref", "cand"))
    assert [c.status for c in same] == ["pass", "pass"]


def test_what_the_server_did_not_send_is_said() -> None:
    no_ids = from_requests(
        CHECKS, prompts=2, index=[0, 1], output_tokens=[3, 3], token_ids=[[1, 2, 3], None]
    )
    assert no_ids is not None and no_ids.outputs == []
    assert no_ids.note is not None and "no output token ids for prompt 1" in no_ids.note
    comps = quality.compare(CHECKS, [(1, no_ids, no_ids)], "paired", ("ref", "cand"))
    assert comps[0].status == "inconclusive" and "return_token_ids" in comps[0].note
    text = from_requests(
        CHECKS,
        prompts=1,
        index=[0],
        output_tokens=[1],
        token_ids=[[5]],
        top_logprobs=[[{" the": -0.1, " a": -1.0}]],
    )
    assert text is not None and text.top_k == 0 and text.outputs[0].top == []
    assert text.note is not None and "return_tokens_as_token_ids" in text.note
    ppl = from_requests(
        QualityConfig(perplexity="5%"), prompts=1, index=[0], output_tokens=[2], token_ids=[None]
    )
    assert ppl is not None and ppl.note is not None and "no perplexity" in ppl.note
    assert from_requests(None, prompts=1, index=[], output_tokens=[], token_ids=[]) is None
