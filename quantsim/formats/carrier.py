"""Carrier dtypes: the IEEE binary32/binary64 arrays that hold quantized values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantsim.errors import FormatError


@dataclass(frozen=True)
class Carrier:
    """Facts about a carrier dtype: stored mantissa bits, exponent bias, bit-view dtype."""

    dtype: np.dtype
    mant_bits: int
    bias: int
    bits_dtype: np.dtype

    @property
    def emin(self) -> int:
        return 1 - self.bias

    @property
    def emax(self) -> int:
        return self.bias

    @property
    def lowest_quantum_exp(self) -> int:
        """Exponent of the smallest subnormal."""
        return 1 - self.bias - self.mant_bits

    def bits_of(self, value: float) -> int:
        """The carrier bit pattern of |value| as a Python int."""
        return int(np.asarray(abs(value), dtype=self.dtype).view(self.bits_dtype))


FLOAT32 = Carrier(np.dtype(np.float32), 23, 127, np.dtype(np.uint32))
FLOAT64 = Carrier(np.dtype(np.float64), 52, 1023, np.dtype(np.int64))


def carrier_for(dtype: np.dtype) -> Carrier:
    """The carrier for an array dtype; integer and other dtypes are a TypeError."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return FLOAT32
    if dtype == np.float64:
        return FLOAT64
    raise TypeError(
        f"quantize needs a float32 or float64 array, got dtype {dtype}; "
        "convert first, e.g. x.astype(np.float32)"
    )


def check_array(x) -> np.ndarray:
    """Validate a quantizer input: a numpy float32/float64 array (0-d allowed)."""
    if not isinstance(x, np.ndarray):
        from quantsim.backend import is_device_array

        if is_device_array(x):  # CuPy: quantized on the device
            carrier_for(x.dtype)
            return x
        if isinstance(x, (float, int, list, tuple)) and not isinstance(x, bool):
            x = np.asarray(x, dtype=np.float64 if not isinstance(x, np.generic) else None)
        elif isinstance(x, np.generic):
            x = np.asarray(x)
        else:
            raise TypeError(f"quantize needs a numpy array, got {type(x).__name__}")
    carrier_for(x.dtype)
    return x


def unrepresentable(spec: str, carrier: Carrier, why: str) -> FormatError:
    name = "float32" if carrier.dtype == np.float32 else "float64"
    return FormatError(
        f"{spec} cannot be held exactly in {name} carriers ({why}); "
        + ("quantize float64 arrays instead" if name == "float32" else "use a narrower format")
    )
