"""Synaptic weights between lava-dl netx and spikeport's :class:`~spikeport.emulator.network.Connection`.

What Lava computes for a netx ``dense`` layer (lava-dl 0.6.0 ``netx/utils.py::optimize_weight_bits``,
then lava-nc 0.10.0 ``PyDenseModelBitAcc``): the file's integer weights ``W`` are shifted up,
``m = W << sb`` (``sb`` from the largest weight), Lava clips ``m`` to 8 bits by sign mode, truncates
it to ``num_weight_bits`` and shifts the sum back, ``a = (sum m_eff * s) >> sb``. Because the
truncation only drops bits that ``W`` has as common trailing zeros, ``m_eff`` is a multiple of
``2**sb`` and the layer's weights are exactly the integers ``r = m_eff >> sb``: equal to ``W`` except
where netx or Lava clip (mixed weights above 254 or below -256, and the inhibitory case
``min(W) * 2**sb == -256``, which Lava's inhibitory clip turns into -255 before truncation).

A netx ``conv`` layer feeds its integer weights to Lava's ``Conv`` unchanged (its fixed-point model
ignores ``weight_exp`` and ``num_weight_bits``), so there ``r = W``.

:func:`connection_parts` writes integer weights ``r`` as one or two Connection parameter sets whose
Lava arithmetic is exactly ``sum r * s``; :func:`real_weights` reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from spikeport.emulator import kernels
from spikeport.emulator.errors import UnsupportedError

_MODES = {1: "mixed", 2: "excitatory", 3: "inhibitory"}


@dataclass(frozen=True)
class NetxBits:
    """What ``optimize_weight_bits`` hands to Lava: shifted weights, bit count, exponent, sign mode."""

    weights: np.ndarray
    num_weight_bits: int
    weight_exp: int
    clipped: bool


def optimize_weight_bits(weight: np.ndarray, layer: str) -> NetxBits:
    """lava-dl 0.6.0 ``optimize_weight_bits`` (same arithmetic; refuses what makes it fail)."""
    w = np.asarray(weight, np.int64)
    lo, hi = int(w.min()), int(w.max())
    if lo == 0 and hi == 0:
        raise UnsupportedError(f"{layer}: all weights are 0; netx's optimize_weight_bits cannot scale them")
    clipped = (hi > 254 and lo < 0) or (lo < -256 and hi > 0)
    if clipped:
        w = np.clip(w, -256, 254)
        lo, hi = int(w.min()), int(w.max())
    if hi < 0:
        scale, signed = -256 / lo, 0
    elif lo >= 0:
        scale, signed = 255 / hi, 0
    else:  # netx calls max == 0 mixed too
        scale, signed = min(127 / hi if hi > 0 else np.inf, -128 / lo), 1
    sb = int(np.floor(np.log2(scale))) + signed
    if sb < 0:
        raise UnsupportedError(
            f"{layer}: weights in [{lo}, {hi}] make netx's optimize_weight_bits shift by {sb} (undefined)"
        )
    n = 8
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    n -= signed
    return NetxBits(weights=w << sb, num_weight_bits=8 - sb - n, weight_exp=-sb, clipped=clipped)


@dataclass(frozen=True)
class Part:
    """One Connection's weight fields: ``weights``, ``weight_exp``, ``num_weight_bits``; ``suffix``
    is appended to the connection name (``""``, or ``"_neg"`` for the negative half of a split)."""

    weights: np.ndarray
    weight_exp: int
    num_weight_bits: int
    suffix: str = ""


def _single(r: np.ndarray) -> Part | None:
    lo, hi = int(r.min(initial=0)), int(r.max(initial=0))
    if (lo >= 0 and hi <= 255) or (hi <= 0 and lo >= -255):
        return Part(r, 0, 8)
    if lo >= -128 and hi <= 127:
        return Part(2 * r, -1, 8)
    if not np.any(r % 2) and lo >= -256 and hi <= 254:
        return Part(r, 0, 8)
    return None


def connection_parts(r: np.ndarray, layer: str) -> list[Part]:
    """Connection weight fields whose Lava Dense arithmetic is exactly ``sum_i r[j, i] * s[i]``.

    - one sign (excitatory ``[0, 255]`` / inhibitory ``[-255, 0]``): ``r`` as is, exponent 0;
    - mixed in ``[-128, 127]``: ``2 r`` with exponent -1 (Lava drops the LSB of mixed weights, and
      ``2 r`` has none to lose; the sum is even, so the shift back is exact);
    - mixed, all even, in ``[-256, 254]``: ``r`` as is;
    - otherwise two connections, the positive and the negative part (both exponent 0), and a third
      for weights of -256 (``-128 << 1``: an inhibitory connection clips -256 to -255).
    """
    r = np.asarray(r, np.int64)
    one = _single(r)
    if one is not None:
        return [one]
    pos, neg = np.maximum(r, 0), np.minimum(r, 0)
    if pos.max() > 255 or neg.min() < -256:
        raise UnsupportedError(f"{layer}: weights outside [-256, 255] cannot be expressed exactly")
    parts = [Part(pos, 0, 8), Part(np.where(neg == -256, 0, neg), 0, 8, "_neg")]
    if neg.min() == -256:  # an inhibitory connection clips -256 to -255: send those as -128 << 1
        parts.append(Part(np.where(neg == -256, -128, 0), 1, 8, "_neg256"))
    return parts


def real_weights(weights: np.ndarray, weight_exp: int, num_weight_bits: int, layer: str) -> np.ndarray:
    """The integer weights ``r`` a Connection applies (Lava's effective weights times
    ``2**weight_exp``); ``UnsupportedError`` if they are not integers."""
    eff = kernels.effective_weights(np.asarray(weights), int(num_weight_bits))
    e = int(weight_exp)
    if e >= 0:
        return eff << e
    if np.any(eff % (1 << -e)):
        raise UnsupportedError(
            f"{layer}: weights with exponent {e} are not integers; netx stores integer weights"
        )
    return eff >> -e


def lava_dense_parts(
    weight: np.ndarray, layer: str, scale_from: np.ndarray | None = None
) -> tuple[list[Part], bool]:
    """Connection weight fields equal to what Lava runs for a netx dense layer's ``weight``, and
    whether netx clipped it. ``scale_from``: the matrix netx scales by (a ``dense_rec`` layer scales
    ``hstack(weight, weight_rec)`` once; Lava then picks each synapse's sign mode on its own).

    Normally ``connection_parts(r)`` of the integer weights ``r``; when netx's scaling leaves
    fractional weights (weights in ``[-k, 0]`` that netx calls mixed but Lava calls inhibitory),
    Lava's own mantissas and exponent, whose floor shift is then part of the arithmetic."""
    nb = optimize_weight_bits(weight if scale_from is None else scale_from, layer)
    w = np.asarray(weight, np.int64)
    sb = -nb.weight_exp
    m = (np.clip(w, -256, 254) if nb.clipped else w) << sb
    mode = kernels.sign_mode(m)
    eff = kernels.truncate_weights(kernels.clip_weights(m, mode), mode, nb.num_weight_bits)
    if not np.any(eff % (1 << sb)):
        return connection_parts(eff >> sb, layer), nb.clipped
    if not np.array_equal(kernels.effective_weights(eff, 8), eff):
        raise UnsupportedError(f"{layer}: netx's weight scaling cannot be reproduced exactly")
    return [Part(eff, nb.weight_exp, 8)], nb.clipped
