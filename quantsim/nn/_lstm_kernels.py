"""One-pass numba kernels for the element-wise part of an LSTM time step on numpy arrays.

The array version in `recurrent.LSTM` makes a dozen temporaries per step (gates, their
derivatives, concatenations). Here numpy still evaluates the transcendental functions (its
``exp`` and ``tanh``, so the values are the array version's) and one pass per step does the
rest with the same float operations in the same order, in the arrays' dtype: results are equal
bit for bit. Used when the activation and error points change nothing and observe nothing.

Every argument is one time step's C-contiguous (N, ·) matrix (the layer keeps its sequences
time-major), so the inner loops run over contiguous rows and vectorise. ``error_model="numpy"``:
a float division by zero gives IEEE inf/NaN, as numpy's does, instead of a check per element
that raises (the check kept the gate loop from vectorising: 46 instead of 18 µs per step at
N = H = 128).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, error_model="numpy")
def pre_activation(gx, z, e, add):
    """z = gx + z when ``add`` (the input part and the recurrent product of a step's gate
    pre-activations), then e = −|z| over the first 3H columns (numpy's ``exp`` of it follows).
    gx, z: (N, 4H); e: (N, 3H)."""
    N, G = z.shape
    S = e.shape[1]
    for n in range(N):
        if add:
            for k in range(G):
                z[n, k] = gx[n, k] + z[n, k]
        for k in range(S):
            e[n, k] = -abs(z[n, k])


@numba.njit(cache=True, error_model="numpy")
def gates_and_cell(z, e, tg, a, c_prev, c):
    """a = (σ(z_i), σ(z_f), σ(z_o), g) with σ from e = exp(−|z|) over the first 3H columns as
    `activations.sigmoid` forms it, g = tg = tanh(z_g); c = f·c_prev + i·g.
    z, a: (N, 4H); e: (N, 3H); tg, c_prev, c: (N, H)."""
    N, H = tg.shape
    one = a.dtype.type(1)
    for n in range(N):
        for k in range(3 * H):
            # Both quotients, then a select (as the array version): the loop vectorises.
            ek = e[n, k]
            d = one + ek
            pos, neg = one / d, ek / d
            a[n, k] = pos if z[n, k] >= 0 else neg
        for j in range(H):
            g = tg[n, j]
            a[n, 3 * H + j] = g
            c[n, j] = a[n, H + j] * c_prev[n, j] + a[n, j] * g


@numba.njit(cache=True, error_model="numpy")
def step_back(dh_in, dh_next, dc_next, a, c_prev, tc, dz, dc_out):
    """One step of backpropagation through time (the formulas of `recurrent.LSTM`, tc =
    tanh(c_t)): dh = dh_in + dh_next; dc = dc_next + dh·o·(1 − tc²); dz per gate;
    dc_out = dc·f. a, dz: (N, 4H); the others (N, H).

    One loop per gate block: with all four in one loop, its loads and stores 512 bytes apart
    ran 3x slower (34 vs 11 µs at N = H = 128)."""
    N, H = tc.shape
    one = dz.dtype.type(1)
    dh = np.empty(H, dtype=dz.dtype)
    for n in range(N):
        for j in range(H):  # dh and dc (dc held in dc_out until the last loop)
            tcj = tc[n, j]
            dh[j] = dh_in[n, j] + dh_next[n, j]
            dc_out[n, j] = dc_next[n, j] + dh[j] * a[n, 2 * H + j] * (one - tcj * tcj)
        for j in range(H):
            i = a[n, j]
            dz[n, j] = dc_out[n, j] * a[n, 3 * H + j] * i * (one - i)
        for j in range(H):
            f = a[n, H + j]
            dz[n, H + j] = dc_out[n, j] * c_prev[n, j] * f * (one - f)
        for j in range(H):
            o = a[n, 2 * H + j]
            dz[n, 2 * H + j] = dh[j] * tc[n, j] * o * (one - o)
        for j in range(H):
            g = a[n, 3 * H + j]
            dz[n, 3 * H + j] = dc_out[n, j] * a[n, j] * (one - g * g)
        for j in range(H):
            dc_out[n, j] = dc_out[n, j] * a[n, H + j]
