"""Tests for stlit.train: the shared fit loop (determinism, resume, early stopping, NaN, hooks) and a real-data run."""
import functools

import numpy as np
import pandas as pd
import pytest
import torch

from stlit.core import InputError, seed_everything
from stlit.train import EarlyStopping, NonFiniteLossError, fit, load_checkpoint, save_checkpoint, to_device


class Regressor(torch.nn.Module):
    "Tiny MLP with dropout, so that the RNG matters."
    def __init__(self, d_in=6, d_out=2, p=0.3):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(d_in, 16), torch.nn.ReLU(), torch.nn.Dropout(p),
                                       torch.nn.Linear(16, d_out))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):  # tests/conftest.py
    "One intra-op thread: on a shared 2-core machine, OpenMP spin-waiting made 2 threads ~30x slower for these tiny models."
    yield


def _data(n=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = torch.stack([x[:, 0] * 2 - x[:, 1], torch.sin(x[:, 2])], 1)
    return x, y


def _loader(seed, x, y, batch_size=32):
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                                       generator=torch.Generator().manual_seed(seed))


def _mse_batch(model, batch):
    xb, yb = batch
    return {"loss": torch.nn.functional.mse_loss(model(xb), yb), "mae": (model(xb) - yb).abs().mean()}


def _run_minibatch(seed, n_epochs=8, **kwargs):
    x, y = _data()
    seed_everything(seed)
    return fit(Regressor(), _mse_batch, n_epochs, loader=_loader(seed, x, y), lr=0.01, device="cpu", seed=seed,
               verbose=False, **kwargs)


def test_minibatch_same_seed_same_history():
    a, b, c = _run_minibatch(5), _run_minibatch(5), _run_minibatch(6)
    cols = ["loss", "mae"]
    assert a.history[cols].equals(b.history[cols])
    assert not a.history[cols].equals(c.history[cols])
    assert a.history["loss"].iloc[-1] < a.history["loss"].iloc[0]
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])


def test_full_batch_step_receives_epochs_and_after_step_runs():
    x, y = _data()
    epochs, hooks = [], []
    ema = Regressor()

    def step(model, epoch):
        epochs.append(epoch)
        return torch.nn.functional.mse_loss(model(x), y)

    def update_ema(model, epoch):  # e.g. a momentum encoder of a contrastive method
        hooks.append(epoch)
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.mul_(0.9).add_(0.1 * p)

    fit(Regressor(), step, 5, after_step=update_ema, device="cpu", verbose=False)
    assert epochs == hooks == [0, 1, 2, 3, 4]


def test_resume_minibatch_with_scheduler_matches_uninterrupted(tmp_path):
    sched = lambda opt: torch.optim.lr_scheduler.StepLR(opt, 3, gamma=0.5)
    full = _run_minibatch(2, n_epochs=8, scheduler=sched)
    _run_minibatch(2, n_epochs=4, scheduler=sched, checkpoint_path=tmp_path / "c.pt")
    x, y = _data()
    seed_everything(99)
    # the loader's generator state is not in the checkpoint: rebuild it in the state it had after 4 epochs
    loader = _loader(2, x, y)
    for _ in range(4):
        for _ in loader:
            pass
    resumed = fit(Regressor(), _mse_batch, 8, loader=loader, lr=0.01, device="cpu", seed=2, verbose=False,
                  scheduler=sched, resume_from=tmp_path / "c.pt")
    np.testing.assert_allclose(resumed.history[["loss", "mae", "lr"]], full.history[["loss", "mae", "lr"]],
                               rtol=1e-6)
    assert list(resumed.history["epoch"]) == list(range(8))


def test_checkpoint_every_and_weights_only(tmp_path):
    res = _run_minibatch(0, n_epochs=6, checkpoint_path=tmp_path / "m.pt", checkpoint_every=2,
                         config={"hidden": 16, "dims": (6, 2)})
    ck = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ck["epoch"] == 5 and len(ck["history"]) == 6 and ck["config"] == {"hidden": 16, "dims": [6, 2]}
    model = Regressor()
    opt = torch.optim.Adam(model.parameters())
    payload = load_checkpoint(tmp_path / "m.pt", model, opt)
    for k, v in res.model.state_dict().items():
        assert torch.equal(v, model.state_dict()[k])
    assert payload["history"][-1]["loss"] == pytest.approx(res.history["loss"].iloc[-1])
    with pytest.raises(InputError, match="optimiser"):
        bare = save_checkpoint(tmp_path / "bare.pt", model)
        load_checkpoint(bare, Regressor(), torch.optim.Adam(Regressor().parameters()))


