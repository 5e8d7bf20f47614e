"""The generic Trainer: training, validation, atomic checkpoints (weights_only), best checkpoint, resume."""
import pytest
import torch

from edgevid.errors import CheckpointError, ConfigError
from edgevid.models.liteeval import LiteEvalHead
from edgevid.train.liteeval import liteeval_evaluate, liteeval_loss_fn
from edgevid.train.loop import TensorBatches, Trainer, seed_everything


def regression_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1
    return x, y


def mse(model, batch, step):
    x, y = batch
    err = model(x).squeeze(1) - y
    return (err ** 2).mean(), {"mae": err.abs().mean()}


def adam(lr):
    return lambda m: torch.optim.Adam(m.parameters(), lr=lr)


def test_trainer_learns_and_writes_checkpoints(tmp_path, capsys):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    events = []
    trainer = Trainer(model, adam(0.05), mse, regression_data(), val_data=regression_data(32, seed=1), epochs=5,
                      batch_size=16, checkpoint=tmp_path / "ck.pt", config={"what": "regression"},
                      extra={"labels": ["x"]}, callback=events.append)
    res = trainer.fit()
    assert res.epochs == 5 and res.global_step == 5 * 4
    assert res.history[-1]["val"]["loss"] < res.history[0]["val"]["loss"] / 2
    assert res.best_epoch == 5 and res.best_metric == res.history[-1]["val"]["loss"]
    assert res.checkpoint == tmp_path / "ck.pt" and res.best_checkpoint == tmp_path / "ck.best.pt"
    ck = torch.load(str(tmp_path / "ck.pt"), weights_only=True)
    assert ck["epoch"] == 5 and ck["global_step"] == 20 and ck["config"] == {"what": "regression"}
    assert ck["labels"] == ["x"] and torch.equal(ck["model"]["weight"], model.weight)
    assert set(ck["rng"]) >= {"torch", "numpy", "python"}
    assert "state" in ck["optimizer"] and len(ck["history"]) == 5
    best = torch.load(str(tmp_path / "ck.best.pt"), weights_only=True)
    assert best["epoch"] == 5
    assert [e["event"] for e in events].count("epoch") == 5 and [e["event"] for e in events].count("step") == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.best.pt", "ck.pt"]   # no temp files left
    assert capsys.readouterr().out == ""                                            # the library never prints


def test_best_checkpoint_keeps_the_best_epoch(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    scores = iter([0.5, 0.9, 0.7])
    trainer = Trainer(model, adam(0.01), mse, regression_data(), val_data=[None], epochs=3, batch_size=None,
                      evaluate=lambda m, b: {"accuracy": next(scores)}, monitor="accuracy",
                      checkpoint=tmp_path / "ck.pt")
    trainer.train_data = TensorBatches(regression_data(), 16)
    res = trainer.fit()
    assert (res.best_epoch, res.best_metric) == (2, 0.9)
    assert torch.load(str(tmp_path / "ck.best.pt"), weights_only=True)["epoch"] == 2
    assert torch.load(str(tmp_path / "ck.pt"), weights_only=True)["epoch"] == 3


def test_fresh_run_drops_a_stale_best_checkpoint(tmp_path):
    (tmp_path / "ck.best.pt").write_bytes(b"old run")
    res = Trainer(torch.nn.Linear(4, 1), adam(0.01), mse, regression_data(), epochs=1, batch_size=16,
                  checkpoint=tmp_path / "ck.pt").fit()
    assert res.best_checkpoint is None and not (tmp_path / "ck.best.pt").exists()


def test_progress_bar_goes_to_stderr_only(tmp_path, capsys):
    model = torch.nn.Linear(4, 1)
    Trainer(model, adam(0.01), mse, regression_data(), epochs=1, batch_size=16, progress=True).fit()
    out = capsys.readouterr()
    assert out.out == ""


def _liteeval_setup(tiny_config, init_seed):
    torch.manual_seed(init_seed)
    head = LiteEvalHead(tiny_config(num_classes=3))
    g = torch.Generator().manual_seed(0)
    data = (torch.randn(20, 5, 1280, generator=g), torch.randn(20, 5, 512, generator=g),
            torch.randint(0, 3, (20,), generator=g), torch.ones(20, 5))
    data[3][::3, 3:] = 0   # some padded videos
    return head, data


def _liteeval_trainer(head, data, epochs, path):
    return Trainer(head, lambda m: torch.optim.Adam(m.parameters(), lr=3e-3, weight_decay=1e-4),
                   liteeval_loss_fn(0.1, 2.0), data, val_data=data, evaluate=liteeval_evaluate(0.1, 2.0),
                   epochs=epochs, batch_size=6, drop_last=True, monitor="accuracy", checkpoint=path, seed=7)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, tiny_config):
    """Gumbel noise (torch RNG), per-epoch shuffling, Adam moments and the step count (τ) all survive a resume."""
    seed_everything(123)
    head, data = _liteeval_setup(tiny_config, 0)
    full = _liteeval_trainer(head, data, 4, tmp_path / "full.pt").fit()

    seed_everything(123)
    head_a, _ = _liteeval_setup(tiny_config, 0)
    _liteeval_trainer(head_a, data, 2, tmp_path / "part.pt").fit()
    torch.rand(1000)   # disturb the global RNG between the runs: resume must restore it
    seed_everything(999)
    head_b, _ = _liteeval_setup(tiny_config, 1)   # a fresh, differently initialised model
    resumed = _liteeval_trainer(head_b, data, 4, tmp_path / "part.pt").fit(resume=tmp_path / "part.pt")

    assert resumed.global_step == full.global_step == 4 * 3
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    ref = head.state_dict()
    for k, v in head_b.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert resumed.history[-1]["val"] == full.history[-1]["val"]
    assert resumed.best_metric == full.best_metric and resumed.best_epoch == full.best_epoch
    assert torch.load(str(tmp_path / "part.pt"), weights_only=True)["epoch"] == 4


