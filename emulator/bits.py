"""Bit widths and hardware constants of the Loihi-style fixed-point model, in one place.

Sources: lava-nc 0.10.0 ``lava/proc/lif/models.py`` (PyLifModelBitAcc), ``lava/proc/dense/models.py``
(PyDenseModelBitAcc), ``lava/utils/weightutils.py``; see docs/lava-arithmetic.md.
"""

from __future__ import annotations

#: decay constants du, dv are 12-bit: 0 (no decay) .. 4095 (v: full decay; u: see DU_OFFSET)
DECAY_BITS = 12
DECAY_UNITY = 1 << DECAY_BITS  # 4096
DECAY_MAX = DECAY_UNITY - 1  # 4095
#: Lava adds 1 to du before decaying u (ds_offset), so du=4095 means "no current state"
DU_OFFSET = 1
DV_OFFSET = 0

#: u and v are held in int32 with 24-bit precision
STATE_BITS = 24
STATE_LIMIT = 1 << (STATE_BITS - 1)  # 2**23: u wraps past it, v clips to +-(2**23 - 1)
V_MAX = STATE_LIMIT - 1
V_MIN = -(STATE_LIMIT - 1)

#: synaptic input and threshold are scaled up by 2**6 before entering u / comparing with v
ACT_SHIFT = 6
VTH_SHIFT = 6
#: the threshold mantissa must keep vth << 6 inside the 24-bit state
VTH_MAX = (1 << (STATE_BITS - 1 - VTH_SHIFT)) - 1  # 2**17 - 1

#: weights: 8-bit magnitude plus sign; mixed-sign connections lose one bit of precision
WEIGHT_BITS_MAX = 8
WEIGHT_MIN = -(1 << WEIGHT_BITS_MAX)  # -256 (mixed sign mode)
WEIGHT_MAX = (1 << WEIGHT_BITS_MAX) - 1  # 255
WEIGHT_EXP_MIN = -8
WEIGHT_EXP_MAX = 7

#: bias: 13-bit signed mantissa with a shift
BIAS_MANT_BITS = 13
BIAS_MANT_MIN = -(1 << (BIAS_MANT_BITS - 1))  # -4096
BIAS_MANT_MAX = (1 << (BIAS_MANT_BITS - 1)) - 1  # 4095
BIAS_EXP_MIN = -12
BIAS_EXP_MAX = 10

#: synaptic delays (DelayDense): 0..63 extra steps (a spike sent at t arrives at t + 1 + delay)
DELAY_MAX = 63
#: graded spikes carry up to 24-bit payloads
MESSAGE_BITS_MAX = 24
#: multi-spike LIF (spikeport extension, ``LIFGroup.max_spikes``): at most 127 spikes per step, sent as
#: one graded payload k (7 bits; it also fits the int8 spike recordings of the engines)
MAX_SPIKES_MAX = 127

#: parallel spiking neuron (spikeport.emulator.psn): tap shifts 0..15, the accumulator H wraps to 32 bits
PSN_SHIFT_MAX = 15
PSN_ACC_BITS = 32
#: taps per channel (order k) and dilation of a PSN group; history span (k - 1) * d + 1 steps
PSN_ORDER_MAX = 64
PSN_DILATION_MAX = 64
