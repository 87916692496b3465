"""The quality checks (pure): did the candidate's answers stay the reference's?

Three checks of the ``quality:`` section, each a ``Comparison`` beside the cost limits:

- ``token_agreement``: the share of prompts whose greedy output is the reference's, token for
  token, or whose first divergence is close: each side's token is in the other's top-k there
  (vLLM's CI criterion: a near tie flipped by a kernel or a batch shape, not a broken model);
- ``output_length``: mean output tokens per request within a band of the reference's (0.9 to
  1.1x by default, MLPerf Inference's bound), so a shorter answer never buys a better J/request;
- ``perplexity``: of a fixed text, at most a relative rise over the reference's.

The reference is the A/B pair's reference arm (each cycle's pair) or what the baseline stored.
Missing data is never a pass: a side without the figures makes the check inconclusive, naming
the side and why. Greedy outputs repeat exactly, so these are decided on the figures, not by
a test of significance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pytest_llem.gate.completeness import describe
from pytest_llem.gate.quality_figures import QUALITY_METRICS, Agreement, Divergence
from pytest_llem.gate.verdict import Comparison, Status, Verdict, center
from pytest_llem.results.records import PromptOutput, QualityRecord
from pytest_llem.study.quality import QualityConfig

# (cycle, reference, candidate): one pair of records (a baseline comparison has one, cycle None).
Pair = tuple[int | None, QualityRecord | None, QualityRecord | None]
FIRST_KEPT = 5  # divergences a comparison lists


def limit_texts(checks: QualityConfig) -> dict[str, str]:
    """Each active check's limit in words, by metric (one text for pending and decided)."""
    texts: dict[str, str] = {}
    if checks.agreement_min is not None:
        how = f"top-{checks.top_k} close" if checks.top_k else "exact"
        texts["token_agreement"] = f">= {checks.agreement_min * 100:g}% agree ({how})"
    if checks.length_band is not None:
        low, high = checks.length_band
        texts["output_length"] = f"{low:g}-{high:g}x"
    if checks.perplexity_max is not None:
        texts["perplexity"] = f"{checks.perplexity_max * 100:g}% worse"
    return texts


def undecided(
    checks: QualityConfig,
    kind: str,
    status: Status,
    note: str,
    missing: Mapping[int, str] | None = None,
) -> list[Comparison]:
    """The active checks as ``pending`` (before the last pair) or ``inconclusive`` (pairs are
    missing) comparisons."""
    return [
        Comparison(
            metric=metric,
            limit=text,
            kind=kind,
            status=status,
            note=note,
            missing_cycles=dict(missing or {}),
        )
        for metric, text in limit_texts(checks).items()
    ]


def incomplete(checks: QualityConfig, kind: str, missing: Mapping[int, str]) -> list[Comparison]:
    """Inconclusive: some pair has no sample, so the answers were not compared on all."""
    note = f"not decided on all pairs: {describe(missing)}"
    return undecided(checks, kind, "inconclusive", note, missing)


def compare(
    checks: QualityConfig, pairs: Sequence[Pair], kind: str, names: tuple[str, str]
) -> list[Comparison]:
    """Every active check of ``checks`` on ``pairs``; ``names``: how the notes name the
    reference and the candidate ("the reference arm", "baseline 'main'", ...)."""
    texts = limit_texts(checks)
    out = []
    if "token_agreement" in texts:
        out.append(_agreement(checks, pairs, kind, names, texts["token_agreement"]))
    if "output_length" in texts:
        out.append(_length(checks, pairs, kind, names, texts["output_length"]))
    if "perplexity" in texts:
        out.append(_perplexity(checks, pairs, kind, names, texts["perplexity"]))
    return out


