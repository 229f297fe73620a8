"""One-pass numba kernels for the element-wise part of an LSTM time step on numpy arrays.

The array version in `recurrent.LSTM` makes a dozen temporaries per step (gates, their
derivatives, concatenations). Here numpy still evaluates the transcendental functions (its
``exp`` and ``tanh``, so the values are the array version's) and one pass per step does the
rest with the same float operations in the same order, in the arrays' dtype: results are equal
bit for bit. Used when the activation and error points change nothing and observe nothing.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True)
def gates_and_cell(z, e, tg, c_prev, a, c):
    """a = (σ(z_i), σ(z_f), σ(z_o), g) with σ from e = exp(−|z|) over the first 3H columns as
    `activations.sigmoid` forms it, g = tg = tanh(z_g); c = f·c_prev + i·g. Any strides."""
    N, H = c.shape
    one = a.dtype.type(1)
    for n in range(N):
        zn, en, an, tgn, cpn, cn = z[n], e[n], a[n], tg[n], c_prev[n], c[n]  # rows: unit stride
        for k in range(3 * H):
            ek = en[k]
            an[k] = one / (one + ek) if zn[k] >= 0 else ek / (one + ek)
        for j in range(H):
            g = tgn[j]
            an[3 * H + j] = g
            cn[j] = an[H + j] * cpn[j] + an[j] * g


@numba.njit(cache=True)
def step_back(dh_in, dh_next, dc_next, a, c_prev, tc, dz, dc_out):
    """One step of backpropagation through time (the formulas of `recurrent.LSTM`, tc =
    tanh(c_t)): dh = dh_in + dh_next; dc = dc_next + dh·o·(1 − tc²); dz per gate;
    dc_out = dc·f."""
    N, H = tc.shape
    one = dz.dtype.type(1)
    for n in range(N):
        an, tcn, dzn, cpn = a[n], tc[n], dz[n], c_prev[n]
        dhin, dhnx, dcnx, dco = dh_in[n], dh_next[n], dc_next[n], dc_out[n]
        for j in range(H):
            i, f, o, g = an[j], an[H + j], an[2 * H + j], an[3 * H + j]
            t = tcn[j]
            dh = dhin[j] + dhnx[j]
            dc = dcnx[j] + dh * o * (one - t * t)
            dzn[j] = dc * g * i * (one - i)
            dzn[H + j] = dc * cpn[j] * f * (one - f)
            dzn[2 * H + j] = dh * t * o * (one - o)
            dzn[3 * H + j] = dc * i * (one - g * g)
            dco[j] = dc * f
