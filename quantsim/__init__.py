"""quantsim: a low-precision, hardware-aware deep-learning simulator."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "quantize"]


def __getattr__(name: str):
    # Lazy: importing quantsim must not compile numba kernels.
    if name == "quantize":
        from quantsim.formats import quantize

        return quantize
    raise AttributeError(f"module 'quantsim' has no attribute {name!r}")