def test_resume_at_the_last_epoch_trains_nothing(tmp_path):
    model = torch.nn.Linear(4, 1)
    Trainer(model, adam(0.01), mse, regression_data(), epochs=2, batch_size=16, checkpoint=tmp_path / "c.pt").fit()
    w = model.weight.detach().clone()
    res = Trainer(model, adam(0.01), mse, regression_data(), epochs=2, batch_size=16,
                  checkpoint=tmp_path / "c.pt").fit(resume=tmp_path / "c.pt")
    assert res.epochs == 2 and torch.equal(model.weight, w)


def test_resume_errors(tmp_path):
    model = torch.nn.Linear(4, 1)
    make = lambda m: Trainer(m, adam(0.01), mse, regression_data(), epochs=2, batch_size=16)  # noqa: E731
    with pytest.raises(CheckpointError, match="does not exist"):
        make(model).fit(resume=tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="cannot read"):
        make(model).fit(resume=tmp_path / "junk.pt")
    torch.save({"weight": torch.zeros(1, 4)}, str(tmp_path / "plain.pt"))
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        make(model).fit(resume=tmp_path / "plain.pt")
    # a checkpoint of another model: keys and shapes are listed
    other = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 1))
    Trainer(other, adam(0.01), lambda m, b, s: (m(b[0]).mean(), {}), regression_data(), epochs=1, batch_size=16,
            checkpoint=tmp_path / "other.pt").fit()
    with pytest.raises(CheckpointError, match=r"another model.*missing keys bias, weight.*unexpected keys 0\.bias"):
        make(model).fit(resume=tmp_path / "other.pt")
    wide = torch.nn.Linear(4, 2)
    with pytest.raises(CheckpointError, match=r"shape mismatches bias \(1,\) vs \(2,\), weight \(1, 4\) vs \(2, 4\)"):
        make(wide).fit(resume=Trainer(model, adam(0.01), mse, regression_data(), epochs=1, batch_size=16,
                                      checkpoint=tmp_path / "one.pt").save(tmp_path / "one.pt"))


def test_checkpoint_refuses_pickled_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "edgevid.train/1", "model": {}, "optimizer": Evil(), "epoch": 1, "global_step": 1},
               str(tmp_path / "evil.pt"))
    with pytest.raises(CheckpointError, match="cannot read"):
        Trainer(torch.nn.Linear(4, 1), adam(0.01), mse, regression_data(), epochs=2,
                batch_size=16).fit(resume=tmp_path / "evil.pt")


def test_non_finite_loss_and_bad_settings():
    model = torch.nn.Linear(4, 1)
    with pytest.raises(ConfigError, match="not finite|nan"):
        Trainer(model, adam(0.01), lambda m, b, s: (m(b[0]).mean() * float("nan"), {}), regression_data(),
                epochs=1, batch_size=16).fit()
    with pytest.raises(ConfigError):
        Trainer(model, adam(0.01), mse, regression_data(), epochs=0, batch_size=16)
    with pytest.raises(ConfigError, match="no training batches"):
        Trainer(model, adam(0.01), mse, regression_data(8), epochs=1, batch_size=16, drop_last=True).fit()
    with pytest.raises(ConfigError, match="different lengths"):
        TensorBatches((torch.zeros(3), torch.zeros(4)), 2)


def test_tensor_batches_shuffle_per_epoch_and_reproducibly():
    x = torch.arange(10)
    b = TensorBatches((x,), 4, seed=3)
    b.set_epoch(1)
    e1 = torch.cat([t[0] for t in b])
    b.set_epoch(2)
    e2 = torch.cat([t[0] for t in b])
    b.set_epoch(1)
    assert torch.equal(torch.cat([t[0] for t in b]), e1)
    assert not torch.equal(e1, e2) and sorted(e1.tolist()) == list(range(10))
    assert len(b) == 3 and len(TensorBatches((x,), 4, drop_last=True)) == 2


def test_metrics_are_formatted_for_people():
    from edgevid.train.loop import format_metric, format_metrics

    assert format_metric("accuracy", torch.tensor(0.1)) == "10.0%"  # not 0.10000000149011612
    assert format_metric("accuracy", 0.10000000149011612) == "10.0%"
    assert format_metric("fine_rate", 0.42708) == "42.7%"
    assert format_metric("loss", 2.41138) == "2.411" and format_metric("ce", 0.000123456) == "0.0001235"
    assert format_metric("accuracy", None) == "n/a"
    assert format_metrics({"loss": 2.5031, "accuracy": 0.2}) == "loss 2.503, accuracy 20.0%"


def test_epoch_log_line_shows_percentages(caplog):
    import logging

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    trainer = Trainer(model, adam(0.01), mse, regression_data(), val_data=[None], epochs=1, batch_size=None,
                      evaluate=lambda m, b: {"accuracy": float(torch.tensor(0.1)), "loss": 1.23456789},
                      monitor="accuracy")
    trainer.train_data = TensorBatches(regression_data(), 16)
    with caplog.at_level(logging.INFO, logger="edgevid"):
        trainer.fit()
    line = next(r.getMessage() for r in caplog.records if "epoch 1/1" in r.getMessage())
    assert "val accuracy 10.0%, loss 1.235" in line, line
    assert "0.1000000" not in line
