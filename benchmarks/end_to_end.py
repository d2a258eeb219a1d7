"""End-to-end throughput of ``spikeport run`` against bare Lava; prints one JSON object.

Network 700 -> 256 -> 256 -> 20 LIF of ``benchmarks/emulator_vs_lava.py`` saved as HDF5, ``--batch``
(default 64) samples of Bernoulli(0.1) input over ``--steps`` steps (default 2050) saved as ``.npy``.
Lava runs one sample at a time; spikeport runs the same samples at engine batch 1 (``--stream 1``: one
sample run and written at a time) and at engine batch ``--batch`` (all at once):

- ``cli_s``: wall time of the whole ``spikeport run NET.h5 --input X.npy -o OUT --pad 0 --format F
  [--stream 1]`` process (interpreter start, imports, reading, the run, writing the output), best of
  ``--repeats``, after one untimed call that fills numba's cache; one row per format of ``--formats``
  (default ``npz`` and ``h5``; the batch-1 rows stream, so they write ``h5``);
- ``engine_s``: the in-process ``sp.run`` of the same input at the same batch (the engine alone);
- ``vs_lava``: sample-steps/s end to end over Lava's unprobed steps/s (Lava has no batch), Lava
  measured in the same run (``--lava-steps-per-s`` skips Lava and uses the given rate);
- ``equal``: every array of ``OUT`` (read back with ``load_result``) equals the in-process run's
  (spikes recorded; written as int8, the dtype ``spikeport run`` uses for fixed-point LIF groups);
- ``breakdown`` (batch ``--batch``, npz): the stages of the CLI's work timed inside one fresh process,
  wall and CPU seconds (imports of numpy, of the CLI, reading the network (h5py), reading and checking
  the input, importing the engines (numba), the first call of the compiled loop (numba's cache load),
  the run, writing the npz), best of ``--repeats``;
- ``fixed_s``: the breakdown's total minus its run (start, imports, reading, numba's cache, writing), and
  ``ceiling_vs_lava_batch``: Lava's time for the samples over ``fixed_s``, the end-to-end ratio an
  engine taking no time at all would reach on this machine;
- ``one_sample``: the same for a single sample (``samples`` 1), where the fixed costs dominate, and
  ``floor``: a bare interpreter (``python -c pass``) and ``python -c 'import numpy'``, best of 5, with
  ``max_vs_lava_one_sample``: Lava's time for one sample over the numpy-import time, the ratio no
  Python command can beat on one sample.

Usage: ``python benchmarks/end_to_end.py [--steps 2050] [--batch 64] [--repeats 3]
[--formats npz,npz-compressed,h5,npy-dir]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import spikeport as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_vs_lava import SIZES, build_net, lava_unprobed_steps_per_s

SPIKEPORT = str(Path(sys.executable).with_name("spikeport"))


def _cli(net_path: Path, x_path: Path, out: Path, fmt: str, stream: int | None) -> float:
    cmd = [SPIKEPORT, "run", str(net_path), "--input", str(x_path), "-o", str(out), "--pad", "0"]
    cmd += ["--format", fmt, *(["--stream", str(stream)] if stream else [])]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


_STAGES = """import json, sys, time
marks = [("start", time.process_time(), time.perf_counter())]
def mark(name):
    marks.append((name, time.process_time(), time.perf_counter()))
import numpy as np
mark("import_numpy")
import spikeport.cli.run
mark("import_cli")
from spikeport.cli.files import load_network, network_inputs, read_arrays
from spikeport.cli.run_core import spike_dtypes
net = load_network(sys.argv[1])
mark("read_network")
x = network_inputs(net, read_arrays(sys.argv[2]), path=sys.argv[2])
mark("read_input")
from spikeport.emulator.engines import dispatch
mark("import_engines")
dispatch.run(net, {k: v[:, :3] for k, v in x.items()}, record=["spikes"])
mark("first_call")
r = dispatch.run(net, x, record=["spikes"])
mark("run")
r.save(sys.argv[3], format="npz", dtypes=spike_dtypes(r, net, "fixed"))
mark("write_npz")
out = {n: {"wall_s": round(w - marks[i][2], 4), "cpu_s": round(c - marks[i][1], 4)}
       for i, (n, c, w) in enumerate(marks[1:])}
print(json.dumps(out))
"""


def _breakdown(net_path: Path, x_path: Path, out: Path, repeats: int) -> dict[str, Any]:
    """The CLI's stages in one fresh process (``_STAGES``), per stage the best of ``repeats`` runs."""
    runs = []
    for _ in range(repeats):
        cmd = [sys.executable, "-c", _STAGES, str(net_path), str(x_path), str(out)]
        runs.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    best = {k: {f: min(r[k][f] for r in runs) for f in ("wall_s", "cpu_s")} for k in runs[0]}
    best["total"] = {f: round(sum(v[f] for v in best.values()), 3) for f in ("wall_s", "cpu_s")}
    return best


