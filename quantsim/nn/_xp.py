"""The array module of the arrays a layer is given.

Engine code takes its array module from its inputs, ``xp = array_module(X)``: numpy for numpy
arrays, cupy for CuPy arrays (Chainer's ``get_array_module``), so one source runs on the CPU and
on a GPU. Parameters are created on the host (numpy) and moved with ``to_device``; host-side
metadata (call counters, RNG seeds, dropout masks as drawn) stays numpy. The lookup never
imports CuPy: it only looks at ``sys.modules``.
"""

from __future__ import annotations

from quantsim.backend import get_array_module as array_module

__all__ = ["array_module"]
