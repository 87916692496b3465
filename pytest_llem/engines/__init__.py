"""Inference engines behind the ``Engine`` interface; heavy imports happen on first use."""
