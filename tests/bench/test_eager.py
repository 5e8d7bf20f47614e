"""PyTorch eager as the reference in ``edgevid bench --checkpoint``: the checkpoint's export wrappers timed on the
graphs' own feeds, after the graphs, with each graph's speed-up over eager."""
from __future__ import annotations

from collections import OrderedDict

import pytest

from edgevid.bench import graphs
from edgevid.errors import ConfigError

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


class Counted(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.linear(x)


class Role:
    def __init__(self, module, **inputs):
        self.module, self.example_inputs = module, OrderedDict(inputs)


def test_eager_times_the_runs_after_an_untimed_warm_up_on_the_given_feeds():
    from edgevid.bench.eager import time_eager

    import numpy as np

    module = Counted()
    feeds = [{"x": np.full((1, 4), i, np.float32)} for i in range(3)]
    result = time_eager("r", Role(module, x=torch.zeros(1, 4)), feeds, runs=7, warmup=2)
    assert module.calls == 9 and result["latency_ms"]["n"] == 7
    assert result["backend"] == "torch" and result["precision"] == "fp32" and result["latency_ms"]["min"] > 0
    with pytest.raises(ConfigError, match="takes \\['y'\\]"):
        time_eager("r", Role(module, y=torch.zeros(1, 4)), feeds, runs=1, warmup=0)


@pytest.fixture(scope="module")
def prernn(tmp_path_factory):
    from edgevid.export.prernn import export_prernn
    from edgevid.models.prernn import PreRNNConfig, create_prernn

    torch.manual_seed(0)
    config = PreRNNConfig(num_classes=3, arch="small_vgg", layer="fc6", cell="lstm", form="sih", image_size=32,
                          labels=["a", "b", "c"])
    model = create_prernn(config).eval()
    return model, export_prernn(model, tmp_path_factory.mktemp("prernn") / "b", config=config)


def test_every_role_gets_an_eager_row_and_the_graphs_their_speed_up_over_it(prernn):
    from edgevid.commands.checkpoints import role_graphs

    model, bundle = prernn
    section = graphs.measure_graphs(bundle, backend="ort", runs=5, warmup=1)
    assert "not_measured" in section["torch"]
    graphs.add_eager(section, bundle, role_graphs(model, bundle))
    eager = {r["role"]: r for r in section["results"] if r["backend"] == "torch"}
    assert set(eager) == {"backbone", "step"} and section["torch"]["roles"] == ["backbone", "step"]
    for r in section["results"]:
        if r["backend"] == "ort":
            assert r["vs_torch"] == pytest.approx(eager[r["role"]]["latency_ms"]["mean"] / r["latency_ms"]["mean"])
    assert all(r["latency_ms"]["n"] == 5 and r["gflops"] for r in eager.values())
