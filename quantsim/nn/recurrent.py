"""LSTM and GRU over whole batch-first sequences with full backpropagation through time.

Input ``X (N, T, F)``; output ``(N, T, H)`` with ``return_sequences=True`` or the last step
``(N, H)``. The initial state is zero. Input GEMMs run once over all N·T rows; the recurrent
GEMMs run per step; all through ``q.matmul``. The LSTM keeps its sequences time-major inside
(``(T, N, ·)``: each step's rows contiguous for its product and kernels) and hands back
batch-first arrays. Forward: gate pre-activations, gate outputs and the
hidden/cell states go through ``activations``. Backward: the incoming error, the per-step state
errors and the gate pre-activation errors go through ``errors``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quantsim.nn import _lstm_kernels
from quantsim.nn._util import (
    RngLike,
    as_compute,
    as_rng,
    float_dtype,
    init_weights,
    positive_int,
)
from quantsim.nn._xp import array_module
from quantsim.nn.activations import sigmoid
from quantsim.nn.base import (
    Array,
    Backprop,
    Layer,
    Param,
    passes_through,
    plain_matmul,
    writes_out,
)

__all__ = ["GRU", "LSTM"]


class _Recurrent(Layer):
    _gates: int

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        rng: RngLike,
        return_sequences: bool = True,
        dtype: Any = np.float32,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.input_size = positive_int(input_size, "input_size")
        self.hidden_size = positive_int(hidden_size, "hidden_size")
        self.return_sequences = bool(return_sequences)
        dt = float_dtype(dtype)
        gen = as_rng(rng)
        F, H, G = self.input_size, self.hidden_size, self._gates
        # Glorot per gate block (fan_out = H, not G·H): each gate is its own linear map.
        self.params["W"] = Param(init_weights(gen, "glorot", F, H, (F, G * H), dt))
        self.params["U"] = Param(init_weights(gen, "glorot", H, H, (H, G * H), dt))
        self.params["b"] = Param(np.zeros((G * H,), dtype=dt))
        self._init_extra()

    def _init_extra(self) -> None:
        """Cell-specific parameters/initial values (overridden by LSTM and GRU)."""

    def _check(self, X: Array) -> Array:
        X = as_compute(X, self.params["W"].value.dtype)
        if X.ndim != 3 or X.shape[2] != self.input_size or X.shape[1] < 1:
            raise ValueError(
                f"{self.name}: expected batch-first input (N, T, {self.input_size}) with T >= 1, "
                f"got {tuple(getattr(X, 'shape', ()))}"
            )
        return X

    def _output(self, Hs: Array) -> Array:
        return Hs if self.return_sequences else Hs[:, -1]

    def _check_error(self, dY: Array, shape: tuple[int, int, int]) -> None:
        """dY must have the output's shape ``(N, T, H)`` or ``(N, H)``: the step kernels read
        it row by row and do not broadcast."""
        want = shape if self.return_sequences else (shape[0], shape[2])
        if tuple(getattr(dY, "shape", ())) != want:
            raise ValueError(f"{self.name}: the error dY has shape "
                             f"{tuple(getattr(dY, 'shape', ()))}; expected the output's {want}")

    def _errors_per_step(self, dY: Array, shape: tuple[int, int, int]) -> Array:
        self._check_error(dY, shape)
        dY = self.q.errors(dY)
        if self.return_sequences:
            return dY
        dH = array_module(dY).zeros(shape, dtype=dY.dtype)
        dH[:, -1] = dY
        return dH


class LSTM(_Recurrent):
    """Long short-term memory (no peepholes). Gate order in ``W (F, 4H)``, ``U (H, 4H)``,
    ``b (4H,)`` is (i, f, o, g); the forget-gate bias starts at 1 (Jozefowicz et al. 2015).

    ``c_t = f·c_{t−1} + i·g``, ``h_t = o·tanh(c_t)``.
    """

    prefix = "lstm"
    _gates = 4

    def _init_extra(self) -> None:
        H = self.hidden_size
        self.params["b"].value[H : 2 * H] = 1.0

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        X = self._check(X)
        xp = array_module(X)
        W, U, b = self.params["W"], self.params["U"], self.params["b"]
        N, T, F = X.shape
        H = self.hidden_size
        q = self.q
        Wq, Uq = q.weights(W.value, tag="W"), q.weights(U.value, tag="U")
        bq = q.weights(b.value, tag="b")
        # Time-major inside: each step's rows are one contiguous (N, ·) block.
        X2 = xp.ascontiguousarray(X.transpose(1, 0, 2)).reshape(T * N, F)
        GX = q.matmul(X2, Wq)
        GX += bq  # a fresh product: add in place
        GX = GX.reshape(T, N, 4 * H)
        dt = GX.dtype
        A = xp.empty((T, N, 4 * H), dtype=dt)  # gate outputs i, f, o, g
        C = xp.empty((T, N, H), dtype=dt)
        Hs = xp.empty((T, N, H), dtype=dt)
        zeros = xp.zeros((N, H), dtype=dt)  # h and c before the first step
        h, c = zeros, zeros
        # One numba pass per step when the activation and error points change nothing; the
        # same kernels split around the points' calls when they are quantization points.
        kernels = isinstance(GX, np.ndarray) and dt in (np.float32, np.float64)
        fused = (kernels and passes_through(q, "activations", dt)
                 and passes_through(q, "errors", dt))
        split = kernels and not fused and _quantization_points(q)
        if fused or split:  # per-step work arrays, reused (the same ufuncs as the array version)
            e = np.empty((N, 3 * H), dtype=dt)  # exp(-|z|) of the sigmoid gates
            tg = np.empty((N, H), dtype=dt)  # tanh of the cell input
            tc = np.empty((N, H), dtype=dt)  # tanh of the cell
        if split:  # values before rounding (the points write into A, C and Hs)
            z_q, a_raw = np.empty((N, 4 * H), dtype=dt), np.empty((N, 4 * H), dtype=dt)
            c_raw, h_raw = np.empty((N, H), dtype=dt), np.empty((N, H), dtype=dt)
        for t in range(T):
            if split:
                z = _split_pre_activation(q, GX, t, h, Uq, z_q)
                _lstm_kernels.pre_activation(z, z, e, False)
                np.exp(e, out=e)
                _lstm_kernels.gates(z, e, np.tanh(z[:, 3 * H :], out=tg), a_raw)
                _round_into(q.activations, a_raw, A[t])
                _lstm_kernels.cell(A[t], C[t - 1] if t else zeros, c_raw)
                _round_into(q.activations, c_raw, C[t])
                np.multiply(A[t, :, 2 * H : 3 * H], np.tanh(C[t], out=tc), out=h_raw)
                h = _round_into(q.activations, h_raw, Hs[t])
                continue
            if fused:
                if t == 0:
                    z = GX[0]
                    _lstm_kernels.pre_activation(z, z, e, False)
                else:
                    z = q.matmul(h, Uq)
                    if z.dtype == dt and z.flags.c_contiguous:  # a fresh product: add into it
                        _lstm_kernels.pre_activation(GX[t], z, e, True)
                    else:
                        z = np.ascontiguousarray(GX[t] + z)
                        _lstm_kernels.pre_activation(z, z, e, False)
                np.exp(e, out=e)
                _lstm_kernels.gates_and_cell(z, e, np.tanh(z[:, 3 * H :], out=tg), A[t],
                                             C[t - 1] if t else zeros, C[t])
                h = np.multiply(A[t, :, 2 * H : 3 * H], np.tanh(C[t], out=tc), out=Hs[t])
                continue
            z = GX[0] if t == 0 else GX[t] + q.matmul(h, Uq)
            z = q.activations(z)
            a = xp.concatenate([sigmoid(z[:, : 3 * H]), xp.tanh(z[:, 3 * H :])], axis=1)
            a = q.activations(a)
            i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            c = q.activations(f * c + i * g)
            h = q.activations(o * xp.tanh(c))
            A[t], C[t], Hs[t] = a, c, h

        def backprop(dY: Array, input_grad: bool = True) -> Array | None:
            self._check_error(dY, (N, T, H))
            dY = q.errors(dY)
            if self.return_sequences:  # time-major, as the step buffers
                dH = xp.ascontiguousarray(dY.transpose(1, 0, 2))
            DZ = xp.empty((T, N, 4 * H), dtype=dt)
            dh_next = xp.zeros((N, H), dtype=dt)
            dc_next = xp.zeros((N, H), dtype=dt)
            plain_dY = isinstance(dY, np.ndarray) and dY.dtype == dt
            fused_back, split_back = fused and plain_dY, split and plain_dY
            if fused_back or split_back:
                dc_buf = np.empty((N, H), dtype=dt)
                tc_back = np.empty((N, H), dtype=dt)
            if split_back:
                dc_raw, dz_raw = np.empty((N, H), dtype=dt), np.empty((N, 4 * H), dtype=dt)
            for t in range(T - 1, -1, -1):
                # The incoming error at step t: zero before the last step of a last-step output.
                dh_in = dH[t] if self.return_sequences else (dY if t == T - 1 else zeros)
                c_prev = C[t - 1] if t > 0 else zeros
                if split_back:
                    a = A[t]
                    tc = np.tanh(C[t], out=tc_back)
                    dh = q.errors(np.add(dh_in, dh_next))
                    _lstm_kernels.cell_error(dc_next, dh, a, tc, dc_raw)
                    dc = _round_into(q.errors, dc_raw, dc_buf)
                    _lstm_kernels.gate_errors(dc, dh, a, c_prev, tc, dz_raw)
                    _round_into(q.errors, dz_raw, DZ[t])
                    dc_next = np.multiply(dc, a[:, H : 2 * H])
                    if t > 0:
                        dh_next = q.matmul(DZ[t], Uq.T)
                    continue
                if fused_back:
                    _lstm_kernels.step_back(np.ascontiguousarray(dh_in),
                                            np.ascontiguousarray(dh_next), dc_next, A[t], c_prev,
                                            np.tanh(C[t], out=tc_back), DZ[t], dc_buf)
                    dc_next, dc_buf = dc_buf, dc_next
                    if t > 0:
                        dh_next = q.matmul(DZ[t], Uq.T)
                    continue
                a = A[t]
                i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
                tc = xp.tanh(C[t])
                dh = q.errors(dh_in + dh_next)
                dc = q.errors(dc_next + dh * o * (1 - tc * tc))
                dz = q.errors(
                    xp.concatenate(
                        [dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                         dh * tc * o * (1 - o), dc * i * (1 - g * g)],
                        axis=1,
                    )
                )
                DZ[t] = dz
                dc_next = dc * f
                if t > 0:
                    dh_next = q.matmul(dz, Uq.T)
            DZ2 = DZ.reshape(T * N, 4 * H)
            W.add_grad(q.gradients(q.matmul(X2.T, DZ2), tag="W"))
            # dU = sum over t of h_{t-1}^T dz_t; h_{-1} = 0, so step 0 adds nothing.
            dU = (q.matmul(Hs[:-1].reshape((T - 1) * N, H).T, DZ[1:].reshape((T - 1) * N, 4 * H))
                  if T > 1 else xp.zeros_like(U.value))
            U.add_grad(q.gradients(dU, tag="U"))
            b.add_grad(q.gradients(DZ2.sum(axis=0), tag="b"))
            if not input_grad and plain_matmul(q, DZ2.dtype):
                return None  # the caller does not need dX (the network's input)
            dX = q.matmul(DZ2, Wq.T).reshape(T, N, F)
            return xp.ascontiguousarray(dX.transpose(1, 0, 2))

        backprop.input_grad_optional = True  # type: ignore[attr-defined]
        Y = xp.ascontiguousarray(Hs.transpose(1, 0, 2)) if self.return_sequences else Hs[-1]
        return Y, backprop


def _quantization_points(q: Any) -> bool:
    """Whether ``q``'s activation and error points declare `writes_out` (`QuantPoint` does):
    the split LSTM kernels hand them reused work arrays. Other points keep the array version,
    which passes each call a fresh array."""
    return writes_out(q.activations) and writes_out(q.errors)


def _split_pre_activation(q: Any, GX: np.ndarray, t: int, h: np.ndarray, Uq: np.ndarray,
                          out: np.ndarray) -> np.ndarray:
    """Step t's quantized gate pre-activations q.activations(GX[t] + h·U), as the array version
    forms them (the product added into when it is a fresh C-contiguous array), in ``out``."""
    if t == 0:
        return _round_into(q.activations, GX[0], out)
    z = q.matmul(h, Uq)
    if z.dtype == GX.dtype and z.flags.c_contiguous:
        np.add(GX[t], z, out=z)
    else:
        z = GX[t] + z
    return _round_into(q.activations, z, out)


def _round_into(point: Any, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out`` (another array than ``x``) set to ``point(x)``: asked for with ``out=``, copied
    when a format's own ``quantize`` returns another array. Not in place: that costs a copy of
    the input (`quantsim.formats.base.separate_input`)."""
    y = point(x, out=out)
    if y is not out:
        out[...] = y
    return out


