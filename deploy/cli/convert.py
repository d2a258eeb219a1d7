"""``spikeport convert ANN.onnx -o SNN.nir --calibrate X.npy``: a trained ReLU network (ONNX) -> a spiking
NIR graph with balanced thresholds (docs/seed-methods.md, "Hybrid conversion and STDB (Rathi et al. 2020)").

The ONNX file is read with the ``onnx`` package (protobuf, never pickle); ``X.npy`` holds ANN inputs
``(N, *input_shape)`` (read without pickle). The NIR file stores its Semantics and the conversion record.
"""

from __future__ import annotations

import argparse

from spikeport.cli.main import command


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the ANN as an ONNX file (feed-forward: Gemm/Conv/AveragePool/Relu/...)")
    p.add_argument("-o", "--output", required=True, help="where to write the spiking network (NIR)")
    p.add_argument(
        "--calibrate", metavar="X.npy", required=True, help="ANN inputs (N, ...) for the thresholds"
    )
    p.add_argument("--steps", type=int, default=32, help="time steps the SNN will run (default 32)")
    p.add_argument(
        "--threshold",
        choices=("spike", "max", "percentile"),
        default="spike",
        help="spike-driven maximum (default), maximum or percentile of the ANN activations",
    )
    p.add_argument("--scale", type=float, default=1.0, help="threshold scale factor (default 1)")
    p.add_argument("--percentile", type=float, default=99.9, help="for --threshold percentile (default 99.9)")
    p.add_argument("--neuron", choices=("IF", "LIF"), default="IF", help="IF (default) or LIF (--beta)")
    p.add_argument("--beta", type=float, default=0.99, help="LIF decay per step (default 0.99)")
    p.add_argument(
        "--reset",
        choices=("subtract", "zero"),
        default="subtract",
        help="subtract (default; emulator) or zero (Lava's stock LIF)",
    )
    p.add_argument("--input", choices=("current", "poisson"), default="current",
                   help="input as a constant current (default) or signed Poisson spikes")  # fmt: skip


@command("convert", help="convert a ReLU network (ONNX) to a spiking NIR graph", configure=_configure)
def run(args: argparse.Namespace) -> int:
    from spikeport.cli.files import check_outputs, read_arrays
    from spikeport.emulator.errors import ValidationError
    from spikeport.nir.io import write_nir
    from spikeport.quantize.conversion.convert import convert
    from spikeport.quantize.conversion.onnx_reader import read_onnx

    check_outputs({"--output": args.output}, [args.model, args.calibrate])
    ann, shape = read_onnx(args.model)
    x = read_arrays(args.calibrate, option="--calibrate")
    if isinstance(x, dict) or tuple(x.shape[1:]) != shape:
        got = {k: v.shape for k, v in x.items()} if isinstance(x, dict) else x.shape
        raise ValidationError(f"--calibrate: one array (N, {', '.join(map(str, shape))}) (got {got})")
    graph, sem = convert(
        ann, x, args.steps, threshold=args.threshold, scale=args.scale, percentile=args.percentile,
        neuron=args.neuron, beta=args.beta, reset=args.reset, input=args.input,
    )  # fmt: skip
    write_nir(args.output, graph, sem)
    th = ", ".join(
        f"{float(graph.nodes[n].v_threshold.flat[0]):.4g}" for n in graph.nodes if n.startswith("spike")
    )
    print(f"converted {args.model}: thresholds [{th}], reset {sem.reset}, {args.steps} steps")
    print(f"wrote {args.output} (readout: node 'readout', its v at the last step is the class score)")
    return 0
