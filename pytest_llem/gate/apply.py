"""Apply the gate to one item: limits in force, cycle samples, baseline lookup, verdict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llem.gate import cycles, stability
from pytest_llem.gate import quality as quality_checks
from pytest_llem.gate.baseline_file import BaselineEntry, BaselineFile
from pytest_llem.gate.completeness import Ledger
from pytest_llem.gate.paired import paired_comparison
from pytest_llem.gate.thresholds import Limit, combine, from_study, parse_fail_on
from pytest_llem.gate.verdict import (
    Comparison,
    Policy,
    Verdict,
    budget,
    evaluate,
    require_energy_of,
    status_of,
)
from pytest_llem.results.records import QualityRecord, ValidityWarning
from pytest_llem.stats.summary import summarise
from pytest_llem.study.quality import QualityConfig
from pytest_llem.study.sections import AB_ARMS, GateConfig

# When comparing with a baseline and nobody set a relative limit, guard the two headline
# figures (see benchmarks/perf/README.md for why 5% with Welch at alpha 0.05, 3+ cycles).
DEFAULT_RELATIVE = "energy_per_output_token_j>5%,output_tokens_per_s>5%"


def limits_in_force(
    cli: Sequence[Limit], ini: Sequence[Limit], study: GateConfig, comparing: bool
) -> list[Limit]:
    """Limits in force for a study: cli > ini > study; relative ones only when comparing,
    and the default relative limits when comparing and nobody set one."""
    chosen = combine(list(cli), list(ini), from_study(study))
    if not comparing:
        return [lim for lim in chosen if lim.kind != "relative"]
    if not any(lim.kind == "relative" for lim in chosen):
        chosen = combine(chosen, parse_fail_on(DEFAULT_RELATIVE, source="default"))
    return chosen


@dataclass
class Gate:
    """Session-wide gate state: limits from the command line and ini, the baseline, samples."""

    cli: Sequence[Limit] = ()
    ini: Sequence[Limit] = ()
    baseline: BaselineFile | None = None
    require_energy: bool = False
    require_baseline: bool = False
    inconclusive: Policy = "fail"
    max_cv: float | None = None  # ini llem_max_cv; the study's gate.max_cv otherwise
    # Per config, one sample per cycle: the first attempt that measured it. A rerun of the
    # cycle (pytest-rerunfailures) is recorded in the results but never re-draws the verdict.
    samples: dict[str, dict[int, Mapping[str, float | None]]] = field(default_factory=dict)
    # Which cycles collection selected and why those without a sample have none.
    ledger: Ledger = field(default_factory=Ledger)
    # Per config (or A/B arm), each cycle's answers for the quality checks: the first attempt's.
    answers: dict[str, dict[int, QualityRecord | None]] = field(default_factory=dict)

    def limits(self, study: GateConfig) -> list[Limit]:
        """Limits in force for a study: cli > ini > study; defaults when comparing."""
        return limits_in_force(self.cli, self.ini, study, self.baseline is not None)

    def stability(self, study: GateConfig) -> stability.Rule:
        """Which metrics must be steady across cycles, and how steady (the gated ones)."""
        relative = limits_in_force(self.cli, self.ini, study, comparing=True)
        return stability.rule(study, self.max_cv, relative)

    def unstable_warning(
        self, study: GateConfig, stats: Mapping[str, Mapping[str, float]] | None
    ) -> ValidityWarning | None:
        """The ``unstable_cycles`` warning for a config's last cycle, when it applies."""
        if not stats:
            return None
        checked = self.stability(study)
        found = stability.unstable(stats, checked)
        return stability.warning(found, checked) if found else None

    def record(
        self, key: str, metrics: Mapping[str, float | None], cycle: int | None = None
    ) -> tuple[list[Mapping[str, float | None]], bool]:
        """Keep one cycle's metrics for a config; return every cycle's metrics so far, and
        whether this cycle already had a sample (then the first attempt's stands). Without
        ``cycle`` each call is a new sample."""
        by_cycle = self.samples.setdefault(key, {})
        slot = cycle if cycle is not None else -(len(by_cycle) + 1)
        repeated = slot in by_cycle
        if not repeated:
            by_cycle[slot] = dict(metrics)
        if cycle is not None:
            self.ledger.sample(key, cycle)
        return list(by_cycle.values()), repeated

    def keep_answers(self, key: str, cycle: int, record: QualityRecord | None) -> None:
        """Keep a cycle's quality record (a rerun of the cycle keeps the first attempt's)."""
        self.answers.setdefault(key, {}).setdefault(cycle, record)

    def completes(self, key: str, cycle: int, n_cycles: int) -> bool:
        """True when ``cycle`` is, or repeats, the last of a config's cycles still missing.

        The gate decides when every cycle has been measured, in whatever order they ran (a
        reordering plugin such as pytest-randomly can run ``-c3`` before ``-c1``).
        """
        seen = {c for c in self.samples.get(key, {}) if c > 0}
        return len(seen | {cycle}) >= n_cycles

    def finality(self, key: str, cycle: int, n_cycles: int) -> tuple[bool, dict[int, str]]:
        """Whether this item is its config's last in this session, and the cycles that will
        have no sample (all of them at the last item; the unselected ones before it)."""
        if not self.ledger.known(key):
            return self.completes(key, cycle, n_cycles), {}
        if self.ledger.settled(key, cycle):
            return True, self.ledger.missing(key)
        return False, self.ledger.unselected(key)

    def judge(
        self,
        study: GateConfig,
        config_hash: str,
        hardware: str,
        metrics: Mapping[str, float | None],
        final: bool | None = None,
        cycle: int | None = None,
        n_cycles: int | None = None,
        missing: Mapping[int, str] | None = None,
        study_hash: str = "",
        point_id: str | None = None,
        configs: int = 1,
        study_name: str | None = None,
        quality: QualityRecord | None = None,
        checks: QualityConfig | None = None,
    ) -> tuple[Verdict | None, dict[str, dict[str, float]] | None]:
        """Record this cycle; return (verdict, or None without limits; stats at the last cycle).

        ``final`` and ``missing`` default to what the ledger knows (the session's case);
        ``merge`` passes them, from the shard reports. ``configs``: the study's gated configs,
        which with its relative limits make the family of tests the correction counts.
        ``checks``: the config's ``quality:`` limits, judged on this item's answers
        (``quality``) against the baseline's, listed first.
        """
        key = sample_key(study_hash, config_hash)
        history, repeated = self.record(key, metrics, cycle)
        if final is None:
            assert cycle is not None, "the session passes the cycle"
            assert n_cycles is not None, "and the config's number of cycles"
            final, known_missing = self.finality(key, cycle, n_cycles)
            missing = known_missing if missing is None else missing
        samples = cycles.collect(history)
        stats = summarise(samples) if final else None
        limits = self.limits(study)
        if not limits:
            return None, stats
        entry, note, match = None, "", None
        if self.baseline is not None:
            found = self.baseline.lookup(config_hash, hardware, point_id, study_name)
            entry, match = found.entry, found.match
            note = found.note or f"compared with baseline {self.baseline.name!r}"
        verdict = evaluate(
            limits,
            metrics,
            samples,
            entry.samples if entry is not None else None,
            final,
            study.significance,
            self.require_energy,
            self.require_baseline and self.baseline is not None,
            baseline_note=note,
            inconclusive=self.inconclusive,
            missing=missing or {},
            tests=configs * sum(1 for lim in limits if lim.kind == "relative"),
        )
        if checks is not None and checks.active and self.baseline is not None:
            mine = _against_baseline(checks, self.baseline.name, entry, quality)
            verdict.comparisons = quality_checks.quality_first([*mine, *verdict.comparisons])
            verdict.status = status_of(
                verdict.comparisons,
                entry is None and any(lim.kind == "relative" for lim in limits),
                self.require_baseline,
            )
        verdict.baseline = self.baseline.name if self.baseline is not None else None
        verdict.baseline_match = match
        if repeated:
            verdict.note = _join(
                verdict.note,
                f"cycle {cycle} was measured again (a rerun): the gate keeps its first sample",
            )
        return verdict, stats


