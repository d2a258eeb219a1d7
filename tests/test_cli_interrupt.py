"""Ctrl-C during a long ``spikeport run``: exit 130, one stderr line, nothing written.

The run is hours of work for the compiled loop (a fully active n x n self-connection for a million
steps), so it only ends in the test's wait if SIGINT reaches Python while the loop runs: the dense
engine runs the compiled loop in chunks of about 0.25 s (:mod:`spikeport.emulator.engines.chunking`).
The wait is generous (no timing assertion); benchmarks/interrupt_latency.py measures the latency.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from spikeport.emulator.io import save_network
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network

N = 2000
STEPS = 1_000_000


def _busy_net() -> Network:
    """in -> a (n), a -> a (all ones), a -> b (1): ``a`` fires every step (u = a_in, v grows by the
    bias and u, vth 0), so each step adds all n * n weights of the self-connection; only b is
    recorded (1 byte per step)."""
    lif = {"dv": 0, "vth": 0, "bias_mant": 1, "bias_exp": 6, "u0": 0, "v0": 0}
    a = LIFGroup(name="a", n=N, du=4095, **lif)
    b = LIFGroup(name="b", n=1, du=4095, **lif)
    conns = (
        Connection(name="ia", source="in", target="a", weights=np.ones((N, 1), np.int64)),
        Connection(name="aa", source="a", target="a", weights=np.ones((N, N), np.int64)),
        Connection(name="ab", source="a", target="b", weights=np.ones((1, N), np.int64)),
    )
    return Network(inputs=(InputGroup(name="in", n=1),), groups=(a, b), connections=conns)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the child's CPU time from /proc")
def test_sigint_stops_a_long_run_with_exit_130_and_no_output(tmp_path: Path) -> None:
    save_network(tmp_path / "net.h5", _busy_net())
    np.save(tmp_path / "x.npy", np.zeros((1, STEPS, 1), np.int8))
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "out.npz"
    argv = ["run", str(tmp_path / "net.h5"), "--input", str(tmp_path / "x.npy"), "-o", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "spikeport", *argv, "--record", "b/spikes", "--pad", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # past imports and loading: the run has used CPU for a while (at most 120 s of waiting)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _cpu_seconds(proc.pid) < 4.0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["spikeport run: interrupted"]
    assert stdout == ""
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
