"""The torch engine (``engine="torch"``, ``device="cpu"|"cuda"``): the dense engine's integer arithmetic in torch.

Same step order as :mod:`.dense` (groups take ``a_in`` from their ring and step; inputs send; connections
deliver into the rings), same values, bit for bit (``tests/test_torch_engine.py`` compares every recorded
array with the dense engine on the random-network suite). Loaded on first use of ``engine="torch"``
(:mod:`.dispatch`), so ``import spikeport.emulator`` stays torch-free.

Arithmetic: every state and sum is an ``int64`` tensor holding the value Lava holds in its int32 variables:

- ``wrap32(x) = ((x + 2**31) & (2**32 - 1)) - 2**31``; ``decay(x, d) = trunc(x * (4096 - d) / 4096)``
  (integer division rounding toward zero: ``sign(p) * (|p| >> 12)``, Lava's);
- LIF: ``u <- qwrap24(wrap32(decay(u, du + 1) + wrap32(a_in << 6)))``,
  ``v <- clip(wrap32(decay(v, dv) + u + bias), -(2**23 - 1), 2**23 - 1)``; sigma-delta as
  :func:`~spikeport.emulator.kernels.sigma_delta_step` (every sum wrapped to int32).

Matrix products (GPUs have no integer matmul) are float products that are exact by a bound proven per
connection when it is planned: with ``S = max_j sum_i |W[j, i]|`` every partial sum of ``m @ W.T`` is an
integer of magnitude ``<= S * max|m|``, exactly representable while ``< 2**p`` (``p = 24`` for float32,
53 for float64), whatever the summation order. Binary messages (``|m| <= 1``) use float32 when
``S < 2**24`` and torch's float32 matmul precision is ``"highest"`` (no TF32/bf16), else float64.
Graded messages are int32 (``|m| <= 2**31``): one float64 product when ``S * 2**31 < 2**53``, else the
message is split into 16-bit limbs ``m = hi * 2**16 + lo`` (``|hi| <= 2**15``, ``0 <= lo < 2**16``),
each product exact while ``S * 2**16 < 2**53``, recombined in int64. A connection beyond both bounds
(``S >= 2**37``) is refused. Graded DelayDense slots where some product ``w * m`` can leave int32 take
Lava's per-product wrap elementwise.

Supported: LIFGroup, TernaryLIFGroup (zero/subtract reset, refractory, LIFReset, max_spikes), SigmaDeltaGroup (both
models); ``mode="fixed"``, ``overflow="wrap"``; counters; resuming a dense/event/torch state (the
returned state is a :class:`~.dense.DenseState` of numpy arrays). CUDA: the same code on
``device="cuda"``; the CI machines have no GPU, so only the CPU path is tested there.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from spikeport.emulator import bits, kernels
from spikeport.emulator.energy.counters import make_counters
from spikeport.emulator.engines.dense import DenseState, ring_sizes
from spikeport.emulator.engines.group_models import LIFState, group_model
from spikeport.emulator.engines.synapses import SynapsePlan, plan_connection
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.emulator.kernels import SigmaDeltaState
from spikeport.emulator.network import LIFGroup, Network, SigmaDeltaGroup, TernaryLIFGroup
from spikeport.emulator.result import RunResult
from spikeport.emulator.sparse_weights import SparseWeights

_I64 = torch.int64
_LIM = bits.STATE_LIMIT
_F32_EXACT = 1 << 24
_F64_EXACT = 1 << 53
_LIMB = 16
# the engines' state records, holding tensors here (their annotations say numpy arrays)
_LIF_STATE: Any = LIFState
_SD_STATE: Any = SigmaDeltaState


# ---------------------------------------------------------------- kernels (torch twins of .kernels)


def wrap32(x: torch.Tensor) -> torch.Tensor:
    """``((x + 2**31) mod 2**32) - 2**31`` on int64."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def decay(x: torch.Tensor, d: int) -> torch.Tensor:
    """``sign(p) * (|p| >> 12)``, ``p = x * (4096 - d)``: integer division rounding toward zero."""
    return torch.div(x * (bits.DECAY_UNITY - d), bits.DECAY_UNITY, rounding_mode="trunc")


