"""spikeport's NeuroBench view against neurobench 2.3.0's own ``SynapticOperations`` on a torch model.

The model is the 100 -> 64 -> 10 snnTorch Leaky net (beta 0.9, threshold 1, subtract reset) of
docs/synops-energy.md, "Reference network", fed Bernoulli(0.1) spikes for 100 steps.
Its spikes are recorded and counted by spikeport on a Network holding the same (float) weights;
both counts must be equal.
"""

from __future__ import annotations

import numpy as np
import pytest
from spikeport.emulator import Connection, InputGroup, LIFGroup, Network
from spikeport.emulator.energy.neurobench import neurobench_ops

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
pytest.importorskip("neurobench")


class Net(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(100, 64)
        self.lif1 = snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism="subtract", init_hidden=True)
        self.fc2 = torch.nn.Linear(64, 10)
        self.lif2 = snn.Leaky(
            beta=0.9, threshold=1.0, reset_mechanism="subtract", init_hidden=True, output=True
        )
        self.hidden: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s1 = self.lif1(self.fc1(x))
        self.hidden.append(s1.detach().clone())
        return self.lif2(self.fc2(s1))


def float_lif(name: str, n: int) -> LIFGroup:
    return LIFGroup(name=name, n=n, du=4095, dv=0, vth=1, bias_mant=0, bias_exp=0, u0=0, v0=0)


def test_effective_acs_equal_neurobench_synaptic_operations() -> None:
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import SNNTorchModel

    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():  # make the hidden layer active enough for a meaningful count
        net.fc1.weight.mul_(4.0)
    data = (torch.rand(8, 100, 100) < 0.1).float()  # (batch, time, features)
    model = SNNTorchModel(net)
    model.register_hooks()
    with torch.no_grad():
        preds = model(data)
    theirs = SynapticOperations()(model, preds, (data, torch.zeros(8)))
    model.cleanup_hooks()

    hidden = torch.stack(net.hidden, dim=1).numpy()  # (B, T, 64)
    w1 = net.fc1.weight.detach().numpy().astype(np.float64)
    w2 = net.fc2.weight.detach().numpy().astype(np.float64)
    spk = Network(
        inputs=(InputGroup(name="in", n=100),),
        groups=(float_lif("h", 64), float_lif("o", 10)),
        connections=(
            Connection(name="fc1", source="in", target="h", weights=w1),
            Connection(name="fc2", source="h", target="o", weights=w2),
        ),
    )
    ours = neurobench_ops(
        spk, {"in": data.numpy(), "h": hidden, "o": np.zeros((8, 100, 10))}, per_sample=False
    )
    assert hidden.sum() > 1000  # the hidden layer spikes: the fc2 term is not vacuous
    assert ours.per_sample() == {k: float(v) for k, v in theirs.items()}
    assert theirs["Dense"] == 704_000.0  # 100 steps * (100*64 + 64*10)
    # and the hardware-event count: in_spikes*64 + hidden_spikes*10 (all weights nonzero)
    expected = (data.numpy().sum() * 64 + hidden.sum() * 10) / 8
    assert theirs["Effective_ACs"] == expected
