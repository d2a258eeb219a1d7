"""The spikeport command line: argparse only, one module per command."""
