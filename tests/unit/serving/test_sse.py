"""The SSE decoder and chunk parser, and the request body the client builds."""

from __future__ import annotations

import json

import pytest

from pytest_llem.serving.errors import ServingError
from pytest_llem.serving.ready import server_root
from pytest_llem.serving.spec import LoadSpec, check
from pytest_llem.serving.sse import DONE, EventDecoder, parse_chunk

# A real vLLM 0.32 completions stream (return_token_ids, continuous usage), trimmed.
VLLM_STREAM = (
    b'data: {"id":"cmpl-8","object":"text_completion","choices":[{"index":0,"text":" \xc2\xac",'
    b'"logprobs":null,"finish_reason":null,"token_ids":[109]}],'
    b'"usage":{"prompt_tokens":17,"total_tokens":18,"completion_tokens":1}}\n\n'
    b'data: {"id":"cmpl-8","object":"text_completion","choices":[{"index":0,"text":" Q",'
    b'"logprobs":null,"finish_reason":"length","token_ids":[52]}],'
    b'"usage":{"prompt_tokens":17,"total_tokens":19,"completion_tokens":2}}\n\n'
    b'data: {"id":"cmpl-8","object":"text_completion","choices":[],'
    b'"usage":{"prompt_tokens":17,"total_tokens":19,"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)


def test_events_survive_any_split_of_the_bytes() -> None:
    whole = EventDecoder().feed(VLLM_STREAM)
    assert len(whole) == 4 and whole[-1] == DONE
    for size in (1, 2, 3, 7, 50):
        decoder = EventDecoder()
        parts = [VLLM_STREAM[i : i + size] for i in range(0, len(VLLM_STREAM), size)]
        assert [p for part in parts for p in decoder.feed(part)] + decoder.close() == whole


def test_comments_crlf_and_a_missing_last_blank_line() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b': ping\r\n\r\ndata: {"a": 1}\r\n\r\ndata: [DO') == ['{"a": 1}']
    assert decoder.feed(b"NE]") == []
    assert decoder.close() == [DONE]


def test_vllm_chunks() -> None:
    payloads = EventDecoder().feed(VLLM_STREAM)
    first, last, usage = (parse_chunk(p) for p in payloads[:3])
    assert first.has_choice and first.text == " \u00ac" and first.token_ids == [109]
    assert first.tokens == 1 and first.usage == {
        "prompt_tokens": 17,
        "total_tokens": 18,
        "completion_tokens": 1,
    }
    assert last.finish_reason == "length"
    assert (
        not usage.has_choice and usage.usage is not None and usage.usage["completion_tokens"] == 2
    )


def test_logprobs_with_tokens_as_ids() -> None:
    payload = json.dumps({"choices": [{"text": "ab", "logprobs": {
        "tokens": ["token_id:5", "token_id:6"], "token_logprobs": [-1.0, None],
        "top_logprobs": [{"token_id:5": -1.0}, None],
    }}]})  # fmt: skip
    chunk = parse_chunk(payload)
    assert (chunk.tokens, chunk.token_ids, chunk.logprobs) == (2, [5, 6], [-1.0, None])
    assert chunk.top_logprobs == [{"token_id:5": -1.0}, {}]


def test_an_error_inside_the_stream_and_bad_json() -> None:
    assert parse_chunk('{"error": {"message": "oops"}}').error == '{"message": "oops"}'
    with pytest.raises(ValueError):
        parse_chunk("{not json")
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_chunk("[1, 2]")


def _spec(**kw: object) -> LoadSpec:
    fields: dict[str, object] = {
        "base_url": "http://h:1/v1",
        "model": "m",
        "prompts": ["p", [1, 2]],
    }
    fields.update(kw)
    return LoadSpec(**fields)  # type: ignore[arg-type]


def test_the_request_body() -> None:
    body = json.loads(_spec(max_tokens=[3, 5]).payload(1))
    assert body == {
        "model": "m", "prompt": [1, 2], "max_tokens": 5, "stream": True,
        "stream_options": {"include_usage": True}, "temperature": 0.0,
        "ignore_eos": True, "min_tokens": 5,
    }  # fmt: skip
    body = json.loads(
        _spec(fixed_output=False, temperature=None, logprobs=0, token_ids=True,
              continuous_usage=True, extra_body={"top_p": 0.9, "max_tokens": 7}).payload(2)
    )  # fmt: skip
    assert body["prompt"] == "p" and body["max_tokens"] == 7 and body["top_p"] == 0.9
    assert body["logprobs"] == 0 and body["return_token_ids"] is True
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert "temperature" not in body and "ignore_eos" not in body


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"prompts": []}, "at least one prompt"),
        ({"num_requests": 0}, "num_requests must be at least 1"),
        ({"concurrency": 0}, "concurrency must be at least 1"),
        (
            {"num_requests": 4, "window": (5, 1)},
            r"window edges \(k=5 first tokens, m=1 finished\) outside 1..4",
        ),
    ],
)
def test_specs_that_cannot_run(kw: dict[str, object], words: str) -> None:
    with pytest.raises(ServingError, match=words):
        check(_spec(**kw))


def test_server_root() -> None:
    assert server_root("http://h:1/v1/") == "http://h:1"
    assert server_root("http://h:1") == "http://h:1"
