"""Lava: the Python 3.11 import shim, the process graph of an integer network, and the fixed_pt backend."""
