"""Shared test set-up.

``tests`` is not a package and pytest runs with ``--import-mode=importlib``: this folder is put on
``sys.path`` so that test modules import their helper modules by name (``import engine_reference``, the
independent integer reference engine). ``one_torch_thread``: torch on one thread for the test (training
verdicts then do not depend on how many threads sum a gradient)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