def first_divergence(
    reference: PromptOutput, candidate: PromptOutput, top_k: int
) -> Divergence | None:
    """Where two outputs first differ (None: identical). A side that had ended there has no
    token, and its end is not close; without top-k lists on a side, closeness is unknown."""
    ref, cand = reference.tokens, candidate.tokens
    shared = min(len(ref), len(cand))
    pos = next((i for i in range(shared) if ref[i] != cand[i]), None)
    if pos is None:
        if len(ref) == len(cand):
            return None
        pos = shared
    r = ref[pos] if pos < len(ref) else None
    c = cand[pos] if pos < len(cand) else None
    close: bool | None = False
    if top_k > 0 and r is not None and c is not None:
        ref_top = reference.top[pos][:top_k] if pos < len(reference.top) else None
        cand_top = candidate.top[pos][:top_k] if pos < len(candidate.top) else None
        close = None if ref_top is None or cand_top is None else c in ref_top and r in cand_top
    return Divergence(prompt=0, position=pos, reference=r, candidate=c, close=close)


def agreement(
    runs: Sequence[tuple[int | None, Sequence[PromptOutput], Sequence[PromptOutput]]], top_k: int
) -> Agreement:
    """Agreement pooled over ``runs`` of (cycle, reference outputs, candidate outputs)."""
    counts = {"exact": 0, "close": 0, "diverged": 0, "unknown": 0}
    first: list[Divergence] = []
    prompts = 0
    for cycle, ref, cand in runs:
        for index, (r, c) in enumerate(zip(ref, cand, strict=True)):
            prompts += 1
            found = first_divergence(r, c, top_k)
            if found is None:
                counts["exact"] += 1
                continue
            key = "close" if found.close else "unknown" if found.close is None else "diverged"
            counts[key] += 1
            if len(first) < FIRST_KEPT:
                first.append(found.model_copy(update={"prompt": index, "cycle": cycle}))
    return Agreement(prompts=prompts, top_k=top_k, first=first, **counts)


def _lacking(
    pairs: Sequence[Pair], names: tuple[str, str], why: Callable[[QualityRecord], str | None]
) -> str | None:
    """Why some side of some pair cannot be judged (None: every side has the figures)."""
    if not pairs:
        return "no pair of records to compare"
    for cycle, *records in pairs:
        where = f" (cycle {cycle})" if cycle is not None else ""
        for name, record in zip(names, records, strict=True):
            if record is None:
                return f"{name}{where} has no quality data"
            reason = why(record)
            if reason is not None:
                return f"{name}{where} {reason}"
    return None


def _base(metric: str, limit: str, kind: str) -> Comparison:
    return Comparison(metric=metric, limit=limit, kind=kind, status="not_evaluated")


def _inconclusive(base: Comparison, note: str) -> Comparison:
    return base.model_copy(update={"status": "inconclusive", "note": note})


def _no_tokens(record: QualityRecord) -> str | None:
    if record.outputs:
        return None
    why = record.note or "its quality: section did not check token_agreement"
    return f"kept no output tokens ({why})"


def _agreement(
    checks: QualityConfig, pairs: Sequence[Pair], kind: str, names: tuple[str, str], limit: str
) -> Comparison:
    base = _base("token_agreement", limit, kind)
    lacking = _lacking(pairs, names, _no_tokens)
    if lacking is not None:
        return _inconclusive(base, lacking)
    runs = []
    for cycle, ref, cand in pairs:
        if ref is None or cand is None:  # _lacking said so already
            continue
        if len(ref.outputs) != len(cand.outputs):
            return _inconclusive(
                base,
                f"the sides ran different prompt sets ({len(ref.outputs)} and "
                f"{len(cand.outputs)} prompts): nothing to compare prompt by prompt",
            )
        runs.append((cycle, ref.outputs, cand.outputs))
    top_k = min([checks.top_k, *(r.top_k for _, *sides in pairs for r in sides if r)])
    found = agreement(runs, top_k)
    need = checks.agreement_min or 1.0
    best_case = found.share + found.unknown / max(1, found.prompts)
    status = "pass" if found.share >= need else "fail" if best_case < need else "inconclusive"
    return base.model_copy(
        update={
            "status": status,
            "current": found.share,
            "n_current": found.prompts,
            "agreement": found,
            "note": found.describe(),
        }
    )


