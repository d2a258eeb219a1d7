"""spikeport.emulator: the Loihi-style hardware model (records, bit widths, engines, counters)."""

from .errors import FixedPointOverflowError as FixedPointOverflowError
from .errors import MissingDependencyError as MissingDependencyError
from .errors import SpikeportError as SpikeportError
from .errors import UnsupportedError as UnsupportedError
from .errors import ValidationError as ValidationError
from .network import Connection as Connection
from .network import InputGroup as InputGroup
from .network import LIFGroup as LIFGroup
from .network import Network as Network
from .network import SigmaDeltaGroup as SigmaDeltaGroup
from .network import TernaryLIFGroup as TernaryLIFGroup
