"""The --llem-fail-on syntax and limit precedence."""

from __future__ import annotations

import pytest

from pytest_llem.gate.thresholds import Limit, LimitSyntaxError, combine, from_study, parse_fail_on
from pytest_llem.study.sections import GateConfig


def test_relative_ceiling_and_floor() -> None:
    limits = parse_fail_on("energy_per_output_token_j>5%, latency_p99_s<2.0,output_tokens_per_s>50")
    assert limits == [
        Limit("energy_per_output_token_j", "relative", 0.05, "cli"),
        Limit("latency_p99_s", "ceiling", 2.0, "cli"),
        Limit("output_tokens_per_s", "floor", 50.0, "cli"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "energy_per_output_token>5%",
            "unknown metric 'energy_per_output_token'; did you mean 'energy_per_output_token_j'",
        ),
        ("latency_p99_s=2", "bad limit 'latency_p99_s=2': expected METRIC>N%"),
        ("latency_p99_s<5%", "a relative limit reads METRIC>N%"),
        ("latency_p99_s>2.0", "latency_p99_s is lower-is-better, so its budget is latency_p99_s<V"),
        ("output_tokens_per_s<10", "higher-is-better"),
        ("energy_j>1..2", "'1..2' is not a number"),
    ],
)
def test_bad_syntax_names_the_bad_part(text: str, message: str) -> None:
    with pytest.raises(LimitSyntaxError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_fail_on(text)


def test_precedence_cli_over_ini_over_study() -> None:
    study = from_study(
        GateConfig(max_regression={"energy_j": "10%"}, budgets={"latency_p99_s": 3.0})
    )
    ini = parse_fail_on("energy_j>7%", source="ini")
    cli = parse_fail_on("latency_p99_s<1.0")
    chosen = {(lim.metric, lim.kind): (lim.value, lim.source) for lim in combine(cli, ini, study)}
    assert chosen == {
        ("energy_j", "relative"): (0.07, "ini"),
        ("latency_p99_s", "ceiling"): (1.0, "cli"),
    }


def test_study_budgets_follow_metric_direction() -> None:
    limits = from_study(
        GateConfig(budgets={"output_tokens_per_s": 100, "energy_per_output_token_j": 0.5})
    )
    kinds = {lim.metric: lim.kind for lim in limits}
    assert kinds == {"output_tokens_per_s": "floor", "energy_per_output_token_j": "ceiling"}
