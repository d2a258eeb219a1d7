"""The quantizer's warnings: a stable ``code`` (one of :data:`WARNING_CODES`), the object concerned and
a sentence for people.

A leaf module (no spikeport imports), so that every stage of the quantizer (the graph plan, the
connection plans, the report) can raise warnings without importing the report.
"""

from __future__ import annotations

from dataclasses import dataclass

#: every warning the quantizer can raise, with what triggers it
WARNING_CODES: dict[str, str] = {
    "no_leak": "a decay rounded to 0: the state no longer leaks (tau > ~8192 dt)",
    "full_reset": "a decay rounded to 4096: the state is forgotten every step (tau < ~dt)",
    "threshold_saturates": "the threshold mantissa was clipped to [1, 2**17 - 1]",
    "bias_saturates": "a bias needed more than 13-bit mantissa << 10",
    "weights_saturate": "weights were clipped at the largest mantissa * 2**7",
    "weights_lost": "non-zero float weights became zero mantissas (truncation / underflow)",
    "overflow_risk": "a static worst-case bound on a_in, u or v exceeds its bit width",
    "silent_layer": "a spiking group emitted no spike in the calibration run",
    "saturated_layer": "a spiking group fired on >= 95% of steps in the calibration run",
    "approximation": "a NIR feature mapped only approximately (see the message)",
    "timing": "a recurrent edge cannot get its exact delay in the emulator",
}


@dataclass(frozen=True, kw_only=True)
class QuantWarning:
    code: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.where}: {self.message}"
