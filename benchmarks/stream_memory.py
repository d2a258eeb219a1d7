"""Peak memory of ``spikeport run`` on a dataset-sized batch: streamed in chunks vs one shot; prints JSON.

A small network (``--inputs`` -> 32 -> 10 LIF, 10% Bernoulli input, ``--steps`` steps) on ``--samples``
samples saved as one ``.npy``. Each run is a separate ``spikeport run`` process (its peak resident
memory, ``VmHWM``, and its wall time): one shot (``--format npy-dir``) and
``--stream B`` for each ``B`` of ``--chunks``. ``equal``: every array of the streamed output equals
the one-shot output's (read back memory-mapped). ``input_mb`` / ``output_mb``: file sizes.

Usage: ``python benchmarks/stream_memory.py [--quick] [--samples 100000] [--steps 10] [--chunks 1000,10000]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _network(n_in: int) -> Any:
    from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network

    rng = np.random.default_rng(0)
    g = LIFGroup(name="h", n=32, du=1024, dv=512, vth=60, bias_mant=0, bias_exp=0, u0=0, v0=0)
    o = LIFGroup(name="o", n=10, du=1024, dv=512, vth=40, bias_mant=0, bias_exp=0, u0=0, v0=0)
    return Network(
        inputs=[InputGroup(name="x", n=n_in)],
        groups=[g, o],
        connections=[
            Connection(name="c1", source="x", target="h", weights=rng.integers(-40, 120, (32, n_in))),
            Connection(name="c2", source="h", target="o", weights=rng.integers(-60, 160, (10, 32))),
        ],
    )


_PEAK = """import sys
from spikeport.cli.main import main
rc = main(sys.argv[1:])
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(f"VmHWM_kB={hwm}", file=sys.stderr)
sys.exit(rc)
"""


def _cli(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one ``spikeport run`` process: its ``VmHWM`` read from
    ``/proc/self/status`` as it ends (``ru_maxrss`` of a child would count the parent's memory at fork)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PEAK, "run", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"spikeport run failed: {proc.stderr}")
    hwm = [w for w in proc.stderr.split() if w.startswith("VmHWM_kB=")][-1]
    return wall, int(hwm.split("=")[1]) / 1024


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 samples (about a minute)")
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--inputs", type=int, default=100)
    ap.add_argument("--chunks", default="1000,10000", help="comma-separated --stream sizes")
    args = ap.parse_args()
    samples = 20_000 if args.quick else args.samples
    from spikeport.emulator.io import save_network
    from spikeport.emulator.result import load_result

    rows = []
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        d = Path(tmp)
        save_network(d / "net.h5", _network(args.inputs))
        x = np.random.default_rng(1).random((samples, args.steps, args.inputs)) < 0.1
        np.save(d / "x.npy", x.astype(np.int8))
        del x
        base = [str(d / "net.h5"), "--input", str(d / "x.npy"), "--format", "npy-dir"]
        wall, rss = _cli([*base, "-o", str(d / "whole")])
        rows.append(
            {"mode": "one-shot", "chunk": samples, "wall_s": round(wall, 2), "peak_rss_mb": round(rss, 1)}
        )
        want = load_result(d / "whole", mmap=True)
        for chunk in (int(c) for c in args.chunks.split(",")):
            out = d / f"s{chunk}"
            wall, rss = _cli([*base, "-o", str(out), "--stream", str(chunk)])
            got = load_result(out, mmap=True)
            equal = sorted(got.outputs) == sorted(want.outputs)
            equal = equal and all(np.array_equal(got[k], want[k]) for k in want.outputs)
            rows.append({"mode": "stream", "chunk": chunk, "wall_s": round(wall, 2),
                         "peak_rss_mb": round(rss, 1), "equal": bool(equal)})  # fmt: skip
            del got
        result = {
            "samples": samples,
            "steps": args.steps,
            "network": f"{args.inputs}-32-10",
            "input_mb": round(_size_mb(d / "x.npy"), 1),
            "output_mb": round(_size_mb(d / "whole"), 1),
            "runs": rows,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
