"""Training checkpoints: stopping after epoch k and resuming from the checkpoint gives exactly
the losses and weights of the uninterrupted run (model, optimizer, scheduler, data order,
dropout masks all continue)."""

import numpy
import pytest
import safetensors.torch
import torch

import ember
from ember import nn, optim
from ember.data import DataLoader, TensorDataset
from ember.io import CheckpointError, load_checkpoint, save_checkpoint


def _setup(seed=0):
    ember.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    rng = numpy.random.default_rng(1)
    x = ember.tensor(rng.standard_normal((40, 6)).astype(numpy.float32))
    y = ember.tensor(rng.integers(0, 3, 40))
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    return model, opt, sched, loader


def _epoch(model, opt, sched, loader):
    losses = []
    model.train()
    for xb, yb in loader:
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step()
    return losses


def test_resume_equals_uninterrupted(tmp_path):
    model, opt, sched, loader = _setup()
    full = [_epoch(model, opt, sched, loader) for _ in range(4)]
    final = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    model, opt, sched, loader = _setup()
    first = [_epoch(model, opt, sched, loader) for _ in range(2)]
    save_checkpoint(tmp_path / "ckpt.safetensors", model, opt, sched, epoch=2, step=10,
                    extra={"note": "half way"})

    # A fresh "process": new objects, a different global seed, then restore.
    model, opt, sched, loader = _setup(seed=99)
    ember.manual_seed(12345)
    state = load_checkpoint(tmp_path / "ckpt.safetensors", model, opt, sched)
    assert state["epoch"] == 2 and state["step"] == 10 and state["extra"] == {"note": "half way"}
    rest = [_epoch(model, opt, sched, loader) for _ in range(2)]

    assert first + rest == full
    for k, v in model.state_dict().items():
        numpy.testing.assert_array_equal(v.numpy(), final[k])
    assert sched.get_last_lr() == pytest.approx([1e-2 * 0.7**4])


def test_checkpoint_errors_name_the_problem(tmp_path):
    model, opt, sched, _ = _setup()
    ember.save({"w": ember.ones(2)}, tmp_path / "plain.st")
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "plain.st", model)
    save_checkpoint(tmp_path / "model_only.st", model)
    with pytest.raises(CheckpointError, match="no optimizer state"):
        load_checkpoint(tmp_path / "model_only.st", model, opt)
    other = nn.Sequential(nn.Linear(6, 5))
    with pytest.raises(ember.errors.ModuleError, match="size mismatch|shape"):
        load_checkpoint(tmp_path / "model_only.st", other)


def _torch_cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5))


def _ember_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 6 * 6, 5))


def test_pytorch_safetensors_state_dict_loads_into_ember(tmp_path):
    torch.manual_seed(0)
    tmodel = _torch_cnn()
    tmodel(torch.randn(8, 1, 6, 6))  # move the BatchNorm running statistics
    tmodel.eval()
    safetensors.torch.save_file(tmodel.state_dict(), str(tmp_path / "torch.safetensors"))
    emodel = _ember_cnn()
    emodel.load_state_dict(ember.load(tmp_path / "torch.safetensors"))
    emodel.eval()
    x = numpy.random.default_rng(0).standard_normal((3, 1, 6, 6)).astype(numpy.float32)
    numpy.testing.assert_allclose(emodel(ember.tensor(x)).detach().numpy(),
                                  tmodel(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_ember_state_dict_loads_into_pytorch(tmp_path):
    ember.manual_seed(0)
    emodel = _ember_cnn()
    ember.save(emodel.state_dict(), tmp_path / "ember.safetensors")
    tmodel = _torch_cnn()
    tmodel.load_state_dict(safetensors.torch.load_file(str(tmp_path / "ember.safetensors")))
    emodel.eval()
    tmodel.eval()
    x = numpy.random.default_rng(1).standard_normal((2, 1, 6, 6)).astype(numpy.float32)
    numpy.testing.assert_allclose(emodel(ember.tensor(x)).detach().numpy(),
                                  tmodel(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
