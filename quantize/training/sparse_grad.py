"""Sparse spiking gradient descent (Perez-Nieves & Goodman, NeurIPS 2021; docs/seed-methods.md) for spikeport's LIF.

API::

    from spikeport.quantize.training import neurons as snn
    net = snn.SNN(nn.Linear(100, 200), snn.LIF(200, beta=0.95, sparse_grad=0.05),
                  nn.Linear(200, 10), snn.LIF(10, beta=0.95), semantics="snntorch")
    net(x).sum(1)                    # a LIF with sparse_grad=B_th (just after an nn.Linear) has a sparse backward

    s, v, active = sparse_lif(x, weight, bias, lif, lower=None)   # one Linear -> LIF layer over (B, T, n)

The forward equals the dense LIF step for step (same operations, same order). The surrogate
``f'(u) = 1 / (slope |u| + 1)^2`` (``u = v - threshold``) is truncated to the active set
``A = {|u| < B_th}``; the forward keeps only A's flat indices, ``u`` there and the input (as bool when it
is 0/1 spikes); no ``v`` history. The backward (:mod:`.sparse_grad_kernels`) sums ``g * trace`` over A
for ``dW`` and scatters ``dx`` only at the entries where the layer below is active (``lower``: that
layer's active indices; elsewhere its own truncated surrogate zeroes the gradient anyway; ``dx`` is then a
sparse COO tensor, which the layer below reads at its active entries), so a stack of sparse layers has
exactly the gradients of dense BPTT with the truncated surrogate. ``lower=None`` gives the full, dense
``dx``. Backends (:data:`BACKENDS`): ``"numba"`` (CPU; one compiled pass forms ``g``, ``dW``, ``db`` and
``dx``; a large layer's batch is split into :data:`CHUNKS` chunks of samples run on up to
``torch.get_num_threads()`` threads, the same sums on any number of threads) and ``"torch"`` (any
device; CUDA tensors take it). Needs a subtractive (or no) reset and one ``beta`` for the whole layer: the
zero reset blocks the gradient per neuron, which a per-input trace cannot express.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import torch
from spikeport.emulator.errors import UnsupportedError, field_error
from torch import nn

__all__ = [
    "BACKENDS",
    "SparseLIFFunction",
    "SurrogateGrad",
    "check_sparse_lif",
    "compact_input",
    "forward_layerwise",
    "gather_grad",
    "run_jobs",
    "sparse_at",
    "sparse_lif",
]


def check_sparse_lif(lif: Any, layer: str = "LIF") -> float:
    """The layer's decay ``a``; refuses what the sparse backward cannot express."""
    sem = lif.semantics
    if sem.reset not in ("subtract", "none"):
        raise field_error(
            layer, "sparse_grad", "needs reset='subtract' or 'none' in the semantics", sem.reset
        )
    if sem.multi_spike or sem.integration != "euler" or sem.arithmetic != "decay":
        raise UnsupportedError(f"{layer}: sparse_grad trains under integration='euler', arithmetic='decay'")
    if sem.reset_timing not in ("same_step", "next_step", "next_step_hold"):
        raise field_error(layer, "sparse_grad", "reset_timing not supported", sem.reset_timing)
    if type(lif).__name__ != "LIF":
        raise field_error(layer, "sparse_grad", "only for LIF", type(lif).__name__)
    beta = np.asarray(lif.beta)
    if np.any(beta != beta.flat[0]):
        raise field_error(layer, "beta", "sparse_grad needs one beta for the whole layer", beta)
    if lif.sparse_grad < 0 or np.isnan(lif.sparse_grad):
        raise field_error(layer, "sparse_grad", "must be >= 0 (or None for dense)", lif.sparse_grad)
    return float(1.0 - sem.dt / float(np.asarray(lif.tau(sem.dt)).flat[0]))


