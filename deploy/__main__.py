"""``python -m spikeport`` runs the ``spikeport`` command line."""

from spikeport.cli.main import entry

entry()
