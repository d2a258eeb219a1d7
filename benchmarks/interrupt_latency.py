"""Ctrl-C latency of ``spikeport run`` and the cost of the time-sized chunks of the compiled loop.

On the 700 -> 256 -> 256 -> 20 LIF network of ``benchmarks/emulator_vs_lava.py``, measured in one run,
side by side (interleaved, best of ``--repeats`` each, same inputs):

- ``chunked_steps_per_s`` / ``unchunked_steps_per_s``: the dense engine's compiled loop with its
  default chunks of about ``chunking.TARGET_S`` seconds, and as one call (``TARGET_S = inf``), at
  batch 1 and at batch ``--batch``; ``chunked_over_unchunked`` are the throughput ratios.
- ``sigint_latency_s``: ``spikeport run`` in a subprocess on a run of about 30 s (:func:`busy_net`:
  every neuron fires every step, so each step adds all n * n weights); SIGINT is sent once the
  process has used ``--warm-cpu`` seconds of CPU (imports done, the loop running); the latency is
  the wall time from the signal to the process's exit (``sigint_message_latency_s``: to its
  "interrupted" line on stderr); ``exit_codes`` and ``stderr_lines`` per try.

Usage: ``python benchmarks/interrupt_latency.py [--quick]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from spikeport.emulator.engines import chunking
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.io import save_network
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_vs_lava import SIZES, build_net


def busy_net(n: int = 3000) -> Network:
    """in (1) -> a (n) -> b (n), weights 1, bias above threshold: ``a`` fires every step, so every
    step of ``a -> b`` adds all n * n weights (a long run from a tiny input file)."""
    lif = {"du": 0, "dv": 0, "vth": 0, "bias_mant": 1, "bias_exp": 6, "u0": 0, "v0": 0}
    return Network(
        inputs=(InputGroup(name="in", n=1),),
        groups=(LIFGroup(name="a", n=n, **lif), LIFGroup(name="b", n=n, **lif)),
        connections=(
            Connection(name="ia", source="in", target="a", weights=np.ones((n, 1), np.int64)),
            Connection(name="ab", source="a", target="b", weights=np.ones((n, n), np.int64)),
        ),
    )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sigint_try(net_path: Path, x_path: Path, out_path: Path, warm_cpu: float) -> dict[str, Any]:
    """One ``spikeport run`` interrupted after ``warm_cpu`` CPU seconds: latency, exit code, stderr."""
    cli = "from spikeport.cli.main import entry; entry()"
    cmd = [sys.executable, "-c", cli, "run", str(net_path), "--input", str(x_path)]
    cmd += ["-o", str(out_path), "--record", "b/spikes", "--pad", "0"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None and _cpu_seconds(proc.pid) < warm_cpu:
        time.sleep(0.02)
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the "interrupted" line: the run has stopped
    t_line = time.perf_counter() - t0
    _, err = proc.communicate(timeout=120)
    err = first + err
    return {
        "latency_s": time.perf_counter() - t0,
        "message_latency_s": t_line,
        "exit_code": proc.returncode,
        "stderr_lines": len(err.strip().splitlines()),
        "output_written": out_path.exists(),
    }


def throughput(net: Any, x: np.ndarray, repeats: int) -> tuple[float, float]:
    """Best steps/s chunked and unchunked, interleaved."""
    best = {"chunked": float("inf"), "unchunked": float("inf")}
    default = chunking.TARGET_S
    for _ in range(repeats):
        for kind in best:
            chunking.TARGET_S = default if kind == "chunked" else float("inf")
            t0 = time.perf_counter()
            run(net, x, record=("spikes",))
            best[kind] = min(best[kind], time.perf_counter() - t0)
    chunking.TARGET_S = default
    steps = x.shape[1]
    return steps / best["chunked"], steps / best["unchunked"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tries", type=int, default=3, help="SIGINT tries")
    ap.add_argument("--warm-cpu", type=float, default=4.0)
    ap.add_argument("--quick", action="store_true", help="5,000 steps, 2 repeats, 2 SIGINT tries")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.tries = 5_000, 2, 2
    net = build_net()
    rng = np.random.default_rng(1)
    xb = (rng.random((args.batch, args.steps, SIZES[0])) < 0.1).astype(np.int8)
    run(net, xb[:1, :5])  # compile / load the numba cache
    c1, u1 = throughput(net, xb[:1], args.repeats)
    cb, ub = throughput(net, xb, args.repeats)
    out: dict[str, Any] = {
        "network": "700-256-256-20 LIF (benchmarks/emulator_vs_lava.py), 10% input rate",
        "steps": args.steps,
        "target_chunk_s": chunking.TARGET_S,
        "chunked_steps_per_s": {"batch1": c1, f"batch{args.batch}": cb},
        "unchunked_steps_per_s": {"batch1": u1, f"batch{args.batch}": ub},
        "chunked_over_unchunked": {"batch1": c1 / u1, f"batch{args.batch}": cb / ub},
    }
    with tempfile.TemporaryDirectory() as tmp:
        net_path, x_path = Path(tmp) / "net.h5", Path(tmp) / "x.npy"
        busy = busy_net()
        save_network(net_path, busy)
        x1 = np.zeros((1, 200, 1), np.int8)
        run(busy, x1[:, :5])
        t0 = time.perf_counter()
        run(busy, x1, record=("b/spikes",))
        long_steps = int(30 * 200 / (time.perf_counter() - t0))  # about 30 s of work
        np.save(x_path, np.zeros((1, long_steps, 1), np.int8))
        tries = [
            sigint_try(net_path, x_path, Path(tmp) / f"o{i}.npz", args.warm_cpu) for i in range(args.tries)
        ]
    out["sigint_run_steps"] = long_steps
    out["sigint_latency_s"] = [t["latency_s"] for t in tries]
    out["sigint_latency_max_s"] = max(t["latency_s"] for t in tries)
    out["sigint_message_latency_s"] = [t["message_latency_s"] for t in tries]
    out["exit_codes"] = [t["exit_code"] for t in tries]
    out["stderr_lines"] = [t["stderr_lines"] for t in tries]
    out["output_written"] = any(t["output_written"] for t in tries)
    out["load_average_1min"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