def _against_baseline(
    checks: QualityConfig, name: str, entry: BaselineEntry | None, record: QualityRecord | None
) -> list[Comparison]:
    """An item's answers against what the baseline stored for its config."""
    if entry is None:  # said by the baseline's note; a relative limit is not compared either
        return quality_checks.undecided(checks, "quality", "not_evaluated", "no baseline value")
    if entry.quality is None:
        return quality_checks.undecided(
            checks,
            "quality",
            "inconclusive",
            f"baseline {name!r} has no quality data for this config (saved before the quality "
            "checks existed, or by a run without this quality: section): save it again",
        )
    return quality_checks.compare(
        checks, [(None, entry.quality, record)], "quality", (f"baseline {name!r}", "this run")
    )


def arm_key(study_hash: str, pair: str, arm: str) -> str:
    """Samples and cycles of one arm of an A/B pair."""
    return f"{study_hash}:{pair}@{arm}"


def _pair_finality(
    ledger: Ledger, keys: Mapping[str, str], arm: str, cycle: int, n_cycles: int
) -> tuple[bool, dict[int, str]]:
    """Whether this item ends its pair's last cycle in the session, and the cycles that have
    (or will have) no complete pair, naming the arm that lacks it."""
    mine, other = keys[arm], keys[next(a for a in AB_ARMS if a != arm)]
    if not (ledger.known(mine) and ledger.known(other)):  # no collection: every cycle sampled
        return all(len(ledger.sampled.get(k, set())) >= n_cycles for k in keys.values()), {}
    final = ledger.settled(mine, cycle) and ledger.settled(other, -1)
    missing: dict[int, str] = {}
    for name, key in keys.items():
        lost = ledger.missing(key) if final else ledger.unselected(key)
        for c, reason in lost.items():
            if c == cycle and name == arm:
                continue
            missing.setdefault(c, f"{name}: {reason}")
    return final, missing