def test_eval_runs_without_grad_in_eval_mode_and_restores_train_mode():
    x, y = _data()
    seen = []

    def eval_fn(model):
        seen.append((model.training, torch.is_grad_enabled()))
        out1, out2 = model(x), model(x)
        return {"deterministic": float(torch.equal(out1, out2)), "mse": torch.nn.functional.mse_loss(out1, y)}

    res = fit(Regressor(), lambda m, e: torch.nn.functional.mse_loss(m(x), y), 6, eval_fn=eval_fn, eval_every=4,
              device="cpu", verbose=False)
    assert seen == [(False, False)] * 2  # epochs 3 and 5 (the last)
    assert res.history["deterministic"].dropna().tolist() == [1.0, 1.0]  # dropout is off during evaluation
    assert res.history.attrs["eval_keys"] == ["deterministic", "mse"]
    assert res.model.training

    def broken(model):
        raise RuntimeError("boom")

    model = Regressor()
    with pytest.raises(RuntimeError, match="boom"):
        fit(model, lambda m, e: torch.nn.functional.mse_loss(m(x), y), 2, eval_fn=broken, device="cpu", verbose=False)
    assert model.training, "model.train() is restored even when eval_fn fails"


def test_early_stopping_on_metric_restores_best():
    x, y = _data()
    scores = iter([0.1, 0.5, 0.4, 0.45, 0.3, 0.2, 0.9])
    res = fit(Regressor(), lambda m, e: torch.nn.functional.mse_loss(m(x), y), 50, device="cpu", verbose=False,
              eval_fn=lambda m: {"score": next(scores)},
              early_stopping=EarlyStopping(patience=3, monitor="score", mode="max"))
    assert res.stopped_early and len(res.history) == 5 and res.best_epoch == 1 and res.best_value == 0.5
    for k, v in res.best_state.items():
        assert torch.equal(v, res.model.state_dict()[k])


def test_checkpoint_after_early_stop_keeps_last_state_and_best(tmp_path):
    x, y = _data()
    step = lambda m, e: torch.nn.functional.mse_loss(m(x), y)
    res = fit(Regressor(), step, 30, device="cpu", verbose=False, checkpoint_path=tmp_path / "es.pt",
              eval_fn=lambda m: {"score": 1.0}, early_stopping=EarlyStopping(patience=2, monitor="score", mode="max"))
    ck = load_checkpoint(tmp_path / "es.pt")
    assert ck["epoch"] == len(res.history) - 1 == 2
    assert ck["extra"]["best"]["epoch"] == res.best_epoch == 0
    assert ck["extra"]["eval_keys"] == ["score"]
    for k, v in ck["extra"]["best"]["state"].items():
        assert torch.equal(v, res.model.state_dict()[k])  # restore_best loaded epoch 0's weights
    assert any(not torch.equal(v, ck["model"][k]) for k, v in res.model.state_dict().items())  # last != best


def test_nan_in_minibatch_names_epoch_batch_and_part():
    x, y = _data()
    calls = {"n": 0}

    def step(model, batch):
        calls["n"] += 1
        loss = torch.nn.functional.mse_loss(model(batch[0]), batch[1])
        bad = loss * float("nan") if calls["n"] == 7 else loss
        return {"loss": loss, "aux": bad}

    with pytest.raises(NonFiniteLossError, match="'aux' is nan at epoch 1, batch 2"):
        fit(Regressor(), step, 3, loader=_loader(0, x, y), device="cpu", verbose=False)


def test_grad_clip_limits_the_update():
    model = torch.nn.Linear(3, 1, bias=False)
    before = model.weight.detach().clone()
    step = lambda m, e: 1e6 * m(torch.ones(1, 3)).sum()
    fit(model, step, 1, optimizer=functools.partial(torch.optim.SGD, lr=1.0), grad_clip=0.5, device="cpu",
        verbose=False)
    assert torch.linalg.norm(model.weight.detach() - before) == pytest.approx(0.5, rel=1e-5)