def _floor() -> dict[str, float]:
    """Best-of-5 wall time of a bare interpreter and of ``import numpy``."""
    out = {}
    for name, code in (("python_s", "pass"), ("import_numpy_s", "import numpy")):
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            best = min(best, time.perf_counter() - t0)
        out[name] = round(best, 4)
    return out


def _one_run(
    net: Any, x: np.ndarray, folder: Path, repeats: int, fmt: str, stream: int | None
) -> dict[str, Any]:
    """One row: ``x`` through the CLI (at engine batch ``stream`` if given) and in process."""
    from spikeport.emulator.result import load_result

    net_path, x_path, out = folder / "net.h5", folder / f"x{x.shape[0]}.npy", folder / f"out.{fmt}"
    np.save(x_path, x)
    _cli(net_path, x_path, out, fmt, stream)  # numba cache, page cache
    cli_s = min(_cli(net_path, x_path, out, fmt, stream) for _ in range(repeats))
    batch = stream or x.shape[0]
    sp.run(net, x[:batch, :5])  # numba cache load, plans: not part of the engine's time
    t0 = time.perf_counter()
    refs = [sp.run(net, x[i : i + batch]) for i in range(0, x.shape[0], batch)]
    engine_s = time.perf_counter() - t0
    ref = {k: np.concatenate([r[k] for r in refs]) for k in refs[0].outputs}
    got = load_result(out)
    equal = sorted(got.outputs) == sorted(ref) and all(np.array_equal(got[k], ref[k]) for k in ref)
    samples = x.shape[0] * x.shape[1]
    return {"samples": int(x.shape[0]), "batch": int(batch), "steps": int(x.shape[1]), "format": fmt,
            "cli_s": round(cli_s, 3), "engine_s": round(engine_s, 3),
            "cli_sample_steps_per_s": round(samples / cli_s, 1), "equal": bool(equal)}  # fmt: skip


def _rows(net: Any, xb: np.ndarray, folder: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Engine batch 1 (streamed, h5), then engine batch ``--batch`` in each format; the npz row with
    its breakdown."""
    rows = [_one_run(net, xb, folder, args.repeats, "h5", 1)]
    for fmt in args.formats.split(","):
        rows.append(_one_run(net, xb, folder, args.repeats, fmt, None))
        if fmt == "npz":
            rows[-1]["breakdown"] = _breakdown(folder / "net.h5", folder / f"x{xb.shape[0]}.npy",
                                               folder / "stages.npz", args.repeats)  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2050)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--formats",
        default="npz,h5",
        help="comma-separated --format values to time at engine batch --batch (default npz,h5)",
    )
    ap.add_argument("--lava-steps-per-s", type=float, default=0.0, help="skip Lava; use this rate")
    args = ap.parse_args()
    net = build_net()
    rng = np.random.default_rng(1)
    xb = (rng.random((args.batch, args.steps, SIZES[0])) < 0.1).astype(np.int8)
    out: dict[str, Any] = {"network": "-".join(map(str, SIZES)), "samples": args.batch}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sp.save_network(folder / "net.h5", net)
        rows = _rows(net, xb, folder, args)
        one = _one_run(net, xb[:1], folder, args.repeats, "npz", None)
    lava = args.lava_steps_per_s or lava_unprobed_steps_per_s(net, xb[:1], args.steps)
    out["lava_steps_per_s"] = round(lava, 1)
    out["lava_measured"] = not args.lava_steps_per_s
    for row in (*rows, one):
        row["vs_lava"] = round(row["cli_sample_steps_per_s"] / lava, 1)
    out["runs"] = rows
    out["vs_lava_batch1"] = rows[0]["vs_lava"]
    out["vs_lava_batch"] = max(r["vs_lava"] for r in rows[1:])
    stages = next((r["breakdown"] for r in rows if "breakdown" in r), None)
    if stages is not None:  # timed with the npz format
        fixed = stages["total"]["wall_s"] - stages["run"]["wall_s"]
        out["fixed_s"] = round(fixed, 3)
        out["ceiling_vs_lava_batch"] = round(args.batch * args.steps / lava / fixed, 1)
    floor = _floor()
    floor["max_vs_lava_one_sample"] = round(args.steps / lava / floor["import_numpy_s"], 1)
    out["one_sample"] = {**one, "floor": floor}
    out["load_avg"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
