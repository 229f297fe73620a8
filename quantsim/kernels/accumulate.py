"""Chunk-based low-precision accumulation of matrix products (Wang et al. 2018).

``chunked_matmul(A, B, q, chunk)`` computes ``C = A @ B`` (inner dimension ``K``) as a hardware
accumulator of format ``q`` would, with chunks ``c_0, c_1, ...`` of ``chunk`` consecutive
inner indices (the last may be shorter):

* ``chunk > 1``: each chunk's partial product ``P_j = A[:, c_j] @ B[c_j, :]`` is computed by BLAS
  in the carrier dtype, then rounded: ``acc = q(P_0)``; ``acc = q(acc + q(P_j))`` for ``j >= 1``.
* ``chunk == 1``: a rounding after every multiply-add:
  ``acc = q(a_i0 * b_0j)``; ``acc = q(acc + q(a_ik * b_kj))`` for ``k = 1 .. K-1``.

The product ``a_ik * b_kj`` and every sum ``acc + q(P)`` are formed in float64 and rounded
once by ``q`` (for float32 carriers the product is then exact, and the sum of two values with at
most 24 significant bits is rounded into ``q``'s format without a harmful double rounding), so
the result models an adder that rounds its exact output. The result has the carrier dtype of
``A @ B``. ``q`` is called ``2 * n_chunks - 1`` times; each call is one quantization step of the
accumulator point (its counter, seed and statistics advance per call).

Devices: the code is written against the operands' array module. On CuPy arrays the partial
products run in cuBLAS and ``q`` (a ``QuantPoint``) rounds with the CUDA kernels
(``kernels.cuda``), so nothing leaves the GPU. The roundings are the CPU's bit for bit; the
partial products equal the CPU's when their sums are exact (cuBLAS and OpenBLAS may add a
chunk's terms in another order), always for ``chunk == 1``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from quantsim.backend import get_array_module

Quantizer = Callable[[np.ndarray], np.ndarray]


def _as_2d(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Reshape ``A (..., K)`` and ``B (K, N) or (K,)`` to 2-D; returns the output shape too."""
    if A.ndim == 0 or B.ndim == 0:
        raise ValueError("chunked_matmul needs arrays with at least one dimension, got scalars")
    if B.ndim > 2:
        raise ValueError(f"chunked_matmul: B must be 1-D or 2-D, got shape {B.shape}")
    K = A.shape[-1]
    if B.shape[0] != K:
        raise ValueError(
            f"chunked_matmul: inner dimensions differ: A {A.shape} and B {B.shape}"
        )
    out_shape = A.shape[:-1] + B.shape[1:]
    M, N = int(np.prod(A.shape[:-1])), int(np.prod(B.shape[1:]))
    return A.reshape(M, K), B.reshape(K, N), out_shape


def chunked_matmul(A: np.ndarray, B: np.ndarray, q: Quantizer, chunk: int) -> np.ndarray:
    """``A @ B`` with chunked accumulation in the format of quantizer ``q`` (module docstring).

    ``A``: (..., K); ``B``: (K, N) or (K,). ``q`` maps a float64 array to its rounding (a
    ``QuantPoint`` or ``lambda x: fmt.quantize(x)``). ``chunk >= 1``.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    xp = get_array_module(A, B)
    A, B = xp.asarray(A), xp.asarray(B)
    dtype = np.result_type(A.dtype, B.dtype)
    A2, B2, out_shape = _as_2d(A, B)
    K = A2.shape[1]
    if K == 0:
        return xp.zeros(out_shape, dtype=dtype)
    if chunk == 1:
        acc = _accumulate_each(A2, B2, q)
    else:
        acc = _accumulate_chunks(A2, B2, q, int(chunk), dtype)
    return acc.astype(dtype, copy=False).reshape(out_shape)


def _accumulate_chunks(
    A: np.ndarray, B: np.ndarray, q: Quantizer, chunk: int, dtype: np.dtype
) -> np.ndarray:
    K = A.shape[1]
    xp = get_array_module(A)
    if xp is not np:  # CuPy's matmul takes no dtype: cast once (exact, to the result dtype)
        A, B = A.astype(dtype, copy=False), B.astype(dtype, copy=False)
    acc = None
    for start in range(0, K, chunk):
        stop = min(start + chunk, K)
        # BLAS in the carrier dtype; the float64 copy is exact.
        if xp is np:
            partial = np.matmul(A[:, start:stop], B[start:stop, :], dtype=dtype)
        else:
            partial = xp.matmul(A[:, start:stop], B[start:stop, :])
        partial = partial.astype(np.float64)
        if acc is None:
            acc = q(partial)
        else:
            total = q(partial)  # a fresh array or ``partial`` itself: safe to add into
            total += acc
            acc = q(total)
    return acc


def _accumulate_each(A: np.ndarray, B: np.ndarray, q: Quantizer) -> np.ndarray:
    A64 = A.astype(np.float64)
    B64 = B.astype(np.float64)
    outer = np.multiply.outer if isinstance(A, np.ndarray) else _broadcast_outer
    acc = q(outer(A64[:, 0], B64[0, :]))
    for k in range(1, A.shape[1]):
        total = q(outer(A64[:, k], B64[k, :]))
        total += acc
        acc = q(total)
    return acc


def _broadcast_outer(a, b):
    """``multiply.outer`` of two vectors by broadcasting (the same products, on any device)."""
    return a[:, None] * b[None, :]


def reference_matmul(A: np.ndarray, B: np.ndarray, q: Quantizer, chunk: int) -> np.ndarray:
    """Slow pure-Python oracle of :func:`chunked_matmul` (scalar loops; tiny matrices only).

    Within a chunk (``chunk > 1``) the terms are summed left to right in the carrier dtype,
    which equals BLAS only when those sums are exact (the tests choose such data).
    """
    dtype = np.result_type(A, B)
    A2, B2, out_shape = _as_2d(np.asarray(A), np.asarray(B))
    M, K = A2.shape
    N = B2.shape[1]
    C = np.zeros((M, N), dtype=np.float64)

    def q1(v: float) -> float:
        return float(q(np.array([v], dtype=np.float64))[0])

    for i in range(M):
        for j in range(N):
            acc = None
            for start in range(0, K, chunk):
                stop = min(start + chunk, K)
                if chunk == 1:
                    p = float(A2[i, start]) * float(B2[start, j])
                else:
                    s = dtype.type(0)
                    for k in range(start, stop):
                        s = dtype.type(s + dtype.type(A2[i, k]) * dtype.type(B2[k, j]))
                    p = float(s)
                acc = q1(p) if acc is None else q1(acc + q1(p))
            C[i, j] = 0.0 if acc is None else acc
    return C.astype(dtype).reshape(out_shape)
