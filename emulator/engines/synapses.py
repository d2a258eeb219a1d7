"""Connections in the dense engine: effective weights split by delay, and one step of delivery.

A connection's synaptic delays are grouped by value: ``slots = [(d, W_d), ...]`` with ``W_d`` the
effective weights whose delay is ``d`` (zero elsewhere), so what the source sends at step ``t`` reaches
the target at step ``t + 1 + d``. Fixed-point arithmetic per slot is :mod:`.kernels`' (Dense:
:func:`~.kernels.dense_activation`; DelayDense: :func:`~.kernels.delay_dense_activation`).

Arithmetic choice (numpy path, used for float mode, strict overflow and sigma-delta networks): integer
matrix products in numpy do not use BLAS, so products are taken in float64 BLAS, which is exact while
every partial sum stays below 2**53. For each slot we bound ``max_j sum_i |W[j, i]| * max|msg|``
(``max|msg|`` = 1 for binary connections, 2**31 for graded ones, whose messages are int32) and fall
back to an exact int64 product when the bound reaches 2**53. Graded DelayDense slots (Lava wraps each
product to int32 but not the sum) use the per-product-wrap kernel only when ``max|W| * max|msg|`` of
the messages actually sent reaches 2**31; below that no product can wrap. A connection held sparse
(:class:`~spikeport.emulator.sparse_weights.SparseWeights`, no delays) has one slot and runs through a
``scipy.sparse`` product: int64 in fixed mode (exact, no BLAS), float64 in float mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from spikeport.emulator import kernels
from spikeport.emulator.errors import FixedPointOverflowError
from spikeport.emulator.kernels import Guard
from spikeport.emulator.network import Connection
from spikeport.emulator.sparse_weights import SparseWeights

_EXACT_F64 = float(1 << 53)


@dataclass(frozen=True, kw_only=True, eq=False)
class SynapsePlan:
    """A connection ready to run: per-delay weight slots and the arithmetic flags. A sparse
    connection has one slot holding a :class:`SparseWeights` and its ``scipy.sparse`` matrix in
    ``csr`` (int64 in fixed mode, float64 in float mode; ``None`` for dense slots)."""

    name: str
    source: str
    target: str
    graded: bool
    weight_exp: int
    slots: tuple[tuple[int, np.ndarray | SparseWeights], ...]
    blas_ok: tuple[bool, ...]
    per_product_wrap: bool
    fixed: bool
    csr: tuple[Any, ...] = ()

    @property
    def max_delay(self) -> int:
        return max((d for d, _ in self.slots), default=0)


def _effective_values(c: Connection, fixed: bool, strict: bool) -> np.ndarray:
    """The stored values made effective (fixed: Lava's clip + truncation; float: as given)."""
    vals = c.weight_values
    if not fixed:
        return np.asarray(vals, np.float64)
    w = kernels.effective_weights(vals, int(c.num_weight_bits))
    clipped = kernels.clip_weights(vals, kernels.sign_mode(vals))
    if strict and not np.array_equal(clipped, np.trunc(np.asarray(vals))):
        k = tuple(int(i) for i in np.argwhere(clipped != np.asarray(vals))[0])
        at = k
        if isinstance(c.weights, SparseWeights):
            at = (int(c.weights.rows()[k[0]]), int(c.weights.indices[k[0]]))
        raise FixedPointOverflowError(
            f"Connection({c.name!r}).weights: clipped by sign mode at time step 0 "
            f"(synapse [{at[0]}, {at[1]}]): {vals[k]!r} became {int(clipped[k])}"
        )
    return w


def plan_connection(c: Connection, fixed: bool, strict: bool) -> SynapsePlan:
    """Effective weights (fixed: Lava's clip + truncation; float: as given), split by delay value."""
    w = _effective_values(c, fixed, strict)
    msg_max = float(1 << 31) if c.num_message_bits else 1.0
    common: dict[str, Any] = dict(
        name=c.name,
        source=c.source,
        target=c.target,
        graded=c.num_message_bits > 0,
        weight_exp=int(c.weight_exp),
        per_product_wrap=c.delays is not None and not c.sparse,
        fixed=fixed,
    )
    if isinstance(c.weights, SparseWeights):
        sw = c.weights.with_data(w)
        csr = sw.to_scipy(np.int64 if fixed else np.float64)
        return SynapsePlan(slots=((0, sw),), blas_ok=(True,), csr=(csr,), **common)
    if c.delays is None:
        slots: list[tuple[int, np.ndarray]] = [(0, w)]
    else:
        dl = np.asarray(c.delays).astype(np.int64)
        slots = [(int(d), np.where(dl == d, w, 0)) for d in np.unique(dl)]
    blas = tuple(bool(np.max(np.abs(ws).sum(axis=1), initial=0) * msg_max < _EXACT_F64) for _, ws in slots)
    return SynapsePlan(slots=tuple(slots), blas_ok=blas, csr=(None,) * len(slots), **common)


def _product(msg: np.ndarray, w: np.ndarray, blas_ok: bool, csr: Any = None) -> np.ndarray:
    if csr is not None:  # exact: scipy's integer sparse products do not use BLAS
        return np.asarray(csr @ msg.astype(np.int64).T).T
    if blas_ok:
        return np.rint(msg.astype(np.float64) @ w.T.astype(np.float64)).astype(np.int64)
    return msg.astype(np.int64) @ w.T.astype(np.int64)


def deliver(plan: SynapsePlan, msg: np.ndarray, guard: Guard = None) -> list[tuple[int, np.ndarray]]:
    """What ``msg`` (B, n_in), sent at step t, adds to the target at steps ``t + 1 + d``."""
    out = []
    csrs = plan.csr or (None,) * len(plan.slots)
    if not plan.fixed:
        m = msg if plan.graded else (msg != 0).astype(np.float64)
        for (d, w), csr in zip(plan.slots, csrs, strict=True):
            prod = np.asarray(csr @ m.astype(np.float64).T).T if csr is not None else m @ w.T  # type: ignore[union-attr]
            out.append((d, prod * 2.0**plan.weight_exp))
        return out
    m = msg if plan.graded else (msg != 0).astype(np.int64)
    for (d, w), blas_ok, csr in zip(plan.slots, plan.blas_ok, csrs, strict=True):
        if not plan.graded:
            a = kernels.shift_activation(_product(m, w, blas_ok, csr), plan.weight_exp, guard)  # type: ignore[arg-type]
        elif plan.per_product_wrap:
            assert isinstance(w, np.ndarray)  # sparse connections take no delays
            if np.max(np.abs(w), initial=0) * np.max(np.abs(m), initial=0) < (1 << 31):
                a = kernels.shift_activation(_product(m, w, blas_ok), plan.weight_exp, guard)
            else:
                a = kernels.delay_dense_activation(w, m, plan.weight_exp, True, guard)
        else:
            raw = _product(m, w, blas_ok, csr)  # type: ignore[arg-type]
            acc = kernels.wrap32(raw)
            if guard is not None:
                guard("a_out", raw, acc)
            a = kernels.shift_activation(acc, plan.weight_exp, guard)
        out.append((d, a))
    return out
