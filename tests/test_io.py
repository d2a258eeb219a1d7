"""HDF5 round trip of integer networks, and clean errors for bad files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from spikeport.emulator import io
from spikeport.emulator.errors import ValidationError
from spikeport.emulator.io import load_network, save_network
from spikeport.emulator.network import (
    Connection,
    InputGroup,
    LIFGroup,
    Network,
    SigmaDeltaGroup,
    TernaryLIFGroup,
)


def full_net() -> Network:
    rng = np.random.default_rng(0)
    return Network(
        inputs=(InputGroup(name="x", n=3), InputGroup(name="g", n=2, num_message_bits=8)),
        groups=(
            LIFGroup(
                name="a",
                n=4,
                du=410,
                dv=0,
                vth=131071,
                bias_mant=np.array([1, -4096, 4095, 0], np.int16),
                bias_exp=np.array([-12, 10, 0, 3], np.int8),
                u0=np.zeros(4, np.int32),
                v0=[5, -5, 0, 2**23 - 1],
                reset="subtract",
                refractory=3,
                reset_interval=9,
                reset_offset=4,
            ),
            TernaryLIFGroup(
                name="t",
                n=2,
                du=4095,
                dv=1,
                vth=7,
                vth_lo=-9,
                bias_mant=[1, 2],
                bias_exp=[0, 0],
                u0=[0, 0],
                v0=[0, 0],
            ),
            SigmaDeltaGroup(
                name="s",
                n=2,
                vth=3.5,
                bias=np.array([0.25, -1.0]),
                act_mode="unit",
                cum_error=True,
                spike_exp=2,
                state_exp=3,
                corrected=True,
            ),
        ),
        connections=(
            Connection(
                name="xa",
                source="x",
                target="a",
                weights=rng.integers(-256, 256, (4, 3)),
                weight_exp=-8,
                num_weight_bits=1,
                delays=rng.integers(0, 64, (4, 3)).astype(np.uint8),
                sparse=True,
            ),
            Connection(
                name="ga", source="g", target="a", weights=np.array([[1.5, -2.25]] * 4), num_message_bits=24
            ),
            Connection(
                name="at",
                source="a",
                target="t",
                weights=np.array([[4, 0, -8, 2]] * 2),
                shift=True,
                weight_exp=7,
            ),
            Connection(name="ts", source="t", target="s", weights=np.eye(2, dtype=np.int8)),
        ),
        metadata={"semantics": {"convention": "snntorch", "dt": 1e-3}, "note": "é", "list": [1, 2.5, None]},
    )


def assert_same(a: Network, b: Network) -> None:
    assert dict(a.metadata) == dict(b.metadata)
    for section in ("inputs", "groups", "connections"):
        ra, rb = getattr(a, section), getattr(b, section)
        assert len(ra) == len(rb)
        for x, y in zip(ra, rb, strict=True):
            assert type(x) is type(y)
            for f in dataclasses.fields(x):
                vx, vy = getattr(x, f.name), getattr(y, f.name)
                if isinstance(vx, np.ndarray):
                    assert isinstance(vy, np.ndarray) and vx.dtype == vy.dtype, f.name
                    np.testing.assert_array_equal(vx, vy)
                else:
                    assert type(vx) is type(vy) and vx == vy, (f.name, vx, vy)


def test_round_trip_every_record_and_field(tmp_path: Path) -> None:
    net = full_net()
    path = tmp_path / "net.h5"
    save_network(path, net)
    back = load_network(path)
    assert_same(net, back)
    assert back.connections[2].delays is None and back.connections[0].delays is not None
    with h5py.File(path, "r") as h5:
        assert h5.attrs["format_version"] == io.FORMAT_VERSION


def test_overwrite_is_atomic_and_failed_save_leaves_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "net.h5"
    save_network(path, full_net())
    before = path.read_bytes()

    def boom(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(io, "_write_record", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_network(path, full_net())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.h5"]


def test_metadata_must_be_json(tmp_path: Path) -> None:
    net = dataclasses.replace(full_net(), metadata={"x": object()})
    with pytest.raises(ValidationError, match="metadata: must be JSON-serializable"):
        save_network(tmp_path / "n.h5", net)
    assert not (tmp_path / "n.h5").exists()


def test_missing_and_not_hdf5(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no such file"):
        load_network(tmp_path / "nope.h5")
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(ValidationError, match="not a readable HDF5 file"):
        load_network(bad)


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "net.h5"
    save_network(path, full_net())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValidationError, match=str(path.name)):
        load_network(path)


def _edit(path: Path, fn) -> None:  # type: ignore[no-untyped-def]
    save_network(path, full_net())
    with h5py.File(path, "r+") as h5:
        fn(h5)


def test_missing_dataset_named(tmp_path: Path) -> None:
    path = tmp_path / "n.h5"
    _edit(path, lambda h5: h5["groups/000"].__delitem__("bias_mant"))
    with pytest.raises(ValidationError, match=r"groups/000/bias_mant: missing dataset"):
        load_network(path)


def test_missing_section_and_format(tmp_path: Path) -> None:
    path = tmp_path / "n.h5"
    _edit(path, lambda h5: h5.__delitem__("connections"))
    with pytest.raises(ValidationError, match=r"/connections: missing group"):
        load_network(path)
    _edit(path, lambda h5: h5.attrs.__setitem__("format", "other"))
    with pytest.raises(ValidationError, match="attribute 'format' must be"):
        load_network(path)
    _edit(path, lambda h5: h5.attrs.__setitem__("format_version", 99))
    with pytest.raises(ValidationError, match="newer than supported"):
        load_network(path)


def test_bad_values_revalidate(tmp_path: Path) -> None:
    path = tmp_path / "n.h5"

    def set_du(h5: h5py.File) -> None:
        f = json.loads(h5["groups/000"].attrs["fields"])
        f["du"] = 5000
        h5["groups/000"].attrs["fields"] = json.dumps(f)

    _edit(path, set_du)
    with pytest.raises(ValidationError, match=r"groups/000: LIFGroup\('a'\)\.du: must be in \[-1, 4095\]"):
        load_network(path)

    def bad_type(h5: h5py.File) -> None:
        h5["groups/001"].attrs["type"] = "Bogus"

    _edit(path, bad_type)
    with pytest.raises(ValidationError, match="unknown record type 'Bogus'"):
        load_network(path)

    def wrong_shape(h5: h5py.File) -> None:
        del h5["connections/003/weights"]
        h5["connections/003"].create_dataset("weights", data=np.zeros((2, 3)))

    _edit(path, wrong_shape)
    with pytest.raises(ValidationError, match=r"must have shape \(target.n, source.n\)"):
        load_network(path)

    _edit(path, lambda h5: h5["groups/000"].attrs.__setitem__("fields", "{not json"))
    with pytest.raises(ValidationError, match="'fields' is not valid JSON"):
        load_network(path)
