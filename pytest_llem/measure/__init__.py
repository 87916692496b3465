"""The measurement protocol, its metrics and its statistics."""