def quirky_wrap24(x: torch.Tensor) -> torch.Tensor:
    """``x - 2**24 if x > 2**23``; else ``x + 2**24 if x <= -2**23``; else ``x`` (Lava's one-shot wrap)."""
    hi = torch.where(x > _LIM, x - 2 * _LIM, x)
    return torch.where(hi <= -_LIM, x + 2 * _LIM, hi)


def lif_current(u: torch.Tensor, a_in: torch.Tensor, du: int) -> torch.Tensor:
    """``qwrap24(wrap32(decay(u, du + 1) + wrap32(a_in << 6)))``."""
    shifted = wrap32(a_in << bits.ACT_SHIFT)
    return quirky_wrap24(wrap32(decay(u, du + bits.DU_OFFSET) + shifted))


def lif_voltage(v: torch.Tensor, u: torch.Tensor, bias: torch.Tensor, dv: int) -> torch.Tensor:
    """``clip(wrap32(decay(v, dv) + u + bias), -(2**23 - 1), 2**23 - 1)``."""
    return torch.clamp(wrap32(decay(v, dv + bits.DV_OFFSET) + u + bias), bits.V_MIN, bits.V_MAX)


def shift_activation(acc: torch.Tensor, weight_exp: int) -> torch.Tensor:
    """``wrap32(acc << e)`` for ``e > 0``, else ``wrap32(acc >> -e)`` (arithmetic: floor)."""
    return wrap32(acc << weight_exp if weight_exp > 0 else acc >> -weight_exp)


def _abs32(x: torch.Tensor) -> torch.Tensor:
    return wrap32(torch.abs(x))


# ---------------------------------------------------------------- neuron groups


@dataclass(frozen=True, kw_only=True, eq=False)
class _LIFParams:
    du: int
    dv: int
    bias: torch.Tensor
    th: int
    tl: int | None
    subtract: bool
    refractory: int
    interval: int
    offset: int
    max_spikes: int = 1


@dataclass(frozen=True, kw_only=True, eq=False)
class _SDParams:
    vth: int
    bias: torch.Tensor
    relu: bool
    cum_error: bool
    state_exp: int
    corrected: bool


def _lif_params(g: LIFGroup, device: torch.device) -> _LIFParams:
    bias = kernels.effective_bias(g.bias_mant, g.bias_exp)
    tern = isinstance(g, TernaryLIFGroup)
    return _LIFParams(
        du=int(g.du),
        dv=int(g.dv),
        bias=torch.as_tensor(bias, dtype=_I64, device=device),
        th=int(g.vth) << bits.VTH_SHIFT,
        tl=(int(g.vth_lo) << bits.VTH_SHIFT) if tern else None,  # type: ignore[attr-defined]
        subtract=g.reset == "subtract",
        refractory=int(g.refractory),
        interval=int(g.reset_interval),
        offset=int(g.reset_offset),
        max_spikes=int(g.max_spikes),
    )


def _sd_params(g: SigmaDeltaGroup, device: torch.device) -> _SDParams:
    scale = 1 << (int(g.spike_exp) + int(g.state_exp))
    vth = int(kernels.wrap32(np.array(int(g.vth) * scale, np.int64)))
    bias = kernels.wrap32(np.asarray(g.bias, np.int64) * scale)
    return _SDParams(
        vth=vth,
        bias=torch.as_tensor(bias, dtype=_I64, device=device),
        relu=g.act_mode == "relu",
        cum_error=bool(g.cum_error),
        state_exp=int(g.state_exp),
        corrected=bool(g.corrected),
    )


def _lif_spikes(p: _LIFParams, v: torch.Tensor) -> torch.Tensor:
    if p.max_spikes > 1:  # multi-spike: k = min(max_spikes, v // th) if v > th (LIFGroup)
        if p.th == 0:
            return torch.where(v > 0, p.max_spikes, 0)
        k = torch.clamp(torch.div(v, p.th, rounding_mode="floor"), max=p.max_spikes)
        return torch.where(v > p.th, k, 0)
    s = (v > p.th).to(_I64)
    return s if p.tl is None else s - (v < p.tl).to(_I64)


