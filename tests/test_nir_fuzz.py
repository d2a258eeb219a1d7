"""Corrupted and random NIR files: each either loads or raises spikeport's own error (seeded loops)."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
from spikeport.emulator.errors import SpikeportError
from spikeport.nir.io import NIRRepairWarning, read_nir, write_nir


def _zoo():  # the every-node graph of test_nir_io (loaded by path: tests are not a package)
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_nir_io_cases", Path(__file__).with_name("test_nir_io.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.zoo()


def _outcome(path) -> str:
    """'ok' or 'error'; anything else (a raw exception, a foreign warning) fails the test."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            read_nir(path)
            result = "ok"
        except SpikeportError:
            result = "error"
    foreign = [w for w in caught if not issubclass(w.category, NIRRepairWarning)]
    assert not foreign, f"{path}: foreign warnings {[str(w.message) for w in foreign]}"
    return result


@pytest.fixture(scope="module")
def valid_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("fuzz") / "zoo.nir"
    write_nir(path, _zoo())
    return path.read_bytes()


def test_byte_corruption(tmp_path, valid_bytes: bytes) -> None:
    rng = np.random.default_rng(11)
    outcomes = []
    for k in range(60):
        data = bytearray(valid_bytes)
        action = k % 3
        if action == 0:  # flip random bytes
            for pos in rng.integers(0, len(data), size=int(rng.integers(1, 40))):
                data[pos] ^= int(rng.integers(1, 256))
        elif action == 1:  # truncate
            data = data[: int(rng.integers(0, len(data)))]
        else:  # zero a block
            start = int(rng.integers(0, len(data)))
            data[start : start + int(rng.integers(1, 512))] = bytes(min(512, len(data) - start))
        path = tmp_path / f"c{k}.nir"
        path.write_bytes(bytes(data))
        outcomes.append(_outcome(path))
    assert "error" in outcomes  # the corruption did reach the reader


def _datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


def test_structural_mutations(tmp_path, valid_bytes: bytes) -> None:
    rng = np.random.default_rng(12)
    garbage = [
        np.array([np.nan, 1.0]),
        np.array([[np.inf]]),
        np.zeros((0,)),
        np.ones((7, 5, 3)),
        np.array(b"LIF"),
        np.array(-3),
        np.array([b"a", b"b", b"c"]),
    ]
    outcomes = []
    for k in range(80):
        path = tmp_path / f"m{k}.nir"
        path.write_bytes(valid_bytes)
        with h5py.File(path, "r+") as f:
            names = _datasets(f)
            victim = names[int(rng.integers(len(names)))]
            if k % 2 == 0:
                del f[victim]
            else:
                del f[victim]
                f[victim] = garbage[int(rng.integers(len(garbage)))]
        outcomes.append(_outcome(path))
    assert outcomes.count("error") > 20


def test_random_files(tmp_path) -> None:
    """HDF5 files with random groups and datasets, most of them meaningless as NIR."""
    rng = np.random.default_rng(13)
    types = ["LIF", "Affine", "NIRGraph", "Input", "Output", "Conv2d", "Bogus"]
    for k in range(40):
        path = tmp_path / f"r{k}.nir"
        with h5py.File(path, "w") as f:
            node = f.create_group("node")
            node["type"] = "NIRGraph"
            nodes = node.create_group("nodes")
            names = [f"n{i}" for i in range(int(rng.integers(0, 5)))]
            for name in names:
                g = nodes.create_group(name)
                g["type"] = types[int(rng.integers(len(types)))]
                for field in rng.choice(["weight", "bias", "tau", "r", "v_leak", "v_threshold", "shape"], 3):
                    if field not in g:
                        g[field] = rng.normal(size=int(rng.integers(1, 4)))
            if k % 4:
                pairs = (
                    [(rng.choice([*names, "x"]), rng.choice([*names, "y"])) for _ in range(3)]
                    if names
                    else []
                )
                node["edges"] = np.array(pairs, dtype="S") if pairs else np.zeros((0, 2), "S1")
        assert _outcome(path) in ("ok", "error")
