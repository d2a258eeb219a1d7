"""lava-nc 0.10.0 on Python 3.11 through spikeport's import shim, and a real fixed_pt run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from spikeport import doctor
from spikeport.emulator.errors import MissingDependencyError
from spikeport.lava import compat as lava_compat


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_plain_import_fails_on_311_so_the_shim_is_needed() -> None:
    proc = _python("import lava.proc.dense.process")
    assert proc.returncode != 0
    assert "mutable default" in proc.stderr and "ByteEncoder" in proc.stderr


def test_shim_imports_lava_after_the_program_chose_another_start_method() -> None:
    proc = _python(
        """
        import multiprocessing as mp
        mp.set_start_method("spawn")
        from spikeport.lava.compat import import_lava
        dense = import_lava("lava.proc.dense.process")
        from lava.magma.compiler import var_model
        assert var_model.ByteEncoder is not None
        print("ok", dense.Dense.__name__, mp.get_start_method())
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["ok", "Dense"]


def test_missing_lava_gives_install_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lava_compat, "lava_available", lambda: False)
    with pytest.raises(MissingDependencyError, match=r"--no-deps --ignore-requires-python lava-nc==0\.10\.0"):
        lava_compat.import_lava("lava.proc.lif.process")
    with pytest.raises(ImportError):  # also catchable as the standard ImportError
        lava_compat.import_lava()


def test_oracle_bias_only_period() -> None:
    # bias 100 per step, vth 100 -> threshold 6400: v = 100 t, spikes when 100 t > 6400, i.e. every 65 steps
    out = doctor._reference_lif(np.zeros((200, 1), np.int64), du=0, dv=0, vth=100, bias=100)
    np.testing.assert_array_equal(np.flatnonzero(out["s"][:, 0]), [64, 129, 194])


@pytest.mark.lava
def test_real_lava_dense_lif_fixed_pt_matches_integer_oracle() -> None:
    check = doctor.lava_smoke_check(steps=30, seed=3)
    assert check.mismatches == {"u": 0, "v": 0, "s": 0}
    assert 0 < check.spikes < 30 * 4
