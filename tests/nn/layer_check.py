"""Compare an ember layer with its torch.nn twin on copied weights: outputs, input gradients,
parameter gradients and buffers, in train and eval mode."""

import numpy
import torch

import ember

# torch's intra-op thread pool spins against ember (and other test processes) on small
# tensors: one BatchNorm call measured 55 ms with the default threads, 0.3 ms with one.
torch.set_num_threads(1)


def copy_state(e_layer, t_layer):
    """torch's parameters and buffers into the ember layer (through load_state_dict)."""
    e_layer.load_state_dict({k: v.detach().numpy().copy() for k, v in
                             t_layer.state_dict().items()})


def _inputs(specs, dtype, rng):
    arrays = []
    for s in specs:
        if isinstance(s, numpy.ndarray):
            arrays.append(s)
        else:
            arrays.append(rng.standard_normal(s).astype(dtype))
    return arrays


def run_both(e_layer, t_layer, arrays, rng, rtol, atol, kwargs=None):
    """One forward and backward in both frameworks; assert outputs and gradients agree."""
    kwargs = kwargs or {}
    grad = [a.dtype.kind == "f" for a in arrays]
    e_in = [ember.tensor(a, requires_grad=g) for a, g in zip(arrays, grad)]
    t_in = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grad)]
    e_out, t_out = e_layer(*e_in, **kwargs), t_layer(*t_in, **kwargs)
    e_outs = list(e_out) if isinstance(e_out, tuple) else [e_out]
    t_outs = list(t_out) if isinstance(t_out, tuple) else [t_out]
    for e, t in zip(e_outs, t_outs, strict=True):
        assert tuple(e.shape) == tuple(t.shape)
        numpy.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol, atol,
                                      err_msg="output")
    e_main, t_main = e_outs[0], t_outs[0]
    if not t_main.requires_grad:
        return e_out
    w = rng.standard_normal(tuple(t_main.shape)).astype(t_main.detach().numpy().dtype)
    (e_main * ember.tensor(w)).sum().backward()
    (t_main * torch.tensor(w)).sum().backward()
    for e, t in zip(e_in, t_in):
        if t.requires_grad:
            numpy.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol, atol,
                                          err_msg="input grad")
    e_params = dict(e_layer.named_parameters())
    for name, p in t_layer.named_parameters():
        if p.grad is None:
            assert e_params[name].grad is None or not e_params[name].grad.numpy().any(), name
            continue
        numpy.testing.assert_allclose(e_params[name].grad.numpy(), p.grad.numpy(), rtol, atol,
                                      err_msg=f"grad of {name}")
    return e_out


def check_buffers(e_layer, t_layer, rtol=1e-5, atol=1e-6):
    e_buf = dict(e_layer.named_buffers())
    for name, b in t_layer.named_buffers():
        numpy.testing.assert_allclose(e_buf[name].numpy(), b.numpy(), rtol, atol,
                                      err_msg=f"buffer {name}")


def compare_layer(e_layer, t_layer, specs, dtype=numpy.float32, rtol=1e-4, atol=1e-5,
                  modes=("train", "eval"), steps=1, kwargs=None, seed=0):
    """Copy torch's weights into ``e_layer`` and compare both in every mode of ``modes``
    (``steps`` forward/backward passes each, fresh inputs every time), buffers included."""
    copy_state(e_layer, t_layer)
    rng = numpy.random.default_rng(seed)
    for mode in modes:
        e_layer.train(mode == "train")
        t_layer.train(mode == "train")
        for _ in range(steps):
            e_layer.zero_grad()
            t_layer.zero_grad()
            run_both(e_layer, t_layer, _inputs(specs, dtype, rng), rng, rtol, atol, kwargs)
            check_buffers(e_layer, t_layer)
