"""Energy meters behind one small interface (``EnergyMeter``) and their selection."""
