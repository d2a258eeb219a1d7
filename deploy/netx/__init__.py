"""lava-dl netx (``.net``) files: read them into a spikeport Network, write a Network as one.

- :func:`read_netx`: the network lava-dl 0.6.0's ``netx.hdf5.Network`` builds, bit for bit on the emulator;
- :func:`write_netx`: what netx can express, refusing the rest by name;
- :func:`summary`: the file's layers and the groups they become (``spikeport inspect model.net``).
"""

from __future__ import annotations

from spikeport.netx.read import read_netx
from spikeport.netx.summary import is_netx, summary
from spikeport.netx.write import write_netx

__all__ = ["is_netx", "read_netx", "summary", "write_netx"]