def lif_step(p: _LIFParams, st: Any, a_in: torch.Tensor, t: int) -> tuple[Any, torch.Tensor]:
    """One step of the LIF family, as :func:`~.group_models.lif_step_fixed`."""
    if kernels.lif_reset_due(t, p.interval, p.offset):
        st = st._replace(u=torch.zeros_like(st.u), v=torch.zeros_like(st.v))
    u = lif_current(st.u, a_in, p.du)
    v = lif_voltage(st.v, u, p.bias, p.dv)
    ref = st.refractory
    frozen = ref > 0
    if p.refractory:
        v = torch.where(frozen, st.v, v)
    s = _lif_spikes(p, v)
    if p.refractory:
        s = torch.where(frozen, 0, s)
    fired = s != 0
    v = torch.where(fired, v - s * p.th, v) if p.subtract else torch.where(fired, 0, v)
    if p.refractory:
        ref = torch.where(fired, p.refractory, torch.where(frozen, ref - 1, 0))
    return _LIF_STATE(u=u, v=v, refractory=ref), s


def sd_step(p: _SDParams, st: Any, a_in: torch.Tensor, t: int) -> tuple[Any, torch.Tensor]:
    """One sigma-delta step, as :func:`~.kernels.sigma_delta_step` / ``sigma_delta_corrected_step``."""
    sigma = wrap32(st.sigma + a_in)
    act_new = wrap32(sigma + p.bias)
    if p.relu:
        act_new = torch.clamp(act_new, min=0)
    if p.corrected:
        delta = wrap32(act_new - st.act)
        sent = torch.where(_abs32(delta) >= p.vth, delta, 0) >> p.state_exp
        act = wrap32(st.act + (sent << p.state_exp))
        return st._replace(sigma=sigma, act=act), sent
    delta = wrap32(act_new - st.act + st.residue)
    error = st.error
    if p.cum_error:
        error = wrap32(error + delta)
        s = torch.where(_abs32(error) >= p.vth, delta, 0)
        error = torch.where(s != 0, 0, error)
    else:
        s = torch.where(_abs32(delta) >= p.vth, delta, 0)
    return _SD_STATE(sigma=sigma, act=act_new, residue=delta - s, error=error), s >> p.state_exp


class TorchGroupModel(NamedTuple):
    params: Callable[[Any, torch.device], Any]
    step: Callable[..., tuple[Any, torch.Tensor]]


#: group type -> torch model (parameters on the device, step); the supported types
TORCH_GROUPS: dict[type, TorchGroupModel] = {
    LIFGroup: TorchGroupModel(_lif_params, lif_step),
    TernaryLIFGroup: TorchGroupModel(_lif_params, lif_step),
    SigmaDeltaGroup: TorchGroupModel(_sd_params, sd_step),
}


def _torch_group(g: Any) -> TorchGroupModel:
    model = TORCH_GROUPS.get(type(g))
    if model is None:
        names = ", ".join(t.__name__ for t in TORCH_GROUPS)
        raise UnsupportedError(
            f"torch engine: unsupported group type {type(g).__name__!r} ({g.name!r}); supported: {names}"
        )
    return model


# ---------------------------------------------------------------- connections


@dataclass(frozen=True, kw_only=True, eq=False)
class _Slot:
    """One delay value of a connection: float weights ``(n_in, n_out)`` for the exact product, and the
    int64 weights ``(n_out, n_in)`` for the per-product wrap (or None)."""

    delay: int
    wt: torch.Tensor
    w_int: torch.Tensor | None
    w_absmax: int
    limbs: int


@dataclass(frozen=True, kw_only=True, eq=False)
class _Synapse:
    source: str
    target: str
    graded: bool
    weight_exp: int
    per_product_wrap: bool
    slots: tuple[_Slot, ...]


def _float_dtype(row_sum: int, graded: bool, name: str) -> tuple[torch.dtype, int]:
    """The float type and the number of 16-bit limbs that make ``m @ W.T`` exact (module docstring)."""
    if not graded:
        if row_sum < _F32_EXACT and torch.get_float32_matmul_precision() == "highest":
            return torch.float32, 1
        return torch.float64, 1
    if row_sum * (1 << 31) < _F64_EXACT:
        return torch.float64, 1
    if row_sum * (1 << _LIMB) < _F64_EXACT:
        return torch.float64, 2
    raise UnsupportedError(
        f"torch engine: Connection({name!r}): sum of |weights| per target {row_sum} is too large for an "
        "exact float product (limit 2**37); use engine='dense'"
    )


