"""The README's Python quickstart runs as written (it asserts Lava == emulator itself)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.lava
def test_python_quickstart_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README has no python block"
    script = tmp_path / "quickstart.py"
    script.write_text(blocks[0])
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "quantized (fixed" in proc.stdout and "loihi1" in proc.stdout
    assert (tmp_path / "model.nir").is_file()


def test_readme_names_the_two_setup_commands_and_ci_calls_the_test_one() -> None:
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()


#: README sections whose python block runs after this set-up (the names the block says it takes)
SECTION_SETUP = {
    "Multiplication-free parallel spiking neurons (PSN)": (
        "torch.manual_seed(0)\n"
        "from spikeport.quantize.training.psn_net import SeqNet\n"
        'model = SeqNet(12, 16, 4, neuron="chw_psn", k=3, dilations=(1, 2)).eval()\n'
        "x = (np.random.default_rng(0).random((2, 10, 12)) < 0.4).astype(np.int64)\n"
    ),
    "Sigma-delta quantizer": "r = torch.rand(2, 20, 8)\n",
    "Hybrid spiking LMU": "x = np.random.default_rng(1).integers(0, 256, (4, 5, 5))\n",
    "Training for the chip: conversion, fine-tuning on the integer model, sparse gradients": (
        "from torch import nn\n"
        "torch.manual_seed(0)\n"
        "rng = np.random.default_rng(0)\n"
        "x_cal = rng.random((64, 64)).astype(np.float32)\n"
        "model = sp.SNN(nn.Linear(64, 32), sp.LIF(32, beta=0.9), nn.Linear(32, 10), sp.LIF(10, beta=0.9))\n"
        "spikes = (rng.random((128, 16, 64)) < 0.2).astype(np.float32)\n"
        "labels = rng.integers(0, 10, 128)\n"
    ),
}


def _section_block(text: str, heading: str) -> str:
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, heading
    return blocks[0]


def test_section_examples_run(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    script = "import numpy as np\nimport torch\nimport spikeport as sp\n"
    for heading, setup in SECTION_SETUP.items():
        script += f"\n# {heading}\n{setup}{_section_block(text, heading)}"
    (tmp_path / "sections.py").write_text(script)
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "sections.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
