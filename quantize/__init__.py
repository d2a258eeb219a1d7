"""spikeport.quantize: float NIR + semantics -> the emulator's integer network."""

from .fixed import pow2_round as pow2_round
from .fixed import quantize_weights as quantize_weights
from .fixed import quantize_weights_pow2 as quantize_weights_pow2
from .mapping import encode_inputs as encode_inputs
from .mapping import quantize as quantize
from .mapping import quantize_pair as quantize_pair
from .report import WARNING_CODES as WARNING_CODES
from .report import QuantReport as QuantReport
from .report import QuantWarning as QuantWarning
