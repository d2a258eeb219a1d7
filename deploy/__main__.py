"""``python -m spikeport`` runs the ``spikeport`` command line."""

import sys

from spikeport.cli.main import main

sys.exit(main())