def _length(
    checks: QualityConfig, pairs: Sequence[Pair], kind: str, names: tuple[str, str], limit: str
) -> Comparison:
    base = _base("output_length", limit, kind)
    lacking = _lacking(pairs, names, lambda r: None)
    if lacking is not None:
        return _inconclusive(base, lacking)
    ref = [p[1].output_tokens_per_request for p in pairs if p[1] is not None]
    cand = [p[2].output_tokens_per_request for p in pairs if p[2] is not None]
    low, high = checks.length_band or (0.0, float("inf"))
    ref_mean, cand_mean = center(ref), center(cand)
    if ref_mean <= 0:
        return _inconclusive(base, f"{names[0]} produced no output tokens")
    ratio = cand_mean / ref_mean
    within = low <= ratio <= high
    side = "shorter" if ratio < 1 else "longer"
    note = f"{cand_mean:.4g} output tokens per request against {ref_mean:.4g}: {ratio:.3f}x, " + (
        "within the band" if within else f"{side} than the band allows"
    )
    return _figures(base, "pass" if within else "fail", ref_mean, cand_mean, len(ref), note)


def _no_perplexity(record: QualityRecord) -> str | None:
    if record.perplexity is not None:
        return None
    why = record.note or "its quality: section did not check perplexity"
    return f"has no perplexity ({why})"


def _perplexity(
    checks: QualityConfig, pairs: Sequence[Pair], kind: str, names: tuple[str, str], limit: str
) -> Comparison:
    base = _base("perplexity", limit, kind)
    lacking = _lacking(pairs, names, _no_perplexity)
    if lacking is not None:
        return _inconclusive(base, lacking)
    ref = [p[1].perplexity for p in pairs if p[1] is not None and p[1].perplexity is not None]
    cand = [p[2].perplexity for p in pairs if p[2] is not None and p[2].perplexity is not None]
    texts = {r.perplexity_text for _, *sides in pairs for r in sides if r is not None}
    if len(texts) > 1:
        return _inconclusive(base, f"the sides scored different texts: {sorted(map(str, texts))}")
    ref_mean, cand_mean = center(ref), center(cand)
    rise = cand_mean / ref_mean - 1.0
    worse = rise > (checks.perplexity_max or 0.0)
    note = (
        f"perplexity {cand_mean:.4g} against {ref_mean:.4g} ({rise * 100:+.1f}%) on "
        f"{next(iter(texts))}"
    )
    return _figures(base, "fail" if worse else "pass", ref_mean, cand_mean, len(ref), note)


def _figures(
    base: Comparison, status: str, ref: float, cand: float, n: int, note: str
) -> Comparison:
    ratio = cand / ref
    return base.model_copy(
        update={
            "status": status,
            "baseline": ref,
            "current": cand,
            "ratio": ratio,
            "delta_pct": (ratio - 1.0) * 100.0,
            "n_current": n,
            "n_baseline": n,
            "note": note,
        }
    )


def is_quality(comparison: Comparison) -> bool:
    """True for a comparison of the ``quality:`` section."""
    return comparison.metric in QUALITY_METRICS


def quality_first(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """Quality comparisons before the cost limits: a verdict lists the answers first."""
    return sorted(comparisons, key=lambda c: 0 if is_quality(c) else 1)


def deciding(verdict: Verdict) -> list[Comparison]:
    """The quality comparisons that share the verdict's status (fail, or inconclusive)."""
    return [c for c in verdict.comparisons if is_quality(c) and c.status == verdict.status]


def headline_words(verdict: Verdict) -> str:
    """``, its answers changed (output_length, token_agreement)`` when quality limits failed."""
    failed = [c.metric for c in deciding(verdict) if c.status == "fail"]
    return f", its answers changed ({', '.join(failed)})" if failed else ""


def fix_words(verdict: Verdict) -> str | None:
    """What to do when quality limits decided the verdict (None when they did not)."""
    found = deciding(verdict)
    if not found:
        return None
    if any(c.status == "fail" for c in found):
        return (
            "the candidate's answers differ from the reference's: look at what changed how it "
            "decodes (precision or quantisation, sampling or max-token defaults of the engine "
            "version, the prompt template); an energy figure bought with other answers is not "
            "a saving"
        )
    if any("no quality data" in c.note or "kept no output tokens" in c.note for c in found):
        return (
            "save the baseline again with this study's quality: section, so that it stores "
            "the answers; --llem-inconclusive warn reports this without failing it"
        )
    return "see the notes above; --llem-inconclusive warn reports this without failing it"
