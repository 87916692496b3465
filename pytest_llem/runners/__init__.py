"""Runners execute one item: in-process (local) or inside a container (docker)."""
