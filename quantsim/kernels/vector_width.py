"""Per-kernel control of the SIMD register width LLVM vectorises with.

numba compiles every function for its host CPU but, on AVX-512 machines, LLVM prefers 256-bit
vectors (AVX-512 code can lower the clock of other work). For the rounding kernels, 512-bit
vectors measured faster on this project's machines (16M float32 elements, 2 threads, Xeon with
AVX-512: float16 stochastic 1,045 -> 1,417 Melem/s, nearest 1,669 -> 1,885), so those kernels
ask for them; the rest of the process keeps numba's default. On CPUs without AVX-512 the hint
changes nothing.
"""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic

#: LLVM's function attribute read by the X86 backend when it picks the vector width.
_ATTRIBUTE = '"prefer-vector-width"="512"'


@intrinsic
def prefer_512_bit_vectors(typingctx):
    """Call once in a kernel body: the LLVM function being compiled (for a `prange` loop: its
    parallel body) gets the attribute, so its loops vectorise with 512-bit registers."""
    def codegen(context, builder, signature, args):
        # llvmlite only accepts a fixed list of attribute names; string attributes are valid
        # LLVM IR and are printed verbatim, so bypass the check.
        set.add(builder.function.attributes, _ATTRIBUTE)
        return context.get_dummy_value()
    return types.none(), codegen
