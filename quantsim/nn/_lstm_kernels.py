"""One-pass numba kernels for the element-wise part of an LSTM time step on numpy arrays.

The array version in `recurrent.LSTM` makes a dozen temporaries per step (gates, their
derivatives, concatenations). Here numpy still evaluates the transcendental functions (its
``exp`` and ``tanh``, so the values are the array version's) and one pass per step does the
rest with the same float operations in the same order, in the arrays' dtype: results are equal
bit for bit. When the activation and error points change nothing and observe nothing, one
kernel per step and direction (`gates_and_cell`, `step_back`); when they are quantization
points, the same formulas split where the array version rounds (`gates`, `cell`, `cell_error`,
`gate_errors`), with the points' calls between them.

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


@numba.njit(inline="always", error_model="numpy")
def _gate_row(z, e, tg, a, H):
    """One row of the gate outputs: a = (σ(z_i), σ(z_f), σ(z_o), g), σ from e = exp(−|z|)
    over the first 3H entries as `activations.sigmoid` forms it, g = tg = tanh(z_g)."""
    one = a.dtype.type(1)
    for k in range(3 * H):
        # Both quotients, then a select (as the array version): the loop vectorises.
        ek = e[k]
        d = one + ek
        pos, neg = one / d, ek / d
        a[k] = pos if z[k] >= 0 else neg
    for j in range(H):
        a[3 * H + j] = tg[j]


@numba.njit(inline="always", error_model="numpy")
def _cell_row(a, c_prev, c, H):
    """One row of the cell: c = f·c_prev + i·g from the gate outputs a = (i, f, o, g)."""
    for j in range(H):
        c[j] = a[H + j] * c_prev[j] + a[j] * a[3 * H + j]


@numba.njit(cache=True, error_model="numpy")
def gates_and_cell(z, e, tg, a, c_prev, c):
    """`gates`, then `cell`, row by row. z, a: (N, 4H); e: (N, 3H); tg, c_prev, c: (N, H)."""
    N, H = tg.shape
    for n in range(N):
        _gate_row(z[n], e[n], tg[n], a[n], H)
        _cell_row(a[n], c_prev[n], c[n], H)


@numba.njit(cache=True, error_model="numpy")
def gates(z, e, tg, a):
    """a = (σ(z_i), σ(z_f), σ(z_o), g) with σ from e = exp(−|z|) over the first 3H columns as
    `activations.sigmoid` forms it, g = tg = tanh(z_g). z, a: (N, 4H); e: (N, 3H); tg: (N, H)."""
    N, H = tg.shape
    for n in range(N):
        _gate_row(z[n], e[n], tg[n], a[n], H)


@numba.njit(cache=True, error_model="numpy")
def cell(a, c_prev, c):
    """c = f·c_prev + i·g from the gate outputs a = (i, f, o, g): (N, 4H); c_prev, c: (N, H)."""
    N, H = c.shape
    for n in range(N):
        _cell_row(a[n], c_prev[n], c[n], H)


@numba.njit(inline="always", error_model="numpy")
def _cell_error_row(dc_next, dh, o, tc, dc, H):
    """One row of dc = dc_next + dh·o·(1 − tc²)."""
    one = dc.dtype.type(1)
    for j in range(H):
        tcj = tc[j]
        dc[j] = dc_next[j] + dh[j] * o[j] * (one - tcj * tcj)


@numba.njit(inline="always", error_model="numpy")
def _gate_error_rows(dc, dh, a, c_prev, tc, dz, H):
    """One row of the gate errors dz = (dc·g·i(1 − i), dc·c_prev·f(1 − f), dh·tc·o(1 − o),
    dc·i(1 − g²)). One loop per gate block: with all four in one loop, its loads and stores
    512 bytes apart ran 3x slower (34 vs 11 µs per step at N = H = 128)."""
    one = dz.dtype.type(1)
    for j in range(H):
        i = a[j]
        dz[j] = dc[j] * a[3 * H + j] * i * (one - i)
    for j in range(H):
        f = a[H + j]
        dz[H + j] = dc[j] * c_prev[j] * f * (one - f)
    for j in range(H):
        o = a[2 * H + j]
        dz[2 * H + j] = dh[j] * tc[j] * o * (one - o)
    for j in range(H):
        g = a[3 * H + j]
        dz[3 * H + j] = dc[j] * a[j] * (one - g * g)


@numba.njit(cache=True, error_model="numpy")
def step_back(dh_in, dh_next, dc_next, a, c_prev, tc, dz, dc_out):
    """One step of backpropagation through time (the formulas of `recurrent.LSTM`, tc =
    tanh(c_t)): dh = dh_in + dh_next; dc = dc_next + dh·o·(1 − tc²) (`cell_error`); dz per
    gate (`gate_errors`); dc_out = dc·f. a, dz: (N, 4H); the others (N, H)."""
    N, H = tc.shape
    dh = np.empty(H, dtype=dz.dtype)
    for n in range(N):
        for j in range(H):
            dh[j] = dh_in[n, j] + dh_next[n, j]
        # dc is held in dc_out until the last loop.
        _cell_error_row(dc_next[n], dh, a[n, 2 * H : 3 * H], tc[n], dc_out[n], H)
        _gate_error_rows(dc_out[n], dh, a[n], c_prev[n], tc[n], dz[n], H)
        for j in range(H):
            dc_out[n, j] = dc_out[n, j] * a[n, H + j]


@numba.njit(cache=True, error_model="numpy")
def cell_error(dc_next, dh, a, tc, dc):
    """dc = dc_next + dh·o·(1 − tc²), o from the gate outputs a (N, 4H); the others (N, H)."""
    N, H = tc.shape
    for n in range(N):
        _cell_error_row(dc_next[n], dh[n], a[n, 2 * H : 3 * H], tc[n], dc[n], H)


@numba.njit(cache=True, error_model="numpy")
def gate_errors(dc, dh, a, c_prev, tc, dz):
    """The gate errors dz (N, 4H) of one step (see `step_back`) from dc, dh, c_prev, tc (N, H)
    and the gate outputs a (N, 4H)."""
    N, H = tc.shape
    for n in range(N):
        _gate_error_rows(dc[n], dh[n], a[n], c_prev[n], tc[n], dz[n], H)