def test_optimizer_instance_and_plateau_scheduler():
    x, y = _data()
    model = Regressor()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    res = fit(model, lambda m, e: torch.tensor(1.0, requires_grad=True) + 0 * m(x).sum(), 6, optimizer=opt,
              scheduler=lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=1, factor=0.5),
              device="cpu", verbose=False)
    assert res.history["lr"].iloc[-1] < 0.1  # a flat loss triggers the plateau scheduler
    assert opt.param_groups[0]["lr"] < 0.1  # the instance passed in is the one used


def test_verbose_progress_bar(capsys):
    x, y = _data()
    res = fit(Regressor(), lambda m, e: torch.nn.functional.mse_loss(m(x), y), 3, device="cpu", verbose=True,
              desc="toy")
    err = capsys.readouterr().err
    assert "toy" in err and "loss=" in err
    assert len(res.history) == 3


def test_to_device_recurses():
    from torch_geometric.data import Data
    batch = {"graph": Data(x=torch.ones(3, 2), edge_index=torch.zeros(2, 1, dtype=torch.long)),
             "pair": [torch.ones(1), np.ones(2)], "name": "a"}
    moved = to_device(batch, "cpu")
    assert moved["graph"].x.device.type == "cpu" and isinstance(moved["pair"][1], np.ndarray)


def test_bad_input():
    x, y = _data()  # CPU tensors: the fits below run on the CPU (on a GPU machine the default device is cuda)
    step = lambda m, e: torch.nn.functional.mse_loss(m(x), y)
    with pytest.raises(InputError, match="eval_every"):
        fit(Regressor(), step, 2, eval_every=0, verbose=False, device="cpu")
    with pytest.raises(InputError, match="grad_clip"):
        fit(Regressor(), step, 2, grad_clip=-1, verbose=False, device="cpu")
    with pytest.raises(KeyError, match="neither a loss part"):
        fit(Regressor(), step, 2, verbose=False, device="cpu", eval_fn=lambda m: {"ari": 0.1},
            early_stopping=EarlyStopping(monitor="nmi"))
    with pytest.raises(InputError, match="clash"):
        fit(Regressor(), step, 2, verbose=False, device="cpu", eval_fn=lambda m: {"loss": 0.1})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fit(Regressor(), step, 2, verbose=False, device="cpu", resume_from="/nonexistent/ckpt.pt")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_runs_and_moves_batches():
    x, y = _data()
    out = fit(Regressor(), _mse_batch, 3, loader=_loader(0, x, y), device="cuda", verbose=False)
    assert out.device.type == "cuda" and next(out.model.parameters()).is_cuda
    assert out.history["loss"].iloc[-1] < out.history["loss"].iloc[0]


@pytest.mark.realdata
def test_graph_autoencoder_on_seqfish(data_root):
    "Full-batch GCN autoencoder on the real seqFISH cortex (1,597 cells × 125 genes, 5-NN graph)."
    folder = data_root / "deeplinc_seqfish"
    if not folder.exists():
        pytest.skip("deeplinc_seqfish not present")
    from sklearn.neighbors import kneighbors_graph
    from torch_geometric.nn import GCNConv
    counts = pd.read_csv(folder / "counts.csv")
    coords = pd.read_csv(folder / "coord.csv")
    X = torch.tensor(counts.select_dtypes("number").to_numpy(), dtype=torch.float32)
    A = kneighbors_graph(coords[["X", "Y"]].to_numpy(), 5).tocoo()
    edge_index = torch.tensor(np.vstack([A.row, A.col]), dtype=torch.long)

    class GAE(torch.nn.Module):
        def __init__(self, d):
            super().__init__()
            self.enc1, self.enc2, self.dec = GCNConv(d, 32), GCNConv(32, 16), torch.nn.Linear(16, d)

        def forward(self, x, ei):
            z = self.enc2(torch.relu(self.enc1(torch.nn.functional.dropout(x, 0.2, self.training), ei)), ei)
            return z, self.dec(z)

    def step(model, epoch):
        z, x_hat = model(X, edge_index)
        return torch.nn.functional.mse_loss(x_hat, X)

    def run():
        seed_everything(0)
        return fit(GAE(X.shape[1]), step, 40, lr=0.01, device="cpu", seed=0, verbose=False)

    a, b = run(), run()
    assert a.history["loss"].equals(b.history["loss"])
    assert a.history["loss"].iloc[-5:].mean() < 0.9 * a.history["loss"].iloc[:5].mean()
    assert a.history["seconds"].sum() < 60
