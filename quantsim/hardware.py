"""Hardware cost model: MACs per product, zero-skippable MACs, bits moved, footprint, energy.

Everything is per training step (one mini-batch of ``batch_size``) and per layer; the model is
described with its assumptions in docs/statistics.md. In short:

- **MACs** of the three products of every GEMM layer (Linear, Conv2d, Maxout, LSTM, GRU):
  forward, backward-data, backward-weight, from the shapes a dry forward pass records on an
  unbound copy of the network (the network itself is not touched). A layer may define
  ``macs(input_shape, output_shape) -> {"forward", "backward_data", "backward_weight"}``.
- **Skippable MACs** (a MAC whose operand is exactly zero needs no multiply and no add):
  estimated from *measured* zero fractions of the two operands, assuming zeros in the two
  operands are independent: ``skippable = macs * (1 - (1 - za) * (1 - zb))``. ``za``/``zb``
  are the ``zero_out_fraction`` (zeros after rounding) of the points that rounded the operands:
  the input's producer (previous layer's ``activations``, or ``inputs`` for the first layer),
  the layer's ``weights`` and its ``errors``. Unmeasured operands count as dense (z = 0).
  Exact counting is available with :func:`count_macs` (a wrapper of ``q.matmul`` that counts,
  per product, ``sum_k (M*N - nnz(A[:, k]) * nnz(B[k, :]))``); pass the counter as ``exact=``.
- **Bits moved** per role at the width of the role's format (see ``_traffic``), **footprint**
  per role, and **energy**: MAC = multiply at the operands' width + add at the accumulator's
  width, memory = bits moved * (64-bit access energy / 64) at one memory level, from an
  :class:`~quantsim.energy_tables.EnergyTable` (default: Horowitz, ISSCC 2014, 45 nm).
  Zero-skipping saves MAC energy only; memory traffic stays dense.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from quantsim.energy_tables import EnergyTable, load_energy_table
from quantsim.precision import Precision, iter_layers

__all__ = [
    "MacCounter",
    "PRODUCTS",
    "cost_summary",
    "count_macs",
    "format_cost",
    "layer_macs",
    "mac_energy",
    "operand_class",
    "skippable_macs",
    "trace_shapes",
]

PRODUCTS = ("forward", "backward_data", "backward_weight")
STORAGE_ROLES = ("inputs", "weights", "activations", "errors", "gradients", "updates",
                 "optimizer_state")
_PASS_THROUGH = ("Flatten", "Reshape")


# -- formats -> arithmetic ----------------------------------------------------------------------

def storage_bits(fmt: Any) -> float:
    """Bits per stored element (block formats include their share of the block exponent)."""
    return float(getattr(fmt, "bits_per_element", fmt.bits))


def operand_class(fmt: Any) -> tuple[str, int]:
    """``("float", significand bits)`` for floating formats (``mbits + 1``), else
    ``("int", bits)``: fixed point, dynamic fixed point, block mantissas and custom formats
    are multiplied as integers of their width."""
    if hasattr(fmt, "ebits") and hasattr(fmt, "mbits"):
        return "float", int(fmt.mbits) + 1
    return "int", int(fmt.bits)


def mult_energy(table: EnergyTable, fa: Any, fb: Any) -> float:
    """pJ of one multiply of operands in formats ``fa`` and ``fb``: a float multiplier if either
    is floating, at the wider significand; else an integer multiplier at the wider width."""
    (ka, wa), (kb, wb) = operand_class(fa), operand_class(fb)
    kind = "float_mult" if "float" in (ka, kb) else "int_mult"
    return table.op(kind, max(wa, wb))


def add_energy(table: EnergyTable, facc: Any) -> float:
    """pJ of one accumulation in the accumulator format (float or integer adder, total bits)."""
    kind = "float_add" if operand_class(facc)[0] == "float" else "int_add"
    return table.op(kind, int(facc.bits))


def mac_energy(table: EnergyTable, fa: Any, fb: Any, facc: Any) -> float:
    return mult_energy(table, fa, fb) + add_energy(table, facc)


# -- shapes and MACs ----------------------------------------------------------------------------

def _prod(shape: Any) -> int:
    return int(math.prod(int(s) for s in shape))


def trace_shapes(net: Any, batch_size: int, input_shape: tuple[int, ...],
                 input_dtype: Any = None) -> list[dict[str, Any]]:
    """``[{"layer", "kind", "x_shape", "y_shape"}]`` in forward order, from an evaluation-mode
    forward pass of zeros through an unbound deep copy of ``net`` (``net`` is not modified)."""
    from quantsim.nn.base import IdentityPoints

    twin = copy.deepcopy(net)
    layers = list(iter_layers(twin))
    for layer in layers:
        if hasattr(layer, "q"):
            layer.q = IdentityPoints()
    records: dict[str, dict[str, Any]] = {}
    order: list[str] = []

    def wrap(layer: Any) -> None:
        original = layer.forward

        def forward(X: Any, train: bool) -> Any:
            Y, bp = original(X, train)
            if layer.name not in records:
                order.append(layer.name)
            records[layer.name] = {"layer": layer.name, "kind": type(layer).__name__,
                                   "x_shape": tuple(X.shape), "y_shape": tuple(Y.shape)}
            return Y, bp

        layer.forward = forward

    for layer in layers:
        wrap(layer)
    if input_dtype is None:
        first = layers[0] if layers else None
        if first is not None and type(first).__name__ == "Embedding":
            input_dtype = np.int64
        else:
            input_dtype = next((lay.dtype for lay in layers if lay.dtype is not None),
                               np.float32)
    X = np.zeros((int(batch_size), *tuple(input_shape)), dtype=input_dtype)
    twin.forward(X, train=False)
    return [records[name] for name in order]


def layer_macs(layer: Any, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> dict[str, int]:
    """MACs of the forward, backward-data and backward-weight products of one layer.

    Linear ``rows·in·out`` each; Conv2d ``N·Ho·Wo · C_in·kh·kw · C_out`` each; Maxout
    ``N·in·units·pieces`` each; LSTM (G = 4) / GRU (G = 3) with input ``(N, T, F)`` and hidden
    H: each ``N·T·F·G·H + N·(T−1)·H·G·H`` (the state before t = 0 is zero, so the engine makes no
    recurrent product for it, forward or backward). Other layers: 0.
    """
    if hasattr(layer, "macs"):
        got = layer.macs(x_shape, y_shape)
        return {p: int(got.get(p, 0)) for p in PRODUCTS}
    kind = type(layer).__name__
    m = {p: 0 for p in PRODUCTS}
    if kind == "Linear":
        rows = _prod(x_shape[:-1])
        m = {p: rows * layer.in_features * layer.out_features for p in PRODUCTS}
    elif kind == "Conv2d":
        kh, kw = layer.kernel_size
        n, _, ho, wo = y_shape
        v = n * ho * wo * layer.in_channels * kh * kw * layer.out_channels
        m = {p: v for p in PRODUCTS}
    elif kind == "Maxout":
        v = _prod(x_shape[:-1]) * layer.in_features * layer.units * layer.pieces
        m = {p: v for p in PRODUCTS}
    elif kind in ("LSTM", "GRU"):
        n, t, f = x_shape
        h = layer.hidden_size
        g = 4 if kind == "LSTM" else 3
        inp = n * t * f * g * h
        rec = n * (t - 1) * h * g * h
        m = {p: inp + rec for p in PRODUCTS}
    return m


def _internal_activations(layer: Any, x_shape: tuple[int, ...]) -> int:
    """Elements a recurrent layer stores for its backward pass besides its output:
    LSTM gate outputs (4H) and cell states (H); GRU r, z (2H), h·U_n (H) and candidate n (H)."""
    kind = type(layer).__name__
    if kind in ("LSTM", "GRU"):
        n, t, _ = x_shape
        return n * t * layer.hidden_size * (5 if kind == "LSTM" else 4)
    return 0


def _gemm_param_elements(layer: Any) -> int:
    """Weights read again by the backward-data product (the GEMM matrices ``W`` and ``U``)."""
    return sum(int(p.value.size) for k, p in getattr(layer, "params", {}).items()
               if k in ("W", "U"))


# -- exact skippable MACs ----------------------------------------------------------------------

def skippable_macs(A: np.ndarray, B: np.ndarray) -> tuple[int, int]:
    """``(macs, skippable)`` of ``A @ B`` (2-D): a MAC ``A[i,k]·B[k,j]`` is skippable when either
    operand is exactly zero; ``skippable = sum_k (M·N − nnz(A[:, k])·nnz(B[k, :]))``."""
    M, K = A.shape
    K2, N = B.shape
    if K != K2:
        raise ValueError(f"shapes {A.shape} and {B.shape} do not multiply")
    nnz_a = np.count_nonzero(A, axis=0).astype(np.int64)
    nnz_b = np.count_nonzero(B, axis=1).astype(np.int64)
    macs = M * K * N
    return macs, int(macs - int(np.dot(nnz_a, nnz_b)))


class MacCounter:
    """Exact MAC and skippable-MAC totals per layer, from the operands of every ``q.matmul``.

    Costs one ``count_nonzero`` pass over both operands of every product: use it for a few
    sampled steps (``count_macs``), not for whole runs.
    """

    def __init__(self) -> None:
        self.macs: dict[str, int] = {}
        self.skippable: dict[str, int] = {}

    def add(self, layer: str, A: np.ndarray, B: np.ndarray) -> None:
        macs, skip = skippable_macs(np.asarray(A), np.asarray(B))
        self.macs[layer] = self.macs.get(layer, 0) + macs
        self.skippable[layer] = self.skippable.get(layer, 0) + skip

    def fraction(self, layer: str) -> float | None:
        n = self.macs.get(layer, 0)
        return self.skippable[layer] / n if n else None


@contextmanager
def count_macs(net: Any, counter: MacCounter | None = None) -> Iterator[MacCounter]:
    """Count exact (skippable) MACs of every layer's ``q.matmul`` inside the block.

    Uses the engine's ``LayerPoints.mac_counter`` hook when it exists, else wraps ``q.matmul``
    on each layer's points object for the duration of the block. Results are unchanged.
    """
    counter = counter if counter is not None else MacCounter()
    undo = []
    for layer in iter_layers(net):
        q = getattr(layer, "q", None)
        if q is None:
            continue
        if hasattr(q, "mac_counter"):
            previous = q.mac_counter
            q.mac_counter = counter
            undo.append(lambda q=q, previous=previous: setattr(q, "mac_counter", previous))
            continue
        original = q.matmul
        name = layer.name

        def matmul(A: Any, B: Any, original: Any = original, name: str = name) -> Any:
            counter.add(name, A, B)
            return original(A, B)

        q.matmul = matmul
        undo.append(lambda q=q: q.__dict__.pop("matmul", None))
    try:
        yield counter
    finally:
        for fn in undo:
            fn()


# -- the summary -------------------------------------------------------------------------------

def _zero_map(source: Any) -> tuple[dict[tuple[str, str], float], bool]:
    """Normalise ``zero_fractions`` to ``{(layer, role): fraction}``; second item: measured."""
    if source is None:
        return {}, False
    if isinstance(source, Mapping):
        out = {}
        for key, value in source.items():
            if isinstance(key, str):
                layer, _, role = key.rpartition("/")
                key = (layer, role)
            out[(str(key[0]), str(key[1]))] = float(value)
        return out, True
    from quantsim.stats import zero_fractions

    return zero_fractions(source), True


def _producers(layers: list[Any]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    prev = (layers[0].name, "inputs") if layers else ("", "inputs")
    for layer in layers:
        out[layer.name] = prev
        if type(layer).__name__ not in _PASS_THROUGH:
            prev = (layer.name, "activations")
    return out


def _traffic(n_in: int, n_out: int, n_internal: int, n_params: int, n_gemm: int, gemm: bool,
             first: bool, moments: int) -> dict[str, int]:
    """Elements moved per role in one training step (reads + writes):

    - inputs (first layer only): the batch read by the forward product and, for a GEMM layer,
      again by the backward-weight product;
    - activations: the output written once and read twice (by the next layer's forward pass and
      again in backward: its backward-weight product or an element-wise derivative), plus
      recurrent internals written once and read once;
    - errors: dY written once (by the next layer's backward pass) and read twice by a GEMM
      layer (backward-data and backward-weight products), once by other layers;
    - weights: every parameter read in the forward pass, the GEMM matrices read again in the
      backward-data product;
    - gradients: written once, read once by the optimizer;
    - updates: the master copy read and written once; optimizer_state: each moment read and
      written once.
    """
    return {
        "inputs": (2 if gemm else 1) * n_in if first else 0,
        "activations": 3 * n_out + 2 * n_internal,
        "errors": (3 if gemm else 2) * n_out,
        "weights": n_params + (n_gemm if gemm else 0),
        "gradients": 2 * n_params,
        "updates": 2 * n_params,
        "optimizer_state": 2 * moments * n_params,
    }


def _layer_costs(
    traces: list[dict[str, Any]], layers: dict[str, Any], precision: Precision,
    zeros: dict[tuple[str, str], float], table: EnergyTable, memory: str, moments: int,
    exact: MacCounter | None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    ordered = [layers[t["layer"]] for t in traces]
    producers = _producers(ordered)
    per_bit = table.memory_per_bit(memory)
    rows = []
    footprint = {r: 0.0 for r in STORAGE_ROLES}
    for i, t in enumerate(traces):
        layer = layers[t["layer"]]
        name = layer.name
        fmt = {r: precision.format_for(name, r) for r in STORAGE_ROLES + ("accumulator",)}
        producer = producers[name]
        f_in = precision.format_for(*producer)
        macs = layer_macs(layer, t["x_shape"], t["y_shape"])
        gemm = macs["forward"] > 0
        z = {"input": zeros.get(producer), "weights": zeros.get((name, "weights")),
             "errors": zeros.get((name, "errors"))}
        zz = {k: (v if v is not None else 0.0) for k, v in z.items()}
        operands = {"forward": ("input", "weights"), "backward_data": ("errors", "weights"),
                    "backward_weight": ("input", "errors")}
        formats = {"input": f_in, "weights": fmt["weights"], "errors": fmt["errors"]}
        exact_fraction = exact.fraction(name) if exact is not None else None
        skippable, e_dense, e_skip = {}, 0.0, 0.0
        for p in PRODUCTS:
            a, b = operands[p]
            frac = exact_fraction if exact_fraction is not None else \
                1.0 - (1.0 - zz[a]) * (1.0 - zz[b])
            skippable[p] = int(round(macs[p] * frac))
            e_mac = mac_energy(table, formats[a], formats[b], fmt["accumulator"])
            e_dense += macs[p] * e_mac
            e_skip += (macs[p] - skippable[p]) * e_mac
        n_in, n_out = _prod(t["x_shape"]), _prod(t["y_shape"])
        n_internal = _internal_activations(layer, t["x_shape"])
        n_params = sum(int(p.value.size) for p in getattr(layer, "params", {}).values())
        elems = _traffic(n_in, n_out, n_internal, n_params, _gemm_param_elements(layer), gemm,
                         i == 0, moments)
        bits = {r: elems[r] * storage_bits(fmt[r]) for r in STORAGE_ROLES}
        # footprint (bits): what is held at once during the step
        footprint["inputs"] += n_in * storage_bits(fmt["inputs"]) if i == 0 else 0.0
        footprint["activations"] += (n_out + n_internal) * storage_bits(fmt["activations"])
        footprint["errors"] = max(footprint["errors"], n_out * storage_bits(fmt["errors"]))
        if fmt["weights"] != fmt["updates"]:
            footprint["weights"] += n_params * storage_bits(fmt["weights"])
        footprint["updates"] += n_params * storage_bits(fmt["updates"])
        footprint["gradients"] += n_params * storage_bits(fmt["gradients"])
        footprint["optimizer_state"] += moments * n_params * storage_bits(fmt["optimizer_state"])
        e_mem = sum(bits.values()) * per_bit
        rows.append({
            "layer": name, "kind": t["kind"], "input_shape": list(t["x_shape"]),
            "output_shape": list(t["y_shape"]), "params": n_params,
            "formats": {r: str(f) for r, f in fmt.items()} | {"input": str(f_in)},
            "macs": macs, "skippable_macs": skippable,
            "zero_fraction": z, "exact_skippable_fraction": exact_fraction,
            "bits_moved": bits,
            "energy_pj": {"compute": e_dense, "compute_with_skipping": e_skip, "memory": e_mem},
        })
    return rows, footprint


def _totals(rows: list[dict[str, Any]], footprint: dict[str, float]) -> dict[str, Any]:
    macs = {p: sum(r["macs"][p] for r in rows) for p in PRODUCTS}
    skip = {p: sum(r["skippable_macs"][p] for r in rows) for p in PRODUCTS}
    bits = {role: sum(r["bits_moved"][role] for r in rows) for role in STORAGE_ROLES}
    compute = sum(r["energy_pj"]["compute"] for r in rows)
    compute_skip = sum(r["energy_pj"]["compute_with_skipping"] for r in rows)
    mem = sum(r["energy_pj"]["memory"] for r in rows)
    total_macs = sum(macs.values())
    return {
        "macs": macs, "macs_total": total_macs,
        "skippable_macs": skip, "skippable_macs_total": sum(skip.values()),
        "skippable_fraction": sum(skip.values()) / total_macs if total_macs else 0.0,
        "bits_moved": bits, "bits_moved_total": sum(bits.values()),
        "memory_bytes": {r: v / 8.0 for r, v in footprint.items()},
        "memory_bytes_total": sum(footprint.values()) / 8.0,
        "energy_pj": {"compute": compute, "compute_with_skipping": compute_skip,
                      "memory": mem, "total": compute + mem,
                      "total_with_skipping": compute_skip + mem},
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def cost_summary(
    net: Any,
    precision: Precision | str | Mapping[str, Any] | None,
    batch_size: int,
    input_shape: tuple[int, ...],
    zero_fractions: Any = None,
    *,
    table: Any = None,
    memory: str = "dram",
    optimizer_moments: int = 1,
    input_dtype: Any = None,
    exact: MacCounter | None = None,
) -> dict[str, Any]:
    """Per-layer and per-step costs of training ``net`` under ``precision``.

    - ``input_shape``: one sample's shape (e.g. ``(64,)``, ``(1, 28, 28)``, ``(T, F)``).
    - ``zero_fractions``: None (every operand dense), a stats frame or ``StatsCollector``
      (the last epoch's ``zero_out_fraction``), a bound network (its points' current
      counters), or a mapping ``{(layer, role) or "layer/role": fraction}``.
    - ``table``: energy table (None: Horowitz ISSCC 2014; a dict, TOML path or text).
    - ``memory``: memory level all traffic is charged at (``sram_8kb``, ``sram_32kb``,
      ``sram_1mb``, ``dram``).
    - ``optimizer_moments``: moments per parameter (SGD 0, SGD+momentum 1, Adam 2).
    - ``exact``: a :class:`MacCounter` filled by :func:`count_macs`; its exact per-layer
      skippable fraction then replaces the independence estimate.

    Returns plain data (JSON-safe): ``layers`` (one dict per layer), ``totals``,
    ``float32`` (the same network dense in float32), ``relative_to_float32`` and the model's
    assumptions. Energies in pJ per training step, footprints in bytes.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive integer")
    if isinstance(optimizer_moments, bool) or not isinstance(optimizer_moments, int) \
            or optimizer_moments < 0:
        raise ValueError(f"optimizer_moments={optimizer_moments!r}: expected 0, 1 or 2")
    if precision is None:
        precision = Precision.float32()
    elif isinstance(precision, str):
        precision = Precision.from_string(precision)
    elif isinstance(precision, Mapping):
        precision = Precision.from_dict(precision)
    tbl = load_energy_table(table)
    tbl.memory_per_bit(memory)  # validates the level
    zeros, measured = _zero_map(zero_fractions)
    traces = trace_shapes(net, int(batch_size), tuple(input_shape), input_dtype)
    layers = {layer.name: layer for layer in iter_layers(net)}
    rows, footprint = _layer_costs(traces, layers, precision, zeros, tbl, memory,
                                   optimizer_moments, exact)
    totals = _totals(rows, footprint)
    f32_rows, f32_footprint = _layer_costs(traces, layers, Precision.float32(), {}, tbl, memory,
                                           optimizer_moments, None)
    f32 = _totals(f32_rows, f32_footprint)
    e, e32 = totals["energy_pj"], f32["energy_pj"]
    return {
        "batch_size": int(batch_size),
        "input_shape": list(input_shape),
        "precision": str(precision),
        "energy_table": tbl.source,
        "memory_level": memory,
        "optimizer_moments": optimizer_moments,
        "zero_skipping": {
            "method": "exact count" if exact is not None else
            "independent operands: 1 - (1 - z_a)(1 - z_b)",
            "measured": measured or exact is not None,
        },
        "layers": rows,
        "totals": totals,
        "float32": {k: f32[k] for k in ("macs_total", "bits_moved_total", "memory_bytes",
                                        "memory_bytes_total", "energy_pj")},
        "relative_to_float32": {
            "compute_energy": _ratio(e["compute"], e32["compute"]),
            "compute_energy_with_skipping": _ratio(e["compute_with_skipping"], e32["compute"]),
            "memory_energy": _ratio(e["memory"], e32["memory"]),
            "energy": _ratio(e["total"], e32["total"]),
            "energy_with_skipping": _ratio(e["total_with_skipping"], e32["total"]),
            "bits_moved": _ratio(totals["bits_moved_total"], f32["bits_moved_total"]),
            "memory_footprint": _ratio(totals["memory_bytes_total"], f32["memory_bytes_total"]),
        },
    }


# -- printing ----------------------------------------------------------------------------------

def _si(x: float, unit: str) -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def _pj(x: float) -> str:
    for factor, unit in ((1e12, "J"), (1e9, "mJ"), (1e6, "uJ"), (1e3, "nJ")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {unit}"
    return f"{x:.3g} pJ"


def format_cost(summary: Mapping[str, Any]) -> str:
    """A plain-text report of :func:`cost_summary` for ``quantsim train ... --cost``."""
    t, rel = summary["totals"], summary["relative_to_float32"]
    lines = [
        f"Cost per training step (batch {summary['batch_size']}, input "
        f"{tuple(summary['input_shape'])}), precision: {summary['precision']}",
        f"energy table: {summary['energy_table']}; memory traffic at {summary['memory_level']}",
        f"zero-skipping: {summary['zero_skipping']['method']}"
        + ("" if summary["zero_skipping"]["measured"] else " (no measured zeros: dense)"),
        "",
        f"{'layer':<14}{'kind':<10}{'fwd MACs':>11}{'bwd-data':>11}{'bwd-wt':>11}"
        f"{'skippable':>11}{'compute':>11}{'memory':>11}",
    ]
    for r in summary["layers"]:
        m = r["macs"]
        total = sum(m.values())
        skip = sum(r["skippable_macs"].values())
        lines.append(
            f"{r['layer']:<14.14}{r['kind']:<10.10}{_si(m['forward'], ''):>11}"
            f"{_si(m['backward_data'], ''):>11}{_si(m['backward_weight'], ''):>11}"
            f"{(f'{skip / total:.1%}' if total else '-'):>11}"
            f"{_pj(r['energy_pj']['compute']):>11}{_pj(r['energy_pj']['memory']):>11}"
        )
    e = t["energy_pj"]
    lines += [
        "",
        f"MACs: {_si(t['macs_total'], '')} ({t['skippable_fraction']:.1%} skippable)",
        "bits moved: " + ", ".join(f"{k} {_si(v, 'b')}" for k, v in t["bits_moved"].items()
                                   if v),
        "footprint: " + ", ".join(f"{k} {_si(v, 'B')}" for k, v in t["memory_bytes"].items()
                                  if v),
        f"energy: compute {_pj(e['compute'])} (with zero-skipping "
        f"{_pj(e['compute_with_skipping'])}), memory {_pj(e['memory'])}, total "
        f"{_pj(e['total'])} (with zero-skipping {_pj(e['total_with_skipping'])})",
        f"relative to float32: energy {rel['energy']:.3f}x, with zero-skipping "
        f"{rel['energy_with_skipping']:.3f}x; compute {rel['compute_energy']:.3f}x; "
        f"memory footprint {rel['memory_footprint']:.3f}x; bits moved {rel['bits_moved']:.3f}x",
    ]
    return "\n".join(lines)
