"""Fixed scales: ``sp.quantize(finetuned_graph(graph, sem, tuned), sem, scales=tuned)`` is ``tuned``.

The oracle is the fine-tuned network itself (built by quantize + fine_tune, not by the code under test):
every integer field of every group and connection must come back equal, and the emulator must run both
to the same spikes. Records that do not fit the graph are refused with ``Class.field: rule (got value)``.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import spikeport as sp
from small_task import rate_task, two_layer_export
from spikeport.emulator.engines.dispatch import run
from spikeport.emulator.errors import ValidationError
from spikeport.quantize import encode_inputs
from spikeport.quantize.fixed_scales import scales_of
from spikeport.quantize.training.finetune import FineTuneConfig, fine_tune, readout
from spikeport.quantize.training.writeback import finetuned_graph

T = 10
GROUP_FIELDS = ("n", "du", "dv", "vth", "bias_mant", "bias_exp", "u0", "v0", "reset", "refractory")
CONN_FIELDS = ("source", "target", "weights", "weight_exp", "num_weight_bits", "num_message_bits", "delays")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tuned(mode: str, rounding: str):
    graph, sem = two_layer_export()
    x, y = rate_task(64, T)
    net, twin, _ = sp.quantize_pair(graph, sem, mode=mode, calibration=x, rounding=rounding)
    tuned, _ = fine_tune(net, x, y, twin=twin, config=FineTuneConfig(epochs=2, lr=2.0, batch=16))
    return graph, sem, x, net, tuned


def _assert_same_network(a, b) -> None:
    assert [g.name for g in a.groups] == [g.name for g in b.groups]
    for ga, gb in zip(a.groups, b.groups, strict=True):
        for f in GROUP_FIELDS:
            np.testing.assert_array_equal(getattr(ga, f), getattr(gb, f), err_msg=f"{ga.name}.{f}")
    assert [c.name for c in a.connections] == [c.name for c in b.connections]
    for ca, cb in zip(a.connections, b.connections, strict=True):
        for f in CONN_FIELDS:
            va, vb = getattr(ca, f), getattr(cb, f)
            if va is None or vb is None:
                assert va is vb, f"{ca.name}.{f}"
            else:
                np.testing.assert_array_equal(va, vb, err_msg=f"{ca.name}.{f}")
    assert [(i.name, i.n, i.num_message_bits) for i in a.inputs] == [
        (i.name, i.n, i.num_message_bits) for i in b.inputs
    ]


@pytest.mark.parametrize(("mode", "rounding"), [("fixed", "nearest"), ("shift", "min_drift")])
def test_written_graph_with_the_tuned_scales_is_the_tuned_network(mode: str, rounding: str) -> None:
    graph, sem, x, net, tuned = _tuned(mode, rounding)
    changed = [
        c.name
        for c, d in zip(net.connections, tuned.connections, strict=True)
        if not np.array_equal(c.weights, d.weights)
    ]
    assert changed, "fine-tuning changed no mantissa: the test would prove nothing"
    written = finetuned_graph(graph, sem, tuned)
    for scales in (tuned, scales_of(tuned)):
        again, report = sp.quantize(written, sem, mode=mode, calibration=x, scales=scales)
        _assert_same_network(again, tuned)
        assert all(g.drift is not None and g.drift.rounding == rounding for g in report.groups)
    # and the emulator runs both identically (spikes and voltages of every group)
    again, _ = sp.quantize(written, sem, mode=mode, scales=tuned)
    xi = encode_inputs(tuned, x, pad=readout(tuned)[2])
    ra, rb = run(again, xi, record=("spikes", "v")), run(tuned, xi, record=("spikes", "v"))
    for g in tuned.groups:
        for var in ("spikes", "v"):
            np.testing.assert_array_equal(ra[f"{g.name}/{var}"], rb[f"{g.name}/{var}"])


def test_without_scales_the_written_graph_moves_mantissas() -> None:
    """The reason for ``scales=``: a fresh quantization re-chooses the scales (the control case)."""
    graph, sem, x, _, tuned = _tuned("fixed", "nearest")
    again, _ = sp.quantize(finetuned_graph(graph, sem, tuned), sem, mode="fixed", calibration=x)
    assert any(
        not np.array_equal(a.weights, b.weights)
        for a, b in zip(again.connections, tuned.connections, strict=True)
    )


def test_scales_that_do_not_fit_are_refused() -> None:
    graph, sem = two_layer_export()
    x, _ = rate_task(16, T)
    net, _ = sp.quantize(graph, sem, calibration=x)
    sc = scales_of(net)
    with pytest.raises(ValidationError, match=r"QuantScales\.mode: must be the mode quantized now"):
        sp.quantize(graph, sem, mode="shift", scales=net)
    wrong = dataclasses.replace(sc, groups={("9" if k == "1" else k): v for k, v in sc.groups.items()})
    with pytest.raises(ValidationError, match=r"QuantScales\.groups: .*missing \['1'\], unknown \['9'\]"):
        sp.quantize(graph, sem, scales=wrong)
    exps = {k: v for k, v in sc.weight_exps.items() if k != "1->3"}
    with pytest.raises(ValidationError, match=r"QuantScales\.weight_exps: .*missing \['1->3'\]"):
        sp.quantize(graph, sem, scales=dataclasses.replace(sc, weight_exps=exps))
    g1 = dataclasses.replace(sc.groups["1"], scale=sc.groups["1"].scale[:5])
    with pytest.raises(
        ValidationError, match=r"QuantScales\.groups\['1'\]\.scale: must have shape \(16,\) \(got \(5,\)\)"
    ):
        sp.quantize(graph, sem, scales=dataclasses.replace(sc, groups={**sc.groups, "1": g1}))
    with pytest.raises(
        ValidationError, match=r"quantize\.scales: a quantized Network or a QuantScales record"
    ):
        sp.quantize(graph, sem, scales={"1": 2.0})
    with pytest.raises(ValidationError, match=r"quantize\.search: the fixed scales give every exponent"):
        sp.quantize(graph, sem, scales=net, search="weight")
    with pytest.raises(ValidationError, match=r"quantize\.rounding: must be one of"):
        sp.quantize(graph, sem, rounding="up")


def test_cli_rounding_and_scales(tmp_path, capsys) -> None:
    """``spikeport quantize --rounding min_drift`` and ``--scales NET.h5``: the fine-tuned network saved to
    HDF5 gives its scales to the quantization of its written-back graph, which then equals it."""
    from spikeport.cli.main import main
    from spikeport.emulator.io import load_network, save_network
    from spikeport.nir.io import write_nir

    graph, sem, _, _, tuned = _tuned("fixed", "min_drift")
    save_network(tmp_path / "tuned.h5", tuned)
    write_nir(tmp_path / "w.nir", finetuned_graph(graph, sem, tuned), sem)
    out = tmp_path / "again.h5"
    assert (
        main(["quantize", str(tmp_path / "w.nir"), "-o", str(out), "--scales", str(tmp_path / "tuned.h5")])
        == 0
    )
    _assert_same_network(load_network(out), tuned)
    assert "min_drift rounding over 10 steps" in capsys.readouterr().out
    assert (
        main(["quantize", str(tmp_path / "w.nir"), "-o", str(out), "--rounding", "nearest", "--json", "-"])
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert {g["drift"]["rounding"] for g in rep["groups"]} == {"nearest"}
