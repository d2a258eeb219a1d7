"""``python -m spikeport.deploy`` runs the ``spikeport`` command line."""

import sys

from spikeport.deploy.cli import main

sys.exit(main())