def _lif_steps(cur: torch.Tensor, a: torch.Tensor, thr: torch.Tensor, sem: Any) -> tuple[torch.Tensor, ...]:
    """Spikes, ``u = v - thr`` (pre-reset) and the recorded ``v`` of the LIF over ``cur`` ``(B, T, n)``:
    the operations of :meth:`LIF.forward` in the same order."""
    v = torch.zeros_like(cur[:, 0])
    prev = torch.zeros_like(v)
    s_all, u_all, v_all = (torch.empty_like(cur) for _ in range(3))
    subtract, same = sem.reset == "subtract", sem.reset_timing == "same_step"
    for t in range(cur.shape[1]):
        v = a * v + cur[:, t]
        if subtract and not same:
            v = v - prev * thr
        u = v - thr
        s = (u >= 0 if sem.threshold == ">=" else u > 0).to(cur.dtype)
        if subtract and same:
            v = v - s * thr
        s_all[:, t], u_all[:, t], v_all[:, t], prev = s, u, v, s
    return s_all, u_all, v_all


def compact_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` as bool when it holds only 0 and 1 (spikes: a quarter of the memory), else ``x`` itself."""
    xb = x.detach() != 0
    return xb if torch.equal(xb.to(x.dtype), x.detach()) else x.detach()


def _surrogate(u: torch.Tensor, slope: float) -> torch.Tensor:
    return 1.0 / (slope * u.abs() + 1.0) ** 2


class SparseLIFFunction(torch.autograd.Function):
    """``(x, W, b) -> (spikes, v)`` of a Linear -> LIF layer over time; the backward touches only A."""

    @staticmethod
    def forward(ctx: Any, x, weight, bias, lif, lower, backend):
        check_sparse_lif(lif)
        sem = lif.semantics
        cur = nn.functional.linear(x, weight, bias)
        thr = torch.as_tensor(lif.threshold, dtype=cur.dtype, device=cur.device)
        coef = torch.as_tensor(1.0 - sem.dt / lif.tau(sem.dt), dtype=cur.dtype, device=cur.device)
        s, u, v = _lif_steps(cur, coef, thr, sem)
        flat = (u.abs() < lif.sparse_grad).flatten().nonzero().flatten()
        ctx.active = flat
        ctx.save_for_backward(compact_input(x), weight, flat, u.flatten().index_select(0, flat))
        ctx.a = float(coef.flatten()[0])  # the decay as the forward rounded it (== a to float rounding)
        ctx.slope, ctx.lower, ctx.backend = lif.slope, lower, backend
        ctx.shape_out = tuple(u.shape)
        ctx.mark_non_differentiable(v)
        ctx.set_materialize_grads(False)  # no (B, T, n) zeros for v's absent gradient
        return s, v

    @staticmethod
    def backward(ctx: Any, grad_s, grad_v):
        xs, weight, flat, u_act = ctx.saved_tensors
        backend = _backend(ctx.backend, weight)
        if grad_s is None:
            g: Any = torch.zeros_like(u_act)
        elif grad_s.layout == torch.strided and grad_s.dtype == u_act.dtype:
            g = SurrogateGrad(grad=grad_s.detach().contiguous(), u=u_act, slope=float(ctx.slope))
        else:
            g = gather_grad(grad_s, flat) * _surrogate(u_act, ctx.slope)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        lower = ctx.lower if need_x else None
        dx, dw, db = BACKENDS[backend](xs, weight, flat, g, ctx.a, lower, need_x, ctx.shape_out)
        if lower is not None:  # the values at the lower layer's active entries, as a sparse gradient
            dx = sparse_at(lower, dx, tuple(xs.shape))
        return dx, dw if need_w else None, db if need_b else None, None, None, None


class SurrogateGrad(NamedTuple):
    """``g = grad.flatten()[active] * f'(u)``, not formed yet: the numba backend forms it in its kernels
    (in parallel, in the same pass), the torch one with :meth:`values`."""

    grad: torch.Tensor  # dense dL/ds (B, T, n_out), contiguous
    u: torch.Tensor  # v - theta at the active entries
    slope: float

    def values(self, flat: torch.Tensor) -> torch.Tensor:
        return self.grad.reshape(-1).index_select(0, flat) * _surrogate(self.u, self.slope)


def gather_grad(grad: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """``grad.flatten()[flat]`` for a dense or a sparse COO gradient (absent entries are 0)."""
    if grad.layout != torch.sparse_coo:
        return grad.reshape(-1).index_select(0, flat)  # (much faster than ``[flat]``)
    grad = grad.coalesce()
    gi, gv = _flat_index(grad.indices(), tuple(grad.shape)), grad.values()
    if gi.numel() == 0:
        return torch.zeros(flat.numel(), dtype=gv.dtype, device=gv.device)
    if gi.numel() == flat.numel() and torch.equal(gi, flat):  # the layer above sent exactly these entries
        return gv
    pos = torch.searchsorted(gi, flat).clamp_max(gi.numel() - 1)
    found = gi.index_select(0, pos) == flat
    return torch.where(found, gv.index_select(0, pos), torch.zeros((), dtype=gv.dtype, device=gv.device))


def _flat_index(idx: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    b, t, i = idx
    return (b * shape[1] + t) * shape[2] + i


def sparse_at(flat: torch.Tensor, vals: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A coalesced sparse COO tensor of ``shape`` holding ``vals`` at the sorted flat indices ``flat``."""
    if flat.device.type == "cpu" and flat.dtype == torch.int64 and flat.is_contiguous() and _numba_ok():
        from spikeport.quantize.training import sparse_grad_kernels as k

        idx = torch.empty((3, flat.numel()), dtype=torch.int64)
        k.coo_indices(flat.numpy(), shape[1], shape[2], idx.numpy())
    else:
        q = flat // shape[2]
        idx = torch.stack([q // shape[1], q % shape[1], flat - q * shape[2]])
    return torch.sparse_coo_tensor(idx, vals, shape, is_coalesced=True, check_invariants=False)


def _backend(name: str | None, ref: torch.Tensor) -> str:
    if name is None:
        return "numba" if ref.device.type == "cpu" and _numba_ok() else "torch"
    if name not in BACKENDS:
        raise field_error("sparse_lif", "backend", f"one of {sorted(BACKENDS)}", name)
    return name


def _numba_ok() -> bool:
    try:
        from spikeport.quantize.training import sparse_grad_kernels  # noqa: F401
    except ImportError:
        return False
    return True


Kernel = Callable[..., tuple[Any, Any, Any]]

#: work (active entries x inputs + entries of the input gradient x outputs) from which the numba backward
#: splits the batch into :data:`CHUNKS` chunks of samples, run on up to ``torch.get_num_threads()``
#: threads. The split depends on the work only, so the gradients are the same (bit for bit) on any
#: number of threads. High because right after a torch op torch's OpenMP worker spins for a few ms on
#: the other core: measured on 2 cores (MNIST case, 256 x 40 x 200 at 2% active, ~14M), two threads
#: were 8-25% slower than one; they can pay only for backwards much longer than that spin.
PARALLEL_MIN_WORK = 50_000_000
CHUNKS = 2


def _numba_backward(xs, weight, flat, g, a, lower, need_x, shape_out):
    """Weight, bias and input gradients with the compiled kernels (CPU tensors)."""
    from spikeport.quantize.training import sparse_grad_kernels as k

    n_b, n_out, w = shape_out[0], shape_out[2], weight.detach()
    n_in = w.shape[1]
    lidx = lower if need_x and lower is not None else torch.zeros(0, dtype=torch.int64)
    chunks = min(CHUNKS, n_b) if flat.numel() * n_in + lidx.numel() * n_out >= PARALLEL_MIN_WORK else 1
    # (allocated here, so that the memory profile sees them; filled by the kernels: no torch op, whose
    # OpenMP threads would then spin on a core the kernels' second thread wants)
    dw_parts = torch.empty((chunks, n_out, n_in), dtype=w.dtype)
    db_parts = torch.empty((chunks, n_out), dtype=w.dtype)
    vals = torch.empty(lidx.numel(), dtype=w.dtype)
    wt = torch.empty((n_in if lidx.numel() else 0, n_out), dtype=w.dtype)
    if lidx.numel():
        k.transpose(w.numpy(), wt.numpy())
    if isinstance(g, SurrogateGrad):  # formed by the kernels, into ``g``
        grad, u, slope, g = g.grad.reshape(-1).numpy(), g.u.numpy(), g.slope, torch.empty_like(g.u)
    else:
        g = g.detach()
        grad, u, slope = g.numpy()[:0], g.numpy()[:0], 0.0
    args = (xs.numpy(), flat.numpy(), grad, u, slope, g.numpy(), a, wt.numpy(), lidx.numpy())
    outs = (dw_parts.numpy(), db_parts.numpy(), vals.numpy())
    threads = max(1, min(torch.get_num_threads(), chunks))
    run_jobs(k.backward_chunks, [(*args, np.arange(r, chunks, threads), *outs) for r in range(threads)])
    k.reduce_parts(outs[0], outs[1])
    dw, db = dw_parts[0], db_parts[0]
    if not need_x:
        return None, dw, db
    if lower is None:
        return _dense_input_grad(flat, g, a, w, shape_out), dw, db
    return vals, dw, db


class _Pool:
    """A lazily started thread pool, restarted in a forked child (whose threads do not exist)."""

    pid: int | None = None
    workers = 0
    executor: Any = None


def run_jobs(fn: Callable[..., None], jobs: list[tuple[Any, ...]]) -> None:
    """``fn(*job)`` for each job, each on its own thread (the first on the calling one; ``fn`` releases
    the GIL; the jobs write disjoint outputs). The caller blocks rather than spins while it waits, so on
    a busy machine this costs little more than running the jobs one after another."""
    threads = len(jobs)
    if threads <= 1:
        for job in jobs:
            fn(*job)
        return
    if _Pool.pid != os.getpid() or _Pool.workers < threads - 1:
        _Pool.executor = ThreadPoolExecutor(threads - 1, "spikeport-sparse")
        _Pool.pid, _Pool.workers = os.getpid(), threads - 1
    futures = [_Pool.executor.submit(fn, *job) for job in jobs[1:]]
    fn(*jobs[0])
    for f in futures:
        f.result()


def _delta(flat: torch.Tensor, g: torch.Tensor, a: float, shape_out: tuple[int, ...]) -> torch.Tensor:
    """``delta[t] = g[t] + a delta[t+1]`` (dense ``(B, T, n_out)``; dL/dI)."""
    gd = torch.zeros(int(np.prod(shape_out)), dtype=g.dtype, device=g.device)
    gd[flat] = g
    delta = gd.view(shape_out)
    for t in range(shape_out[1] - 2, -1, -1):
        delta[:, t] += a * delta[:, t + 1]
    return delta


def _dense_input_grad(flat, g, a, w, shape_out):
    return _delta(flat, g, a, shape_out) @ w


def _traces(xs: torch.Tensor, a: float, dtype: torch.dtype) -> torch.Tensor:
    e = xs.to(dtype).clone()
    for t in range(1, e.shape[1]):
        e[:, t] += a * e[:, t - 1]
    return e


def _torch_backward(xs, weight, flat, g, a, lower, need_x, shape_out):
    """The same gradients with torch operations (any device): sparse ``g`` times dense traces."""
    n_b, n_t, n_out = shape_out
    if isinstance(g, SurrogateGrad):
        g = g.values(flat)
    w = weight.detach()
    e = _traces(xs, a, w.dtype).reshape(n_b * n_t, -1)
    rows = torch.stack([flat % n_out, flat // n_out])
    gs = torch.sparse_coo_tensor(rows, g, (n_out, n_b * n_t), check_invariants=False).coalesce()
    dw = torch.sparse.mm(gs, e)
    c = _traces(torch.ones(1, n_t, 1, dtype=w.dtype, device=w.device), a, w.dtype).reshape(n_t)
    db = torch.zeros(n_out, dtype=w.dtype, device=w.device)
    db.index_add_(0, flat % n_out, g * c[(flat // n_out) % n_t])
    if not need_x:
        return None, dw, db
    delta = _delta(flat, g, a, shape_out)
    if lower is None:
        return delta @ w, dw, db
    return _rows_dot(delta.reshape(-1, n_out), w, lower), dw, db


def _rows_dot(
    delta: torch.Tensor, w: torch.Tensor, lower: torch.Tensor, chunk: int = 1 << 16
) -> torch.Tensor:
    """``(delta @ w).flatten()[lower]`` without the dense product, in chunks of ``chunk`` entries."""
    n_in = w.shape[1]
    parts = [(delta[part // n_in] * w.t()[part % n_in]).sum(1) for part in torch.split(lower, chunk)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=w.dtype, device=w.device)


#: backend name -> backward ``(x_saved, W, active, g, a, lower, need_x, (B, T, n_out)) -> (dx, dW, db)``;
#: ``dx`` is dense ``(B, T, n_in)`` when ``lower`` is None, else its values at the flat indices ``lower``
BACKENDS: dict[str, Kernel] = {"numba": _numba_backward, "torch": _torch_backward}


def sparse_lif(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    lif: Any,
    *,
    lower: torch.Tensor | None = None,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Spikes ``(B, T, n_out)``, ``v`` (no gradient) and the active flat indices of ``Linear -> lif``.

    ``lif``: a :class:`~spikeport.quantize.training.neurons.LIF` with ``sparse_grad`` set and its
    semantics; ``lower``: the active flat indices of the layer below (``None``: full input gradient).
    The active indices are ``None`` when no graph is built (``torch.no_grad()``).
    """
    if x.ndim != 3:
        raise field_error("sparse_lif", "x", "must have shape (B, T, n_in)", tuple(x.shape))
    if bias is None:
        bias = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
    s, v = SparseLIFFunction.apply(x, weight, bias, lif, lower, backend)
    return s, v, getattr(s.grad_fn, "active", None)


def _run_dense(layer: Any, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A layer over all steps: neurons step by step, stateless layers on ``(B*T, ...)`` at once."""
    if getattr(layer, "spiking", False):
        layer.reset_state()
        outs, vs = [], []
        for t in range(h.shape[1]):
            outs.append(layer(h[:, t]))
            vs.append(layer.state["v"])
        return torch.stack(outs, 1), torch.stack(vs, 1)
    y = layer(h.flatten(0, 1))
    return y.unflatten(0, tuple(h.shape[:2])), None


def forward_layerwise(model: Any, x: torch.Tensor) -> torch.Tensor:
    """``SNN.forward`` layer by layer over the whole sequence (the same result for a feed-forward stack),
    with every ``nn.Linear -> LIF(sparse_grad=B_th)`` pair as one :class:`SparseLIFFunction`.
    Fills ``model.record`` (a sparse layer's ``v`` carries no gradient)."""
    layers = list(model.layers)
    record: dict[str, torch.Tensor] = {}
    h, k = x, 0
    lower: torch.Tensor | None = None
    v: torch.Tensor | None
    while k < len(layers):
        layer = layers[k]
        nxt = layers[k + 1] if k + 1 < len(layers) else None
        if getattr(layer, "sparse_grad", None) is not None:
            raise field_error(
                f"layer {k} ({type(layer).__name__})", "sparse_grad", "needs an nn.Linear just before", None
            )
        if type(layer) is nn.Linear and getattr(nxt, "sparse_grad", None) is not None:
            h, v, lower = sparse_lif(h, layer.weight, layer.bias, nxt, lower=lower)
            k += 1
        else:
            h, v = _run_dense(layer, h)
            lower = None
        if v is not None:
            record[f"{k}/spikes"], record[f"{k}/v"] = h, v
        k += 1
    model.record = record
    return h
