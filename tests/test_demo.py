"""The demo pipeline end to end, small: every stage runs and the report folder is complete."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from spikeport.cli import main as cli
from spikeport.demo.pipeline import CPU_PINS, DemoConfig, load_data, predict
from spikeport.emulator.errors import ValidationError


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match=r"DemoConfig\.steps: must be >= 1 \(got 0\)"):
        DemoConfig(steps=0)
    with pytest.raises(ValidationError, match=r"DemoConfig\.lava_samples: must be >= 0"):
        DemoConfig(lava_samples=-1)


def test_data_is_seeded_spikes() -> None:
    a, b = load_data(4, seed=1), load_data(4, seed=1)
    assert a.x_train.shape[1:] == (4, 64) and set(map(float, a.x_train.ravel()[:5000])) <= {0.0, 1.0}
    assert (a.x_test == b.x_test).all() and (a.y_test == b.y_test).all()
    assert len(a.y_test) == 360


def test_predict_breaks_ties_to_lowest_index() -> None:
    import numpy as np

    assert predict(np.array([[0, 3, 3, 1], [5, 0, 0, 5]])).tolist() == [1, 0]


@pytest.mark.slow
@pytest.mark.lava
def test_demo_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accuracy bounds hold over a seed sweep of this config (issue 11: a CPU acts like a new seed).

    Seeds 0-9 with the demo's pinned CPU paths and 0-7 with native AVX-512 paths: float 75.6% ..
    88.3% (bound > 50%), fixed - float -1.1 .. +1.9 pp before the fine-tuning fixes of issue 16 and 14,
    +1.7 .. +5.3 pp after (an AMD EPYC; bound: at most 5 pp lost). In a pytest session the
    paths are whatever the session's first torch kernel fixed, so either kind can run here.
    """
    for name, value in CPU_PINS.items():  # run_demo sets these where unset; undone after the test
        monkeypatch.setenv(name, os.environ.get(name, value))
    out = tmp_path / "report"
    code = cli.main(
        ["demo", "-o", str(out), "--epochs", "3", "--hidden", "24", "--steps", "10", "--lava-samples", "2"]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert "bit-exact vs emulator on 2 samples" in text and "MISMATCH" not in text
    summary = json.loads((out / "summary.json").read_text())
    acc = summary["accuracy"]
    assert set(acc) == {"float", "fixed", "shift"}
    assert acc["float"] > 0.5  # well above chance (0.1) after 3 epochs
    # fine-tuning on the integer model trains further than the 3 float epochs, so the quantized
    # networks may end above float; what must hold is that quantization loses at most 5 points
    assert acc["fixed"] >= acc["float"] - 0.05 and acc["shift"] >= acc["float"] - 0.05
    assert summary["lava"]["fixed"]["bit_exact"] and summary["lava"]["shift"]["bit_exact"]
    for name in ("model.nir", "net_fixed.h5", "net_shift.h5", "index.html", "energy.txt", "membrane.png"):
        assert (out / name).is_file(), name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "loihi1" in (out / "energy.txt").read_text()
