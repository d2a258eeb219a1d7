"""sp.export of class-based nn.Modules: the chain is traced from forward's call order, never from the
declaration order; what is not a chain of modules is refused naming the module.

The oracle is the user's own forward pass (snnTorch, Norse), stepped over time on an untrained, seeded
model; the exported graph's reference run must equal it spike for spike.
"""

from __future__ import annotations

import numpy as np
import pytest
import spikeport as sp
import torch
from spikeport.emulator.errors import UnsupportedError
from spikeport.reference.run import run_nir
from torch import nn

snn = pytest.importorskip("snntorch")
B, T = 4, 40


class SnnNet(nn.Module):
    """Declared out of call order (lif2 and fc2 first), as users write them."""

    def __init__(self) -> None:
        super().__init__()
        self.lif2 = snn.Leaky(beta=0.8)
        self.fc2 = nn.Linear(30, 10)
        self.fc1 = nn.Linear(20, 30)
        self.lif1 = snn.Leaky(beta=0.9)

    def forward(self, x: torch.Tensor, mems: tuple | None = None) -> torch.Tensor:
        m1, m2 = mems if mems is not None else (self.lif1.init_leaky(), self.lif2.init_leaky())
        s1, m1 = self.lif1(self.fc1(x), m1)
        s2, m2 = self.lif2(self.fc2(s1), m2)
        self.mems = (m1, m2)
        return s2


class LoopNet(SnnNet):
    """The tutorial form: forward loops over the time steps of a (T, B, n) input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        m1, m2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        out = []
        for t in range(x.shape[0]):
            s1, m1 = self.lif1(self.fc1(x[t]), m1)
            s2, m2 = self.lif2(self.fc2(s1), m2)
            out.append(s2)
        return torch.stack(out)


def _model(cls: type) -> nn.Module:
    torch.manual_seed(21)
    net = cls()
    with torch.no_grad():
        net.fc1.weight.mul_(3.0)
        net.fc2.weight.mul_(3.0)
    return net


def _own_run(net: SnnNet, x: torch.Tensor) -> np.ndarray:
    out, mems = [], None
    with torch.no_grad():
        for t in range(T):
            out.append(net(x[:, t], mems).numpy().astype(np.int32))
            mems = net.mems
    return np.stack(out, 1)


@pytest.mark.parametrize("cls", [SnnNet, LoopNet])
def test_class_based_snntorch_model_exports_in_call_order(cls: type) -> None:
    net = _model(cls)
    x = (torch.rand(B, T, 20, generator=torch.Generator().manual_seed(22)) < 0.3).float()
    ref = _own_run(_model(SnnNet), x)  # same weights: same seed, same declaration order
    assert ref.sum() > 0
    graph, sem = sp.export(net, (20,))
    assert sem.convention == "snntorch"
    kinds = [type(graph.nodes[k]).__name__ for k in ("0", "1", "2", "3")]
    assert kinds == ["Affine", "LIF", "Affine", "LIF"]  # call order, not declaration order
    np.testing.assert_array_equal(run_nir(graph, x.numpy(), sem)["3/spikes"], ref)
    if cls is LoopNet:
        with torch.no_grad():
            np.testing.assert_array_equal(net(x.transpose(0, 1)).transpose(0, 1).numpy(), ref)


def test_flattening_view_becomes_flatten() -> None:
    class ConvNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.lif1 = snn.Leaky(beta=0.9, init_hidden=True)
            self.fc = nn.Linear(4 * 6 * 6, 5)
            self.lif2 = snn.Leaky(beta=0.9, init_hidden=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = self.lif1(self.conv(x))
            return self.lif2(self.fc(s.view(s.shape[0], -1)))

    graph, _ = sp.export(ConvNet(), (2, 6, 6))
    kinds = [type(graph.nodes[str(k)]).__name__ for k in range(5)]
    assert kinds == ["Conv2d", "LIF", "Flatten", "Affine", "LIF"]


class _Skip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.lif1 = snn.Leaky(beta=0.9, init_hidden=True)
        self.fc2 = nn.Linear(8, 8)
        self.lif2 = snn.Leaky(beta=0.9, init_hidden=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.lif1(self.fc1(x))
        return self.lif2(self.fc2(s) + x)  # a skip connection


class _Relu(_Skip):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif2(self.fc2(torch.relu(self.lif1(self.fc1(x)))))


class _Shared(_Skip):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif2(self.fc1(self.lif1(self.fc1(x))))


class _WrongOutput(_Skip):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.lif2(self.fc2(self.lif1(self.fc1(x))))
        return self.fc1(x)


@pytest.mark.parametrize(
    ("cls", "match"),
    [
        (_Skip, r"_Skip\.lif2: its input is not the output of fc2"),
        (_Relu, r"_Relu\.fc2: its input is not the output of lif1"),
        (_Shared, r"_Shared\.fc1: called 2 times in one step"),
        (_WrongOutput, r"_WrongOutput\.fc1: called 2 times|_WrongOutput\.forward: returns something other"),
    ],
)
def test_what_is_not_a_chain_is_refused_naming_the_module(cls: type, match: str) -> None:
    with pytest.raises(UnsupportedError, match=match):
        sp.export(cls(), (8,))


def test_norse_class_based_model() -> None:
    norse = pytest.importorskip("norse.torch")

    class NorseNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = norse.LIFBoxCell()
            self.fc = nn.Linear(6, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z, _ = self.cell(self.fc(x))
            return z

    graph, sem = sp.export(NorseNet(), (6,))
    assert sem.convention == "norse"
    assert [type(graph.nodes[k]).__name__ for k in ("0", "1")] == ["Affine", "LIF"]


def test_class_based_recurrent_cell() -> None:
    class RNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rlif = snn.RLeaky(beta=0.9, linear_features=12)
            self.fc = nn.Linear(6, 12)

        def forward(self, x: torch.Tensor, state: tuple | None = None) -> torch.Tensor:
            spk, mem = state if state is not None else self.rlif.init_rleaky()
            spk, mem = self.rlif(self.fc(x), spk, mem)
            self.state = (spk, mem)
            return spk

    torch.manual_seed(23)
    net = RNet()
    with torch.no_grad():
        net.fc.weight.mul_(3.0)
    x = (torch.rand(B, T, 6, generator=torch.Generator().manual_seed(24)) < 0.4).float()
    out, state = [], None
    with torch.no_grad():
        for t in range(T):
            out.append(net(x[:, t], state).numpy().astype(np.int32))
            state = net.state
    ref = np.stack(out, 1)
    assert ref.sum() > 0
    graph, sem = sp.export(net, (6,))
    result = run_nir(graph, x.numpy(), sem)
    np.testing.assert_array_equal(result["1.lif/spikes"], ref)
