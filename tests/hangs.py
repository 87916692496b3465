"""Planted hangs for the fault tests: an engine wedged inside the measured window.

``SECOND_WINDOW_HANGS`` is conftest code for an in-process session: the second measured window
hangs after its first generate call. ``HANG_ONCE`` is a ``sitecustomize.py`` for a worker in
another process (a container, a python: worker) whose ``PYTHONPATH`` holds it: while
``hang-once`` exists beside it, windows are counted in ``windows`` (also beside it, so the count
survives a restarted worker) and the one whose number ``hang-once`` holds (1 when empty)
consumes the file and hangs.
"""

SECOND_WINDOW_HANGS = """
import time

from pytest_llem.measure import protocol

_SEEN = {"windows": 0}
_window = protocol.measured_window


def _hanging_window(engine, batches, config, inst):
    _SEEN["windows"] += 1
    if _SEEN["windows"] != 2:
        return _window(engine, batches, config, inst)
    generate, calls = engine.generate, []

    def once_then_hang(batch, cfg):
        calls.append(1)
        if len(calls) == 2:
            time.sleep(600)
        return generate(batch, cfg)

    engine.generate = once_then_hang
    return _window(engine, batches, config, inst)


protocol.measured_window = _hanging_window
"""

HANG_ONCE = """
import os
import time

HERE = os.path.dirname(__file__)
MARKER = os.path.join(HERE, "hang-once")
COUNT = os.path.join(HERE, "windows")


def _plant():
    from pytest_llem.measure import protocol

    window = protocol.measured_window

    def hanging(engine, batches, config, inst):
        if os.path.exists(MARKER):
            at = int(open(MARKER).read().strip() or 1)
            seen = int(open(COUNT).read()) + 1 if os.path.exists(COUNT) else 1
            with open(COUNT, "w") as handle:
                handle.write(str(seen))
            if seen == at:
                os.unlink(MARKER)
                inst.progress("measure", "0.0s of 0s measured, pass 1")  # as the window says
                time.sleep(600)
        return window(engine, batches, config, inst)

    protocol.measured_window = hanging


try:
    _plant()
except Exception:  # not the worker (a probe, pip): nothing to plant
    pass
"""