def _synapse(p: SynapsePlan, device: torch.device) -> _Synapse:
    slots = []
    for d, w in p.slots:
        # a sparse slot is made dense here, inside torch (the products run as dense float matmuls)
        w64 = np.asarray(
            w.to_dense(limit=1 << 30, where=p.name) if isinstance(w, SparseWeights) else w, np.int64
        )
        row_sum = int(np.max(np.abs(w64).sum(axis=1), initial=0))
        dtype, limbs = _float_dtype(row_sum, p.graded, p.name)
        wt = torch.as_tensor(np.ascontiguousarray(w64.T), device=device).to(dtype)
        w_int = torch.as_tensor(w64, device=device) if p.graded and p.per_product_wrap else None
        absmax = int(np.max(np.abs(w64), initial=0))
        slots.append(_Slot(delay=int(d), wt=wt, w_int=w_int, w_absmax=absmax, limbs=limbs))
    return _Synapse(
        source=p.source,
        target=p.target,
        graded=p.graded,
        weight_exp=p.weight_exp,
        per_product_wrap=p.per_product_wrap,
        slots=tuple(slots),
    )


def exact_product(m: torch.Tensor, slot: _Slot) -> torch.Tensor:
    """``m @ W.T`` in int64, exactly (float product within its proven bound, or two 16-bit limbs)."""
    if slot.limbs == 1:
        return (m.to(slot.wt.dtype) @ slot.wt).to(_I64)
    hi = (m >> _LIMB).to(slot.wt.dtype) @ slot.wt
    lo = (m & ((1 << _LIMB) - 1)).to(slot.wt.dtype) @ slot.wt
    return (hi.to(_I64) << _LIMB) + lo.to(_I64)