class GRU(_Recurrent):
    """Gated recurrent unit, PyTorch's formulation. Gate order (r, z, n) in ``W (F, 3H)``,
    ``U (H, 3H)``, input bias ``b (3H,)`` and recurrent bias ``bh (3H,)``:

    ``r, z = σ(x·W + b + h·U + bh)[r, z]``, ``n = tanh(x·W_n + b_n + r·(h·U_n + bh_n))``,
    ``h_t = (1 − z)·n + z·h_{t−1}``.
    """

    prefix = "gru"
    _gates = 3

    def _init_extra(self) -> None:
        self.params["bh"] = Param(np.zeros_like(self.params["b"].value))

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        X = self._check(X)
        xp = array_module(X)
        W, U, b, bh = (self.params[k] for k in ("W", "U", "b", "bh"))
        N, T, F = X.shape
        H = self.hidden_size
        q = self.q
        Wq, Uq = q.weights(W.value, tag="W"), q.weights(U.value, tag="U")
        bq, bhq = q.weights(b.value, tag="b"), q.weights(bh.value, tag="bh")
        X2 = X.reshape(N * T, F)
        GX = (q.matmul(X2, Wq) + bq).reshape(N, T, 3 * H)
        dt = GX.dtype
        RZ = xp.empty((N, T, 2 * H), dtype=dt)  # gate outputs r, z
        HN = xp.empty((N, T, H), dtype=dt)  # h·U_n + bh_n
        Ng = xp.empty((N, T, H), dtype=dt)  # candidate n
        Hs = xp.empty((N, T, H), dtype=dt)
        h = xp.zeros((N, H), dtype=dt)
        for t in range(T):
            gh = xp.broadcast_to(bhq, (N, 3 * H)) if t == 0 else q.matmul(h, Uq) + bhq
            rz = q.activations(sigmoid(q.activations(GX[:, t, : 2 * H] + gh[:, : 2 * H])))
            hn = q.activations(gh[:, 2 * H :])
            r, z = rz[:, :H], rz[:, H:]
            n = q.activations(xp.tanh(q.activations(GX[:, t, 2 * H :] + r * hn)))
            h = q.activations((1 - z) * n + z * h)
            RZ[:, t], HN[:, t], Ng[:, t], Hs[:, t] = rz, hn, n, h

        def backprop(dY: Array) -> Array:
            dH = self._errors_per_step(dY, (N, T, H))
            DGX = xp.empty((N, T, 3 * H), dtype=dt)
            DGH = xp.empty((N, T, 3 * H), dtype=dt)
            dh_next = xp.zeros((N, H), dtype=dt)
            for t in range(T - 1, -1, -1):
                r, z = RZ[:, t, :H], RZ[:, t, H:]
                n, hn = Ng[:, t], HN[:, t]
                h_prev = Hs[:, t - 1] if t > 0 else xp.zeros((N, H), dtype=dt)
                dh = q.errors(dH[:, t] + dh_next)
                dn_pre = dh * (1 - z) * (1 - n * n)
                dgx = q.errors(
                    xp.concatenate(
                        [dn_pre * hn * r * (1 - r), dh * (h_prev - n) * z * (1 - z), dn_pre],
                        axis=1,
                    )
                )
                dgh = xp.concatenate([dgx[:, : 2 * H], q.errors(dgx[:, 2 * H :] * r)], axis=1)
                DGX[:, t], DGH[:, t] = dgx, dgh
                if t > 0:
                    dh_next = dh * z + q.matmul(dgh, Uq.T)
            DGX2, DGH2 = DGX.reshape(N * T, 3 * H), DGH.reshape(N * T, 3 * H)
            W.add_grad(q.gradients(q.matmul(X2.T, DGX2), tag="W"))
            # dU = sum over t of h_{t-1}^T dgh_t; h_{-1} = 0, so step 0 adds nothing.
            dU = (q.matmul(Hs[:, :-1].reshape(N * (T - 1), H).T,
                           DGH[:, 1:].reshape(N * (T - 1), 3 * H))
                  if T > 1 else xp.zeros_like(U.value))
            U.add_grad(q.gradients(dU, tag="U"))
            b.add_grad(q.gradients(DGX2.sum(axis=0), tag="b"))
            bh.add_grad(q.gradients(DGH2.sum(axis=0), tag="bh"))
            return q.matmul(DGX2, Wq.T).reshape(N, T, F)

        return self._output(Hs), backprop