def judge_pair(
    gate: Gate,
    study: GateConfig,
    keys: Mapping[str, str],
    arm: str,
    cycle: int,
    n_cycles: int,
    metrics: Mapping[str, float | None],
    configs: int = 1,
    quality: QualityRecord | None = None,
    checks: QualityConfig | None = None,
) -> tuple[Verdict, dict[str, dict[str, float]] | None]:
    """An A/B arm's item: budgets on its own value, relative limits on the pairs so far (the
    candidate against the reference of the same cycles), decided at the pair's last cycle;
    the ``quality:`` limits (``checks``) on the arms' answers, decided with them, listed
    first."""
    gate.keep_answers(keys[arm], cycle, quality)
    history, repeated = gate.record(keys[arm], metrics, cycle)
    final, missing = _pair_finality(gate.ledger, keys, arm, cycle, n_cycles)
    stats = summarise(cycles.collect(history)) if final else None
    limits = limits_in_force(gate.cli, gate.ini, study, comparing=True)
    ref = gate.samples.get(keys["reference"], {})
    cand = gate.samples.get(keys["candidate"], {})
    both = sorted(c for c in ref if c > 0 and c in cand)
    relative = sum(1 for lim in limits if lim.kind == "relative")
    comparisons: list[Comparison] = []
    for lim in limits:
        if lim.kind != "relative":
            comparisons.append(budget(lim, metrics.get(lim.metric)))
            continue
        pairs = [
            (ref[c].get(lim.metric), cand[c].get(lim.metric))
            for c in both
            if ref[c].get(lim.metric) is not None and cand[c].get(lim.metric) is not None
        ]
        comparisons.append(
            paired_comparison(
                lim,
                [float(r) for r, _ in pairs if r is not None],
                [float(c) for _, c in pairs if c is not None],
                final,
                study.significance,
                missing,
                configs * relative,
            )
        )
    require_energy_of(comparisons, gate.require_energy, True)
    if checks is not None and checks.active:
        judged = _pair_answers(gate, keys, checks, both, final, missing)
        comparisons = quality_checks.quality_first([*judged, *comparisons])
    note = "candidate against the reference arm of the same cycles (paired, this session)"
    if repeated:
        note += f"; cycle {cycle} was measured again (a rerun): the gate keeps its first sample"
    verdict = Verdict(
        status=status_of(comparisons),
        comparisons=comparisons,
        note=note,
        inconclusive=gate.inconclusive,
    )
    return verdict, stats


def _pair_answers(
    gate: Gate,
    keys: Mapping[str, str],
    checks: QualityConfig,
    both: Sequence[int],
    final: bool,
    missing: Mapping[int, str],
) -> list[Comparison]:
    """The quality limits of an A/B pair: on every complete pair's answers at the last pair."""
    if missing:
        return quality_checks.incomplete(checks, "paired", missing)
    if not final:
        return quality_checks.undecided(checks, "paired", "pending", "decided at the last pair")
    ref = gate.answers.get(keys["reference"], {})
    cand = gate.answers.get(keys["candidate"], {})
    pairs = [(c, ref.get(c), cand.get(c)) for c in both]
    return quality_checks.compare(
        checks, pairs, "paired", ("the reference arm", "the candidate arm")
    )


def stability_rules(
    gate: Gate, results: Iterable[Any], study_gates: Mapping[str, Any]
) -> dict[str, stability.Rule]:
    """Each result's stability rule by config hash (``study_gates``: study hash to its
    ``gate:`` block), for refusing to save an unstable baseline."""
    return {
        r.config_hash: gate.stability(
            GateConfig.model_validate(study_gates.get(r.study_hash) or {})
        )
        for r in results
    }


def sample_key(study_hash: str, config_hash: str) -> str:
    """Samples and cycles are kept per study and config: two studies may share a config."""
    return f"{study_hash}:{config_hash}" if study_hash else config_hash


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second