def deliver(syn: _Synapse, msg: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """What ``msg`` (B, n_in) adds to the target ``1 + d`` steps later, as :func:`.synapses.deliver`."""
    m = msg if syn.graded else (msg != 0).to(_I64)
    out = []
    for slot in syn.slots:
        if not syn.graded:
            a = shift_activation(exact_product(m, slot), syn.weight_exp)
        elif syn.per_product_wrap:
            peak = int(torch.max(torch.abs(m))) if m.numel() else 0
            if slot.w_absmax * peak < (1 << 31):
                a = shift_activation(exact_product(m, slot), syn.weight_exp)
            else:
                assert slot.w_int is not None
                prod = wrap32(m[:, None, :] * slot.w_int[None])
                a = shift_activation(prod.sum(dim=-1), syn.weight_exp)
        else:
            a = shift_activation(wrap32(exact_product(m, slot)), syn.weight_exp)
        out.append((slot.delay, a))
    return out


# ---------------------------------------------------------------- plan, state, run


@dataclass(frozen=True, kw_only=True, eq=False)
class TorchPlan:
    """A network on one device: group parameters and steps, connection weights."""

    params: dict[str, Any]
    steps: dict[str, Callable[..., tuple[Any, torch.Tensor]]]
    synapses: tuple[_Synapse, ...]


_PLANS: weakref.WeakKeyDictionary[Network, dict[str, TorchPlan]] = weakref.WeakKeyDictionary()


def torch_plan(net: Network, device: torch.device) -> TorchPlan:
    """The plan of ``net`` on ``device``, built once per network object and device."""
    per_net = _PLANS.setdefault(net, {})
    key = f"{device}/{torch.get_float32_matmul_precision()}"
    if key not in per_net:
        models = {g.name: _torch_group(g) for g in net.groups}
        per_net[key] = TorchPlan(
            params={g.name: models[g.name].params(g, device) for g in net.groups},
            steps={g.name: models[g.name].step for g in net.groups},
            synapses=tuple(_synapse(plan_connection(c, True, False), device) for c in net.connections),
        )
    return per_net[key]


def _same_record(record: Any, fields: list[Any]) -> Any:
    """A state record of ``record``'s type holding ``fields`` (tensors or arrays)."""
    return type(record)(*fields)


def _to_device(state: DenseState, device: torch.device) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    groups = {
        k: _same_record(s, [torch.tensor(np.asarray(a, np.int64), device=device) for a in s])
        for k, s in state.groups.items()
    }
    # copies: the rings are updated in place, and the caller's state must stay as it was
    rings = {k: torch.tensor(np.asarray(r, np.int64), device=device) for k, r in state.rings.items()}
    return groups, rings


def _to_host(
    state: DenseState, steps: int, groups: Mapping[str, Any], rings: Mapping[str, torch.Tensor]
) -> DenseState:
    return DenseState(
        time_step=state.time_step + steps,
        batch=state.batch,
        mode="fixed",
        groups={k: type(s)(*(a.cpu().numpy() for a in s)) for k, s in groups.items()},
        rings={k: r.cpu().numpy() for k, r in rings.items()},
    )


def _check_state(state: Any, net: Network, batch: int, sizes: Mapping[str, int]) -> DenseState:
    """``state`` must be a fixed-mode :class:`DenseState` of this network and batch (dense, event or torch)."""
    if not isinstance(state, DenseState) or state.batch != batch or state.mode != "fixed":
        raise ValidationError(
            "run.state: must be the fixed-mode state of a dense, event or torch run with the same batch size "
            f"(got {type(state).__name__})"
        )
    for g in net.groups:
        ring = state.rings.get(g.name)
        if ring is None or ring.shape != (sizes[g.name], batch, int(g.n)) or g.name not in state.groups:
            raise ValidationError(f"run.state: does not match group {g.name!r} of this network")
    return state


def _start_state(net: Network, state: Any, batch: int) -> DenseState:
    sizes = ring_sizes(net)
    if state is not None:
        return _check_state(state, net, batch, sizes)
    return DenseState(
        time_step=0,
        batch=batch,
        mode="fixed",
        groups={g.name: group_model(g, "fixed").init(g, batch) for g in net.groups},
        rings={g.name: np.zeros((sizes[g.name], batch, int(g.n)), np.int64) for g in net.groups},
    )


class _Loop(NamedTuple):
    """What the step loop writes: recordings ``(group, var) -> (B, T, n)`` and per-step counter sums."""

    out: dict[tuple[str, str], torch.Tensor]
    spikes: dict[str, torch.Tensor] | None
    payload: dict[str, torch.Tensor] | None
    events: dict[str, torch.Tensor] | None


def _buffers(
    net: Network, record: Mapping[str, tuple[str, ...]], batch: int, steps: int, device: torch.device
) -> dict[tuple[str, str], torch.Tensor]:
    out = {}
    for name, vars_ in record.items():
        g = net.group(name)
        for var in vars_:
            lif_spikes = var == "spikes" and not isinstance(g, SigmaDeltaGroup)
            dtype = torch.int8 if lif_spikes else torch.int32
            out[(name, var)] = torch.zeros((batch, steps, int(g.n)), dtype=dtype, device=device)
    return out


def _new_loop(
    net: Network, record: Mapping[str, tuple[str, ...]], batch: int, steps: int, dev: Any, cnt: bool
) -> _Loop:
    out = _buffers(net, record, batch, steps, dev)
    if not cnt:
        return _Loop(out, None, None, None)

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(shape, dtype=_I64, device=dev)

    groups = net.groups
    return _Loop(
        out,
        {g.name: zeros(batch, int(g.n)) for g in groups},
        {g.name: zeros(batch, int(g.n)) for g in groups},
        {g.name: zeros(batch) for g in groups},
    )


def _step_all(
    net: Network, plan: TorchPlan, gstate: dict[str, Any], rings: dict[str, torch.Tensor], t: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Every group takes ``a_in`` from its ring and steps (``gstate`` updated): messages and ``a_in``."""
    msgs, a_ins = {}, {}
    for g in net.groups:
        ring = rings[g.name]
        slot = t % ring.shape[0]
        a_in = wrap32(ring[slot])
        ring[slot].zero_()
        gstate[g.name], msgs[g.name] = plan.steps[g.name](plan.params[g.name], gstate[g.name], a_in, t)
        a_ins[g.name] = a_in
    return msgs, a_ins


def _record(
    loop: _Loop, i: int, gstate: Mapping[str, Any], msgs: Mapping[str, Any], a_ins: Mapping[str, Any]
) -> None:
    for (name, var), buf in loop.out.items():
        src = msgs[name] if var == "spikes" else a_ins[name] if var == "a_in" else getattr(gstate[name], var)
        buf[:, i] = src.to(buf.dtype)
    if loop.spikes is not None and loop.payload is not None and loop.events is not None:
        for name, msg in msgs.items():
            loop.spikes[name] += msg != 0
            loop.payload[name] += torch.abs(msg)
            loop.events[name] += torch.count_nonzero(a_ins[name], dim=1)


def _run_steps(
    net: Network,
    plan: TorchPlan,
    xs: Mapping[str, torch.Tensor],
    loop: _Loop,
    gstate: dict[str, Any],
    rings: dict[str, torch.Tensor],
    t0: int,
    progress: bool,
) -> None:
    steps = int(next(iter(xs.values())).shape[1])
    it: Any = range(steps)
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        it = tqdm(it, desc="emulator (torch)", unit="step", leave=False)
    for i in it:
        t = t0 + i + 1
        msgs, a_ins = _step_all(net, plan, gstate, rings, t)
        _record(loop, i, gstate, msgs, a_ins)
        for ig in net.inputs:
            msgs[ig.name] = xs[ig.name][:, i].to(_I64)
        for syn in plan.synapses:
            ring = rings[syn.target]
            for d, a in deliver(syn, msgs[syn.source]):
                ring[(t + 1 + d) % ring.shape[0]] += a


def _counters(net: Network, inputs: Mapping[str, np.ndarray], loop: _Loop, steps: int) -> Any:
    assert loop.spikes is not None and loop.payload is not None and loop.events is not None
    spikes = {k: v.cpu().numpy() for k, v in loop.spikes.items()}
    payload = {k: v.cpu().numpy() for k, v in loop.payload.items()}
    for ig in net.inputs:
        x = np.asarray(inputs[ig.name])
        spikes[ig.name] = np.count_nonzero(x, axis=1).astype(np.int64)
        payload[ig.name] = np.abs(x.astype(np.int64)).sum(axis=1)
    events = {k: v.cpu().numpy() for k, v in loop.events.items()}
    return make_counters(steps, spikes, payload, events)


def resolve_device(device: Any) -> torch.device:
    """``None`` -> CPU; ``"cuda"`` without a GPU -> ``UnsupportedError``."""
    dev = torch.device("cpu" if device is None else device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UnsupportedError("torch engine: device='cuda' asked for, but torch sees no CUDA device")
    return dev


def run_torch(
    net: Network,
    inputs: Mapping[str, np.ndarray],
    *,
    record: Mapping[str, tuple[str, ...]],
    mode: str,
    overflow: str,
    state: Any,
    counters: bool,
    progress: bool = False,
    device: Any = None,
) -> RunResult:
    """Run ``net`` on validated ``inputs`` with torch on ``device``; same contract as :func:`.dense.run_dense`."""
    if mode != "fixed" or overflow != "wrap":
        raise UnsupportedError(
            "torch engine: supports mode='fixed' with overflow='wrap' only "
            f"(got mode={mode!r}, overflow={overflow!r}); use engine='dense'"
        )
    dev = resolve_device(device)
    plan = torch_plan(net, dev)
    first = next(iter(inputs.values()))
    batch, steps = int(first.shape[0]), int(first.shape[1])
    start = _start_state(net, state, batch)
    gstate, rings = _to_device(start, dev)
    xs = {k: torch.as_tensor(np.ascontiguousarray(v), device=dev) for k, v in inputs.items()}
    loop = _new_loop(net, record, batch, steps, dev, counters)
    with torch.no_grad():
        _run_steps(net, plan, xs, loop, gstate, rings, start.time_step, progress)
    outputs = {f"{k[0]}/{k[1]}": v.cpu().numpy() for k, v in loop.out.items()}
    meta = {"backend": "emulator", "engine": "torch", "device": str(dev), "mode": mode, "overflow": overflow}
    return RunResult(
        outputs=outputs,
        state=_to_host(start, steps, gstate, rings),
        counters=_counters(net, inputs, loop, steps) if counters else None,
        metadata=meta,
    )
