"""Issue 12: random arrays of every dtype and shape, and random bytes, fed as files to every command.

For every case: exit code 0 or 2; on 2 exactly one stderr line ``spikeport CMD: error: ...`` (no
traceback, no temporary file name); no stray files (an output only on success); the input files
byte for byte unchanged. The commands run in-process (:func:`spikeport.cli.main.main`), Lava excepted
(a Lava run costs seconds; its input path is the emulator's, and tests/test_robustness.py covers its
faults). 1,100 cases in all, derandomized (the same cases every run).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from spikeport.cli.main import main

N_IN = 3

DTYPES = [
    np.bool_, np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64,
    np.float16, np.float32, np.float64, np.complex64, np.complex128, "U3", "S3", "M8[s]", object,
]  # fmt: skip

#: command -> (argv with {x} for the input file and {o} for the output, writes {o}, cases)
COMMANDS: dict[str, tuple[list[str], bool, int]] = {
    "run-network": (["run", "{net}", "--input", "{x}", "-o", "{o}"], True, 260),
    "run-model": (["run", "{model}", "--input", "{x}", "-o", "{o}"], True, 240),
    "energy": (["energy", "{net}", "--input", "{x}"], False, 220),
    "quantize": (["quantize", "{model}", "-o", "{o}", "--calibrate", "{x}"], True, 200),
    "compare": (["compare", "{model}", "{qnet}", "--input", "{x}"], False, 180),
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import nir
    from spikeport.emulator.io import save_network
    from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network
    from spikeport.nir.io import write_nir
    from spikeport.quantize.quantize_nir import quantize

    d = tmp_path_factory.mktemp("fuzz-shared")
    g = LIFGroup(name="g", n=2, du=2048, dv=512, vth=5, bias_mant=0, bias_exp=0, u0=0, v0=0)
    c = Connection(name="c", source="x", target="g", weights=[[10, 0, 3], [0, 10, 3]])
    save_network(d / "net.h5", Network(inputs=[InputGroup(name="x", n=N_IN)], groups=[g], connections=[c]))
    w = np.array([[2.0, 0.0, 0.5], [0.0, 2.0, 0.5]], np.float32)
    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=w, bias=np.zeros(2, np.float32)),
        nir.IF(r=np.ones(2, np.float32), v_threshold=np.ones(2, np.float32)),
    )
    write_nir(d / "model.nir", graph)
    net, _ = quantize(graph, "nir")
    save_network(d / "qnet.h5", net)
    return {"net": d / "net.h5", "model": d / "model.nir", "qnet": d / "qnet.h5", "dir": d}


def _shapes() -> st.SearchStrategy[tuple[int, ...]]:
    side = st.integers(0, 3)
    plausible = st.one_of(
        st.tuples(st.integers(0, 3), st.integers(0, 4), st.just(N_IN)),
        st.tuples(st.integers(0, 4), st.just(N_IN)),
        st.tuples(side, side, st.just(1), st.just(N_IN)),
    )
    return st.one_of(plausible, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4))


def _elements(dtype: Any) -> st.SearchStrategy[Any] | None:
    kind = np.dtype(dtype).kind
    if kind == "f":
        return st.one_of(
            st.sampled_from([0.0, 1.0, -1.0, 0.5, np.nan, np.inf, -np.inf, 2.0]), st.floats(width=16)
        )
    if kind in "iu":
        return st.sampled_from([0, 1, 2, -1, 127, 255]).map(lambda v: np.array(v).astype(dtype).item())
    return None  # hypothesis' default elements for the dtype


def _spike_arrays() -> st.SearchStrategy[np.ndarray]:
    """Arrays every command should take: 0/1 values, B, T >= 1, the natural or flattened shape."""
    shape = st.one_of(
        st.tuples(st.integers(1, 3), st.integers(1, 4), st.just(N_IN)),
        st.tuples(st.integers(1, 4), st.just(N_IN)),
        st.tuples(st.integers(1, 3), st.integers(1, 4), st.just(1), st.just(N_IN)),
    )
    dtype = st.sampled_from([np.bool_, np.int8, np.int64, np.float32, np.float64])
    return hnp.arrays(dtype, shape, elements=st.sampled_from([0, 1]))


@st.composite
def array_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """(file name, file bytes): a .npy array, an .npz of arrays, or random bytes; a third of the
    cases are well-formed spike arrays (the success path: outputs written, nothing else)."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(_shapes())
    if draw(st.integers(0, 2)) == 0:
        buf = io.BytesIO()
        np.save(buf, draw(_spike_arrays()))
        return "in.npy", buf.getvalue()
    if dtype is object:
        arr = np.empty(shape, object)
        arr.fill(draw(st.sampled_from([1, "a", None, 1.5])))
    else:
        arr = draw(hnp.arrays(np.dtype(dtype), shape, elements=_elements(dtype)))
    buf = io.BytesIO()
    kind = draw(st.sampled_from(["npy", "npy", "npz", "bytes", "truncated"]))
    if kind == "npz":
        key = draw(st.sampled_from(["input", "x", "y", "0"]))
        np.savez(buf, **{key: arr}, allow_pickle=True)  # type: ignore[arg-type]
        return "in.npz", buf.getvalue()
    np.save(buf, arr, allow_pickle=True)
    data = buf.getvalue()
    if kind == "bytes":
        head = draw(st.sampled_from([b"", b"\x93NUMPY", b"PK\x03\x04", data[:12]]))
        return draw(st.sampled_from(["in.npy", "in.npz", "in.bin"])), head + draw(st.binary(max_size=200))
    if kind == "truncated":
        return "in.npy", data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    return "in.npy", data


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def _one_case(command: str, shared: dict[str, Path], name: str, data: bytes, time_first: bool) -> None:
    template, writes, _ = COMMANDS[command]
    case = Path(tempfile.mkdtemp(dir=shared["dir"].parent))
    try:
        x = case / name
        x.write_bytes(data)
        out = case / ("out.h5" if template[0] == "quantize" else "out.npz")
        fmt = {**{k: str(v) for k, v in shared.items()}, "x": str(x), "o": str(out)}
        argv = [a.format(**fmt) for a in template] + (["--time-first"] if time_first else [])
        err, sink = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(err):
            rc = main(argv)
        lines = err.getvalue().strip().splitlines()
        assert rc in (0, 2), (argv, rc, err.getvalue())
        assert x.read_bytes() == data, "the input file changed"
        left = sorted(p.name for p in case.iterdir())
        if rc == 2:
            assert len(lines) == 1 and lines[0].startswith(f"spikeport {template[0]}: error: "), lines
            assert "Traceback" not in lines[0] and ".tmp" not in lines[0], lines
            assert left == [name], left
        else:
            assert left == sorted([name, out.name] if writes else [name]), left
    finally:
        shutil.rmtree(case)


@pytest.mark.slow
@pytest.mark.parametrize("command", list(COMMANDS))
def test_fuzz_every_command(command: str, shared: dict[str, Path]) -> None:
    before = _digest(shared["dir"])
    ran = []

    @settings(
        max_examples=COMMANDS[command][2],
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=array_files(), time_first=st.booleans())
    def check(case: tuple[str, bytes], time_first: bool) -> None:
        ran.append(1)
        _one_case(command, shared, *case, time_first)

    check()
    assert len(ran) >= COMMANDS[command][2] * 0.9  # the cases did run (no silent exhaustion)
    assert _digest(shared["dir"]) == before  # network and model files unchanged, nothing added


def test_the_fuzz_covers_at_least_1000_cases() -> None:
    assert sum(n for _, _, n in COMMANDS.values()) >= 1000
