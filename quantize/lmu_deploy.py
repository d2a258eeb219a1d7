"""Deploy a trained hybrid-spiking LMU (:mod:`spikeport.quantize.training.lmu`) as an integer network of
Lava SigmaDelta neurons and graded connections.

Sources: docs/seed-methods.md, "Temporally diffused quantization (Voelker et al. 2020)"; Lava's
arithmetic: docs/lava-arithmetic.md, "Sigma-delta", "Dense weights: sign modes and truncation" and
"Activation and weight exponent".

Building blocks (every neuron a ``SigmaDeltaGroup`` with ``vth = 0``):

- a ``unit`` neuron with no bias sends exactly its input each step (``delta = sigma_t - sigma_{t-1}
  = a_in``): a memoryless linear node. The memory ``m``, the pre-activation ``z``, the integrator
  ``i`` (a self-loop of weight 1 makes it send the running sum of its input), the error-carry
  accumulator ``w`` and the readout ``o`` (its ``act`` is the sum over time of its input) are such
  nodes.
- a ``relu`` neuron computes ``relu(sigma + bias)`` of its *accumulated* input and sends the change:
  fed with ``+z`` now and ``-z`` one logical step later (two connections), its ``sigma`` is ``z`` and
  it sends the change of ``relu(z + b)``; two of them (biases ``b`` and ``b - 1``) give the clipped
  rate ``relu(z + b) - relu(z + b - 1)``, which ``i`` turns back into a value.
- the quantizer ``v <- v + r dt; n = floor(v); v <- v - n`` in integers with ``S = 2**q_exp``:
  ``w_t = q_t + w_{t-1} - S n_{t-1}`` (node ``w``) and ``n_t = floor(w_t / S)`` (node ``q``, fed by a
  weight 1 with ``weight_exp = -q_exp``, Lava's floor shift). Stock lava-nc 0.10.0 runs this.
  ``variant="corrected"`` uses one PR #875 SigmaDelta (``unit``, ``state_exp = q_exp``) instead,
  which computes the same ``n``; lava-nc 0.10.0 has no such model, so the Lava backend runs it as
  spikeport's own ``SigmaDeltaCorrected`` process (:mod:`spikeport.lava.sigma_delta_process`);
  ``variant="naive"`` uses the 0.10.0 model in that place, which drops the shifted-out LSBs and so
  computes ``n = floor(q / S)`` per step: no diffused error.

Timing: every connection delays by at least one step, so one logical step takes ``L = 6`` Lava steps
with phases x: -3, m: -2, z: -1, relu: 0, i: 1, w: 2, q: 3 (Lava step ``1 + L j + phase`` for logical
step ``j``) and DelayDense delays aligning every dependency. Logical step 0 is blank (input 0): at
Lava step 1 the relu neurons send their bias-only activation, which is that blank step.

Weights: every float matrix becomes one or more single-signed connections (positive and negative
parts, base-256 digits) so that no mantissa loses Lava's mixed-sign LSB; floors of negative
``weight_exp`` happen per connection and per step, exactly as :func:`integer_forward` (the
analytic oracle) computes them. :func:`quantize_lmu` reports every matrix's weight error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from spikeport.emulator import bits
from spikeport.emulator.errors import field_error
from spikeport.emulator.network import Connection, InputGroup, Network, SigmaDeltaGroup

#: Lava steps per logical step, and the phase of every node inside one
PERIOD = 6
PHASE = {"x": -3, "m": -2, "z": -1, "hr": 0, "i": 1, "w": 2, "q": 3}
VARIANTS = ("lava", "corrected", "naive")

Parts = tuple[tuple[np.ndarray, int], ...]


@dataclass(frozen=True, kw_only=True)
class Scales:
    """Fixed-point scales: input pixels ``x * x_scale`` (bytes), memory ``m * 2**m_exp``, rates and
    pre-activations ``z * 2**z_exp``, quantizer state ``v * 2**q_exp``; ``precision_bits`` per weight
    (16: two base-256 digits per sign)."""

    x_scale: int = 255
    m_exp: int = 12
    z_exp: int = 14
    q_exp: int = 8
    precision_bits: int = 16


def split_weight(w: np.ndarray, precision_bits: int, name: str) -> tuple[Parts, float]:
    """``w`` (float) -> single-signed ``(mantissa, weight_exp)`` parts with ``sum(m * 2**e) ~= w``
    on a grid of ``2**lsb`` (``|w| / 2**lsb < 2**precision_bits``, ``lsb >= -8``); returns the parts
    and the largest absolute error."""
    w = np.asarray(w, np.float64)
    big = float(np.max(np.abs(w), initial=0.0))
    if big == 0.0:
        return (), 0.0
    lsb = max(bits.WEIGHT_EXP_MIN, math.ceil(math.log2(big / (2.0**precision_bits - 1))))
    grid = np.rint(w / 2.0**lsb).astype(np.int64)
    parts = []
    for sign in (1, -1):
        mag = np.where(sign * grid > 0, np.abs(grid), 0)
        exp = lsb
        while np.any(mag):
            if exp > bits.WEIGHT_EXP_MAX:
                raise field_error("split_weight", name, "needs weight_exp > 7 at this scale", big)
            digit = mag & 0xFF
            if np.any(digit):
                parts.append((sign * digit, exp))
            mag, exp = mag >> 8, exp + 8
    err = float(np.max(np.abs(grid * 2.0**lsb - w)))
    return tuple(parts), err


def apply_parts(parts: Parts, msg: np.ndarray) -> np.ndarray:
    """What the parts deliver for messages ``msg`` (B, n_in): per part Lava's Dense
    ``(W @ s) << e`` (floor ``>> -e``), summed; raises if an int32 accumulation would wrap."""
    if not parts:
        raise field_error("apply_parts", "parts", "must hold at least one connection", ())
    out = np.zeros((msg.shape[0], parts[0][0].shape[0]), np.int64)
    for mant, exp in parts:
        raw = msg.astype(np.int64) @ mant.T.astype(np.int64)
        if np.any(np.abs(raw) >= 1 << 31):
            raise field_error(
                "apply_parts", "activation", "int32 accumulation would wrap", int(np.abs(raw).max())
            )
        out = out + (raw << exp if exp >= 0 else raw >> -exp)
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class IntegerLMU:
    """The quantized LMU: weight parts per matrix, integer biases, the integer ``dt``, the scales."""

    parts: Mapping[str, Parts]
    b: np.ndarray
    b_o: np.ndarray
    dt: int
    blank_steps: int
    n_in: int
    order: int
    n_hidden: int
    n_out: int
    scales: Scales
    report: Mapping[str, Any] = field(default_factory=dict)


#: the readout's largest weight maps to this integer (argmax does not depend on the scale)
READOUT_PEAK = 2.0**13


def _targets(p: Mapping[str, Any], s: Scales, dt: int, gain: float) -> dict[str, np.ndarray]:
    """Integer-domain target matrices (float): what each connection must multiply by."""
    sm, sz = 2.0**s.m_exp, 2.0**s.z_exp
    return {
        "M": np.asarray(p["M"]),
        "B_x": np.asarray(p["B_x"]) * sm / s.x_scale,
        "B_h": np.asarray(p["B_h"]) * sm / dt,
        "W_m": np.asarray(p["W_m"]) * sz / sm,
        "W_x": np.asarray(p["W_x"]) * sz / s.x_scale,
        "W_h": np.asarray(p["W_h"]) * sz / dt,
        "W_o": np.asarray(p["W_o"]) * gain,
    }


def quantize_lmu(params: Mapping[str, Any], scales: Scales | None = None, *, steps: int = 28) -> IntegerLMU:
    """Quantize :meth:`LMU.deploy_params` output for ``steps`` input rows; ``dt`` must be an integer
    in [1, 255]. The readout ``W_o mean_j(n_j / dt) + b_o`` becomes ``W_o' sum_j n_j + b_o'``, both
    multiplied by ``gain * dt * J`` (J logical steps), with ``gain = READOUT_PEAK / max|W_o|``."""
    s = scales or Scales()
    dt_f = float(params["dt"])
    if dt_f != round(dt_f) or not 1 <= dt_f <= 255:
        raise field_error("quantize_lmu", "dt", "must be an integer in [1, 255] to deploy", dt_f)
    dt = int(dt_f)
    if int(params["blank_steps"]) < 1:
        raise field_error("quantize_lmu", "blank_steps", "must be >= 1 (Lava's bias-only first step)", 0)
    gain = READOUT_PEAK / max(float(np.abs(np.asarray(params["W_o"])).max()), 1e-300)
    parts, report = {}, {}
    for name, w in _targets(params, s, dt, gain).items():
        parts[name], err = split_weight(w, s.precision_bits, name)
        scale = float(np.abs(w).max()) or 1.0
        report[name] = {"max_abs_error": err, "relative_error": err / scale, "connections": len(parts[name])}
    j_total = int(params["blank_steps"]) + steps
    b_o = np.rint(np.asarray(params["b_o"]) * gain * dt * j_total).astype(np.int64)
    n_hidden, order = np.asarray(params["W_m"]).shape
    return IntegerLMU(
        parts=parts,
        b=np.rint(np.asarray(params["b"]) * 2.0**s.z_exp).astype(np.int64),
        b_o=b_o,
        dt=dt,
        blank_steps=int(params["blank_steps"]),
        n_in=int(np.asarray(params["W_x"]).shape[1]),
        order=int(order),
        n_hidden=int(n_hidden),
        n_out=int(np.asarray(params["W_o"]).shape[0]),
        scales=s,
        report={"weights": report},
    )


def _quantize_step(q: np.ndarray, w: np.ndarray, n_prev: np.ndarray, variant: str, q_exp: int) -> tuple:
    """One step of the integer quantizer: returns ``(n, w)``."""
    if variant == "naive":
        return q >> q_exp, w
    w = q + w - (n_prev << q_exp)
    return w >> q_exp, w


def integer_forward(net: IntegerLMU, x_int: np.ndarray, variant: str = "lava") -> dict[str, np.ndarray]:
    """The analytic integer oracle of :func:`build_network` over logical steps (batch-vectorized):
    ``x_int`` (B, T, n_in) bytes -> ``logits`` (B, n_out), spikes ``n`` (B, J, n_hidden), memory
    ``m`` (B, J, order), pre-activation ``z``, quantizer input ``q = floor(dt r 2**q_exp)`` and the
    remainder ``v`` (the carried error times ``2**q_exp``; for "naive" the error dropped), with
    J = blank_steps + T."""
    if variant not in VARIANTS:
        raise field_error("integer_forward", "variant", f"must be one of {VARIANTS}", variant)
    s, p = net.scales, net.parts
    x_int = np.asarray(x_int, np.int64)
    batch, steps = x_int.shape[:2]
    sz, j_total = 1 << s.z_exp, net.blank_steps + steps
    m = np.zeros((batch, net.order), np.int64)
    n = np.zeros((batch, net.n_hidden), np.int64)
    w = np.zeros_like(n)
    o = np.zeros((batch, net.n_out), np.int64)
    rec: dict[str, list[np.ndarray]] = {k: [] for k in ("n", "m", "z", "q", "v")}
    for j in range(j_total):
        x = x_int[:, j - net.blank_steps] if j >= net.blank_steps else np.zeros((batch, net.n_in), np.int64)
        m = _sum(p, ("M", m), ("B_x", x), ("B_h", n))
        z = _sum(p, ("W_m", m), ("W_x", x), ("W_h", n))
        r = np.maximum(z + net.b, 0) - np.maximum(z + net.b - sz, 0)
        q = (net.dt * r) >> (s.z_exp - s.q_exp)
        n, w = _quantize_step(q, w, n, variant, s.q_exp)
        o = o + _sum(p, ("W_o", n))
        carry = (q if variant == "naive" else w) - (n << s.q_exp)
        for k, v in (("n", n), ("m", m), ("z", z), ("q", q), ("v", carry)):
            rec[k].append(v)
    return {"logits": o + net.b_o, **{k: np.stack(v, 1) for k, v in rec.items()}}


def _sum(parts: Mapping[str, Parts], *terms: tuple[str, np.ndarray]) -> np.ndarray:
    out = None
    for name, msg in terms:
        if parts[name]:
            a = apply_parts(parts[name], msg)
            out = a if out is None else out + a
    if out is None:
        raise field_error(
            "integer_forward", "parts", "no connection reaches this node", [t[0] for t in terms]
        )
    return out


def memory_error(
    params: Mapping[str, Any], net: IntegerLMU, x_int: np.ndarray, out: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """The linear memory's quantization error: the integer memory ``m / 2**m_exp`` of ``out``
    (:func:`integer_forward`) against the float recurrence driven by the same integer spikes."""
    s = net.scales
    M, Bx, Bh = (np.asarray(params[k], np.float64) for k in ("M", "B_x", "B_h"))
    x = np.asarray(x_int, np.float64) / s.x_scale
    n = out["n"].astype(np.float64) / net.dt
    m = np.zeros((x.shape[0], net.order))
    ref = []
    for j in range(out["m"].shape[1]):
        xj = x[:, j - net.blank_steps] if j >= net.blank_steps else np.zeros_like(x[:, 0])
        hj = n[:, j - 1] if j else np.zeros_like(n[:, 0])
        m = m @ M.T + xj @ Bx.T + hj @ Bh.T
        ref.append(m)
    ref_m = np.stack(ref, 1)
    err = np.abs(out["m"] / 2.0**s.m_exp - ref_m)
    peak = float(np.abs(ref_m).max()) or 1.0
    return {
        "max_abs": float(err.max()),
        "rms": float(np.sqrt((err**2).mean())),
        "relative_to_peak": float(err.max()) / peak,
    }


# ---------------------------------------------------------------- the Lava / emulator network


def hw_steps(net: IntegerLMU, steps: int) -> int:
    """Lava steps of a run over ``steps`` input rows (the readout's last input arrives at the end)."""
    return PERIOD * (net.blank_steps + steps - 1) + PHASE["q"] + 2


def encode_inputs(net: IntegerLMU, x_int: np.ndarray) -> np.ndarray:
    """(B, T, n_in) bytes -> (B, hw_steps, n_in) graded input: row ``j - blank`` at phase -3 of logical
    step ``j`` (Lava step ``1 + PERIOD j - 3``, array index ``PERIOD j - 3``)."""
    x_int = np.asarray(x_int, np.int64)
    batch, steps = x_int.shape[:2]
    out = np.zeros((batch, hw_steps(net, steps), net.n_in), np.int64)
    for t in range(steps):
        out[:, PERIOD * (t + net.blank_steps) + PHASE["x"]] = x_int[:, t]
    return out


def decode(net: IntegerLMU, outputs: Mapping[str, np.ndarray], steps: int) -> dict[str, np.ndarray]:
    """Logits (``o``'s act at the last step) and the spikes ``n`` (B, J, n_hidden) of a run."""
    j_total = net.blank_steps + steps
    idx = [PERIOD * j + PHASE["q"] for j in range(j_total)]
    return {
        "logits": outputs["o/act"][:, -1].astype(np.int64),
        "n": outputs["q/spikes"][:, idx].astype(np.int64),
    }


def _conns(
    name: str, parts: Parts, source: str, target: str, delay: int, message_bits: int
) -> list[Connection]:
    out = []
    for k, (mant, exp) in enumerate(parts):
        delays = None if delay == 0 else np.full(mant.shape, delay)
        out.append(
            Connection(
                name=f"{name}_{k}",
                source=source,
                target=target,
                weights=mant,
                weight_exp=exp,
                num_message_bits=message_bits,
                delays=delays,
            )
        )
    return out


def _exact(w: np.ndarray, name: str) -> Parts:
    parts, err = split_weight(w, 8, name)
    if err:
        raise field_error("build_network", name, "must be exactly representable", err)
    return parts


def _groups(net: IntegerLMU, variant: str) -> list[SigmaDeltaGroup]:
    sz, nh = 1 << net.scales.z_exp, net.n_hidden

    def sd(name: str, n: int, bias: Any = 0, **kw: Any) -> SigmaDeltaGroup:
        return SigmaDeltaGroup(name=name, n=n, vth=0, bias=bias, act_mode=kw.pop("act_mode", "unit"), **kw)

    groups = [
        sd("m", net.order),
        sd("z", nh),
        sd("hr", nh, net.b, act_mode="relu"),
        sd("hr2", nh, net.b - sz, act_mode="relu"),
        sd("i", nh),
        sd("o", net.n_out, net.b_o),
    ]
    if variant == "lava":
        return [*groups, sd("w", nh), sd("q", nh)]
    return [*groups, sd("q", nh, state_exp=net.scales.q_exp, corrected=variant == "corrected")]


def _wiring(net: IntegerLMU, variant: str) -> list[tuple[str, Parts, str, str, int, int]]:
    """``(name, parts, source, target, delay, message_bits)`` of every connection (delays from PHASE)."""
    s, p, eye = net.scales, net.parts, np.eye(net.n_hidden)
    qb, big = max(1, int(net.dt).bit_length()), bits.MESSAGE_BITS_MAX
    rate = _exact(eye * net.dt * 2.0 ** (s.q_exp - s.z_exp), "rate")
    rows = [
        ("bx", p["B_x"], "x", "m", 0, 8),
        ("wx", p["W_x"], "x", "z", 1, 8),
        ("mm", p["M"], "m", "m", PERIOD - 1, big),
        ("bh", p["B_h"], "q", "m", 0, qb),
        ("wm", p["W_m"], "m", "z", 0, big),
        ("wh", p["W_h"], "q", "z", 1, qb),
        ("wo", p["W_o"], "q", "o", 0, qb),
        ("i_self", _exact(eye, "eye"), "i", "i", PERIOD - 1, big),
        ("hr_i", _exact(eye, "eye"), "hr", "i", 0, big),
        ("hr2_i", _exact(-eye, "-eye"), "hr2", "i", 0, big),
    ]
    for h in ("hr", "hr2"):
        rows += [
            (f"z_{h}", _exact(eye, "eye"), "z", h, 0, big),
            (f"z_{h}_back", _exact(-eye, "-eye"), "z", h, PERIOD, big),
        ]
    if variant != "lava":
        return [*rows, ("i_q", rate, "i", "q", 1, big)]
    return [
        *rows,
        ("i_w", rate, "i", "w", 0, big),
        ("w_self", _exact(eye, "eye"), "w", "w", PERIOD - 1, big),
        ("q_w", _exact(-eye * 2.0**s.q_exp, "carry"), "q", "w", PERIOD - 2, qb),
        ("w_q", _exact(eye * 2.0**-s.q_exp, "floor"), "w", "q", 0, big),
    ]


def build_network(net: IntegerLMU, variant: str = "lava") -> Network:
    """The integer :class:`~spikeport.emulator.network.Network` (see the module docstring)."""
    if variant not in VARIANTS:
        raise field_error("build_network", "variant", f"must be one of {VARIANTS}", variant)
    conns = [c for row in _wiring(net, variant) for c in _conns(*row)]
    meta = {"model": "hybrid-spiking LMU", "variant": variant, "period": PERIOD, "dt": net.dt}
    return Network(
        inputs=(InputGroup(name="x", n=net.n_in, num_message_bits=8),),
        groups=tuple(_groups(net, variant)),
        connections=tuple(conns),
        metadata=meta,
    )
