"""Sparse connection weights (:class:`SparseWeights`): the same network built dense and sparse gives
identical arrays on every engine and path, the file stores the sparse arrays, misuse is refused.

The oracle for "sparse runs like dense" is the dense representation run by the same engine (and, for
one engine, the independent reference engine of ``tests/engine_reference.py``), never the sparse run
itself."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import engine_reference as ref  # tests/engine_reference.py (tests/conftest.py)
import numpy as np
import pytest
from spikeport.emulator.engines import dense as engine_dense
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.errors import UnsupportedError, ValidationError
from spikeport.emulator.io import load_network, save_network
from spikeport.emulator.network import Connection, InputGroup, LIFGroup, Network, TernaryLIFGroup
from spikeport.emulator.sparse_weights import SparseWeights

VARS = ("spikes", "a_in", "u", "v")


def _sparse_matrix(rng: np.random.Generator, shape: tuple[int, int], sign: str) -> np.ndarray:
    lo, hi = {"mixed": (-256, 256), "exc": (0, 256), "inh": (-256, 1)}[sign]
    w = rng.integers(lo, hi, size=shape)
    return w * (rng.random(shape) < 0.2)  # ~80 % zeros


def _group(rng: np.random.Generator, name: str, n: int, lava: bool = False) -> LIFGroup:
    kw = dict(
        n=n,
        du=int(rng.choice([0, 700, 4095])),
        dv=int(rng.choice([0, 300, 4095])),
        vth=int(rng.integers(0, 200)),
        bias_mant=rng.integers(-100, 100, size=n),
        bias_exp=rng.integers(0, 3, size=n),
        u0=0,
        v0=0,
        reset=str(rng.choice(["zero", "subtract"])) if not lava else "zero",
    )
    if rng.random() < 0.3:
        kw["reset"] = "zero"
        return TernaryLIFGroup(name=name, vth_lo=-int(rng.integers(0, 200)), **kw)  # type: ignore[arg-type]
    return LIFGroup(name=name, **kw)  # type: ignore[arg-type]


def random_pair(seed: int, lava: bool = False) -> tuple[Network, Network]:
    """A random LIF network with mostly-zero weights, built dense and with every delay-free
    connection sparse (stored zeros kept in one of them); ``lava``: zero resets only."""
    rng = np.random.default_rng(seed)
    n_in, n1, n2 = (int(k) for k in rng.integers(3, 40, size=3))
    bits = int(rng.choice([0, 4]))
    groups = (_group(rng, "a", n1, lava), _group(rng, "b", n2, lava))

    def conn(name: str, src: str, tgt: str, shape: tuple[int, int], graded: int) -> Connection:
        sign = str(rng.choice(["mixed", "exc", "inh"]))
        delays = rng.integers(0, 3, size=shape) if rng.random() < 0.25 else None
        return Connection(name=name, source=src, target=tgt, weights=_sparse_matrix(rng, shape, sign),
                          weight_exp=int(rng.integers(-4, 4)), num_weight_bits=int(rng.integers(3, 9)),
                          num_message_bits=graded, delays=delays)  # fmt: skip

    conns = (
        conn("xa", "x", "a", (n1, n_in), bits),
        conn("ab", "a", "b", (n2, n1), 0),
        conn("aa", "a", "a", (n1, n1), 0),
        conn("ba", "b", "a", (n1, n2), 0),
    )
    dense = Network(
        inputs=(InputGroup(name="x", n=n_in, num_message_bits=bits),), groups=groups, connections=conns
    )
    sparse_conns = []
    for i, c in enumerate(conns):
        if c.delays is not None:
            sparse_conns.append(c)
            continue
        sw = SparseWeights.from_dense(c.weights)
        if i == 0:  # a stored zero means the same as an absent entry
            full = np.asarray(c.weights)
            sw = SparseWeights.from_dense(np.where(full == 0, 0, full))
            rows, cols = np.nonzero(full == 0)
            if rows.size:
                r = np.concatenate([sw.rows(), rows[:1]])
                cc = np.concatenate([sw.indices, cols[:1]])
                sw = SparseWeights.from_coo(r, cc, np.concatenate([sw.data, [0]]), full.shape)
        sparse_conns.append(replace(c, weights=sw))
    sparse = replace(dense, connections=tuple(sparse_conns))
    return dense, sparse


def _inputs(rng: np.random.Generator, net: Network, batch: int, steps: int) -> np.ndarray:
    ig = net.inputs[0]
    if ig.num_message_bits:
        lim = 1 << ig.num_message_bits
        return rng.integers(-lim + 1, lim, size=(batch, steps, ig.n)) * (
            rng.random((batch, steps, ig.n)) < 0.5
        )
    return (rng.random((batch, steps, ig.n)) < 0.4).astype(np.int8)


ENGINES = ["compiled", "numpy", "numpy-strict", "event", "torch", "float"]


def _run(net: Network, x: np.ndarray, engine: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    monkeypatch.setattr(engine_dense, "USE_COMPILED", engine == "compiled")
    if engine == "torch":
        pytest.importorskip("torch")
    kw: dict = {
        "compiled": {},
        "numpy": {},
        "numpy-strict": {"overflow": "strict"},
        "event": {"engine": "event"},
        "torch": {"engine": "torch"},
        "float": {"mode": "float"},
    }[engine]
    res = run(net, x, record=VARS, counters=engine in ("compiled", "numpy"), **kw)
    if engine == "compiled":
        assert res.metadata["path"] == "compiled"
    out = dict(res.outputs)
    if res.counters is not None:
        out.update({f"count:{k}": v for k, v in res.counters.spike_counts.items()})
    return out


CASES = [(e, s) for e in ENGINES for s in range(6) if e != "torch" or s in (1, 4)]  # torch: slow per step


@pytest.mark.parametrize(("engine", "seed"), CASES)
def test_sparse_runs_bit_identical_to_dense(engine: str, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    dense, sparse = random_pair(seed)
    assert any(c.is_sparse for c in sparse.connections)
    x = _inputs(np.random.default_rng(100 + seed), dense, 2, 30)
    try:
        want = _run(dense, x, engine, monkeypatch)
    except Exception as exc:  # the dense network itself overflows in strict mode: both must refuse alike
        with pytest.raises(type(exc), match=re.escape(str(exc))):
            _run(sparse, x, engine, monkeypatch)
        return
    got = _run(sparse, x, engine, monkeypatch)
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=f"{k} ({engine}, seed {seed})")


@pytest.mark.parametrize("seed", range(3))
def test_sparse_matches_the_reference_engine(seed: int) -> None:
    _, sparse = random_pair(seed)
    dense_again = replace(
        sparse, connections=tuple(replace(c, weights=c.dense_weights()) for c in sparse.connections)
    )
    x = _inputs(np.random.default_rng(seed), sparse, 1, 20)
    got = run(sparse, x, record=VARS)
    want = ref.reference_run(dense_again, {"x": x[0]}, 20)
    for k, v in got.outputs.items():
        np.testing.assert_array_equal(v[0], want[k], err_msg=k)


def test_file_keeps_the_sparse_arrays(tmp_path: Path) -> None:
    import h5py

    _, sparse = random_pair(1)
    save_network(tmp_path / "n.h5", sparse)
    back = load_network(tmp_path / "n.h5")
    with h5py.File(tmp_path / "n.h5") as h5:
        assert h5.attrs["format_version"] == 2
        kinds = {
            h5[f"connections/{k}"].attrs["fields"]: h5[f"connections/{k}/weights"] for k in h5["connections"]
        }
        assert any(isinstance(node, h5py.Group) for node in kinds.values())
    for a, b in zip(sparse.connections, back.connections, strict=True):
        assert a.is_sparse == b.is_sparse
        if a.is_sparse:
            for key in ("indptr", "indices", "data"):
                np.testing.assert_array_equal(getattr(b.weights, key), getattr(a.weights, key))
            assert b.weights.data.dtype == a.weights.data.dtype  # stored narrower, restored
            assert b.weights.shape == a.weights.shape
        np.testing.assert_array_equal(b.dense_weights(), a.dense_weights())


def test_conversions_agree_with_numpy() -> None:
    rng = np.random.default_rng(3)
    w = rng.integers(-5, 6, size=(7, 9)) * (rng.random((7, 9)) < 0.3)
    sw = SparseWeights.from_dense(w)
    np.testing.assert_array_equal(sw.to_dense(), w)
    np.testing.assert_array_equal(sw.row_sums(np.abs(sw.data)), np.abs(w).sum(axis=1))
    np.testing.assert_array_equal(sw.col_counts(), np.count_nonzero(w, axis=0))
    colptr, rows, vals = sw.by_source()
    for i in range(9):
        np.testing.assert_array_equal(rows[colptr[i] : colptr[i + 1]], np.nonzero(w[:, i])[0])
        np.testing.assert_array_equal(vals[colptr[i] : colptr[i + 1]], w[np.nonzero(w[:, i])[0], i])
    np.testing.assert_array_equal(sw.to_scipy().toarray(), w)


def test_misuse_is_refused() -> None:
    sw = SparseWeights.from_dense(np.eye(3, dtype=np.int64))
    with pytest.raises(UnsupportedError, match=r"Connection\('c'\)\.delays: sparse weights take no delays"):
        Connection(name="c", source="x", target="g", weights=sw, delays=np.zeros((3, 3)))
    with pytest.raises(ValidationError, match=r"Connection\('c'\)\.weights: must be in \[-256, 255\]"):
        Connection(name="c", source="x", target="g", weights=sw.with_data([300, 1, 1]))
    with pytest.raises(ValidationError, match=r"SparseWeights\.indices: must increase strictly"):
        SparseWeights(shape=(1, 3), indptr=[0, 2], indices=[2, 1], data=[1, 1])
    with pytest.raises(ValidationError, match=r"SparseWeights\.indices: must be in \[0, 3\)"):
        SparseWeights(shape=(1, 3), indptr=[0, 1], indices=[3], data=[1])
    big = SparseWeights(
        shape=(1 << 13, 1 << 13), indptr=np.zeros((1 << 13) + 1, np.int64), indices=[], data=[]
    )
    c = Connection(name="c", source="x", target="g", weights=big)
    with pytest.raises(
        UnsupportedError, match=r"Connection\('c'\)\.weights: a sparse .* too big to make dense"
    ):
        c.dense_weights()
    assert c.sparse and c.nonzero()[0].size == 0


@pytest.mark.lava
def test_lava_runs_sparse_connections_as_the_emulator_runs_dense() -> None:
    """Sparse connections become Lava ``Sparse`` processes from their CSR arrays (never made dense);
    real Lava must give what the emulator gives for the dense twin, bit for bit."""
    from spikeport.emulator.randnet import merge_inputs, merge_networks, split_outputs
    from spikeport.lava.backend import run_lava

    pairs = [random_pair(seed, lava=True) for seed in range(3)]
    dense, sparse = merge_networks([d for d, _ in pairs]), merge_networks([s for _, s in pairs])
    assert sum(c.is_sparse for c in sparse.connections) >= 6
    rng = np.random.default_rng(7)
    x = merge_inputs([{"x": _inputs(rng, d, 2, 10)} for d, _ in pairs])
    lava = run_lava(sparse, x, record=VARS)
    emu = run(dense, x, record=VARS)
    for i in range(len(pairs)):
        got, want = split_outputs(lava.outputs, i), split_outputs(emu.outputs, i)
        assert got.keys() == want.keys() and got
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"network {i}: {k}")
