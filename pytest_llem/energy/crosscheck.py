"""Two energy meters over one window: the item's own, and a second source as a cross-check.

The second meter's window encloses the first's (opened before it, closed after it), so the
two differ only by the microseconds of one meter's reads. Its figure is recorded beside the
item's energy (``energy.crosscheck``) and never replaces it.
"""

from __future__ import annotations

import dataclasses

from pytest_llem.energy.meter import Crosscheck, EnergyMeter, EnergyReading


class CrosscheckMeter:
    """``primary`` measures the item; ``secondary`` reads the same window beside it."""

    def __init__(self, primary: EnergyMeter, secondary: EnergyMeter) -> None:
        self.primary = primary
        self.secondary = secondary
        self.info = primary.info

    def start(self) -> None:
        """Open the second window, then the item's."""
        self.secondary.start()
        self.primary.start()

    def stop(self) -> EnergyReading:
        """Close the item's window, then the second; the reading carries both."""
        reading = self.primary.stop()
        other = self.secondary.stop()
        check = Crosscheck(
            source=str(self.secondary.info.source),
            total_j=other.total_j,
            per_device_j=dict(other.per_device_j),
            reason=other.reason,
        )
        return dataclasses.replace(reading, crosscheck=check)

    def close(self) -> None:
        """Release both meters."""
        try:
            self.primary.close()
        finally:
            self.secondary.close()
