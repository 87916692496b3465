"""The regression gate: limits, baselines, significance and per-item verdicts (pure)."""
