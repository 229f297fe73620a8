"""One-pass numba kernels for the element-wise part of an LSTM time step on numpy arrays.

The array version in `recurrent.LSTM` makes a dozen temporaries per step (gates, their
derivatives, concatenations). Here numpy still evaluates the transcendental functions (its
``exp`` and ``tanh``, so the values are the array version's) and one pass per step does the
rest with the same float operations in the same order, in the arrays' dtype: results are equal
bit for bit. Used when the activation and error points change nothing and observe nothing.

The sequence buffers are passed whole with the step index ``t`` (C-contiguous 3-D arrays: each
row of a step is contiguous, so the inner loops vectorise).
"""

from __future__ import annotations

import numba


@numba.njit(cache=True)
def gates_and_cell(z, e, tg, t, A, C):
    """A[:, t] = (σ(z_i), σ(z_f), σ(z_o), g) with σ from e = exp(−|z|) over the first 3H
    columns as `activations.sigmoid` forms it, g = tg = tanh(z_g);
    C[:, t] = f·C[:, t−1] + i·g (C[:, −1] = 0). z: (N, 4H); e: (N, 3H); tg: (N, H)."""
    N, H = tg.shape
    one = A.dtype.type(1)
    zero = A.dtype.type(0)
    for n in range(N):
        for k in range(3 * H):
            # Both quotients, then a select (as the array version): the loop vectorises.
            ek = e[n, k]
            d = one + ek
            pos, neg = one / d, ek / d
            A[n, t, k] = pos if z[n, k] >= 0 else neg
        for j in range(H):
            g = tg[n, j]
            A[n, t, 3 * H + j] = g
            c_prev = C[n, t - 1, j] if t > 0 else zero
            C[n, t, j] = A[n, t, H + j] * c_prev + A[n, t, j] * g


@numba.njit(cache=True)
def step_back(dH, t, dh_next, dc_next, A, C, tc, DZ, dc_out):
    """One step of backpropagation through time (the formulas of `recurrent.LSTM`, tc =
    tanh(C[:, t])): dh = dH[:, t] + dh_next; dc = dc_next + dh·o·(1 − tc²); DZ[:, t] per gate;
    dc_out = dc·f."""
    N, H = tc.shape
    one = DZ.dtype.type(1)
    zero = DZ.dtype.type(0)
    for n in range(N):
        for j in range(H):
            i, f = A[n, t, j], A[n, t, H + j]
            o, g = A[n, t, 2 * H + j], A[n, t, 3 * H + j]
            c_prev = C[n, t - 1, j] if t > 0 else zero
            tcj = tc[n, j]
            dh = dH[n, t, j] + dh_next[n, j]
            dc = dc_next[n, j] + dh * o * (one - tcj * tcj)
            DZ[n, t, j] = dc * g * i * (one - i)
            DZ[n, t, H + j] = dc * c_prev * f * (one - f)
            DZ[n, t, 2 * H + j] = dh * tcj * o * (one - o)
            DZ[n, t, 3 * H + j] = dc * i * (one - g * g)
            dc_out[n, j] = dc * f
