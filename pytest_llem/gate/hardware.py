"""Hardware fingerprints (which key baselines), read back into parts so that a mismatch can say
what differs: ``gpu:NVIDIA H100 80GB HBM3/700W+NVIDIA H100 80GB HBM3/700W|driver550`` or
``cpu:AMD EPYC 7B13|2 cores``."""

from __future__ import annotations

from collections import Counter


def parts(fingerprint: str) -> dict[str, str]:
    """``kind``, ``models`` (``2 x NAME``), ``power`` and ``driver`` or ``cores``."""
    kind, _, rest = fingerprint.partition(":")
    head, _, tail = rest.partition("|")
    out = {"kind": kind}
    if kind == "gpu":
        devices = [d.rpartition("/") for d in head.split("+") if d]
        names = Counter(name for name, _, _ in devices)
        out["models"] = ", ".join(f"{n} x {name}" for name, n in names.items())
        out["power"] = ", ".join(sorted({limit for _, _, limit in devices}))
        out["driver"] = tail.removeprefix("driver")
    else:
        out["models"] = head
        out["cores"] = tail.removesuffix(" cores")
    return out


_LABELS = {
    "kind": "device",
    "models": "model and count",
    "power": "power limit",
    "driver": "driver",
    "cores": "cores",
}


def differences(baseline: str, current: str) -> list[str]:
    """What differs between two fingerprints, e.g. ``driver 550 vs 560``."""
    old, new = parts(baseline), parts(current)
    return [
        f"{_LABELS[key]} {old.get(key, '?')} vs {new.get(key, '?')}"
        for key in _LABELS
        if (key in old or key in new) and old.get(key) != new.get(key)
    ]
