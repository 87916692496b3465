"""Measurement validation kit: ``python -m pytest_llem validate``.

One command on any NVIDIA machine, with no model hub: a random-weight Llama of real dimensions
is built on the GPU, a GPU study runs through the plugin (several cycles, two batch sizes),
and meanwhile an independent process reads the NVML energy counter and instant power every
10 ms. The report answers a reviewer's first questions: how much do cycles vary, and does the
counter agree with an independent power integration over the same window.
"""
