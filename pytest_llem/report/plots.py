"""PNG plots per study: energy per token and throughput per config, CI bars, baseline marks.

matplotlib is an optional extra (``pytest-llem[plots]``) imported only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pytest_llem.errors import LlemError
from pytest_llem.gate.cycles import collect
from pytest_llem.results.records import ExperimentResult
from pytest_llem.stats.summary import summarise

PANELS = (
    ("energy_per_output_token_j", "J / output token"),
    ("output_tokens_per_s", "output tokens / s"),
)


def _baseline(results: Sequence[ExperimentResult], metric: str) -> float | None:
    for r in results:
        for comp in (r.gate or {}).get("comparisons", []):
            if comp.get("metric") == metric and comp.get("baseline") is not None:
                return float(comp["baseline"])
    return None


def write(results: Sequence[ExperimentResult], directory: Path) -> list[Path]:
    """One PNG per study; returns the files written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise LlemError(
            f"--llem-plot needs matplotlib ({exc})", 'pip install "pytest-llem[plots]"'
        ) from None
    directory.mkdir(parents=True, exist_ok=True)
    studies: dict[tuple[str, str], list[ExperimentResult]] = {}
    for r in results:
        if r.metrics is not None:
            studies.setdefault((r.study, r.study_hash), []).append(r)
    written = []
    for (name, digest), items in studies.items():
        by_point: dict[str, list[ExperimentResult]] = {}
        for r in items:
            by_point.setdefault(r.point_id, []).append(r)
        labels = list(by_point)
        fig, axes = plt.subplots(1, len(PANELS), figsize=(max(6, 1.2 * len(labels) + 3) * 2, 4))
        for ax, (metric, title) in zip(axes, PANELS, strict=True):
            stats = [
                summarise(collect([r.metrics.model_dump() for r in by_point[p] if r.metrics])).get(
                    metric
                )
                for p in labels
            ]
            if not any(stats):
                ax.text(
                    0.5,
                    0.5,
                    f"{metric}: not measured",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                )
            else:
                means = [s["mean"] if s else 0.0 for s in stats]
                low = [s["mean"] - s["ci95_low"] if s else 0.0 for s in stats]
                high = [s["ci95_high"] - s["mean"] if s else 0.0 for s in stats]
                ax.bar(range(len(labels)), means, yerr=[low, high], capsize=4, color="#4C72B0")
                bases = [_baseline(by_point[p], metric) for p in labels]
                marks = [(x, b) for x, b in enumerate(bases) if b is not None]
                if marks:
                    ax.scatter(
                        [x for x, _ in marks],
                        [b for _, b in marks],
                        marker="_",
                        s=900,
                        linewidths=3,
                        color="#C44E52",
                        zorder=3,
                        label="baseline mean",
                    )
                    ax.legend()
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
            ax.set_title(title)
        fig.suptitle(f"{name} [{digest}]")
        fig.tight_layout()
        path = directory / f"{name}-{digest}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
