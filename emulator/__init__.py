"""spikeport.emulator: the Loihi-style hardware model (records, bit widths, engines, counters)."""

from .counters import Counters as Counters
from .engine import ENGINES as ENGINES
from .engine import register_engine as register_engine
from .engine import run as run
from .errors import FixedPointOverflowError as FixedPointOverflowError
from .errors import MissingDependencyError as MissingDependencyError
from .errors import SpikeportError as SpikeportError
from .errors import UnsupportedError as UnsupportedError
from .errors import ValidationError as ValidationError
from .io import load_network as load_network
from .io import save_network as save_network
from .network import Connection as Connection
from .network import InputGroup as InputGroup
from .network import LIFGroup as LIFGroup
from .network import Network as Network
from .network import SigmaDeltaGroup as SigmaDeltaGroup
from .network import TernaryLIFGroup as TernaryLIFGroup
