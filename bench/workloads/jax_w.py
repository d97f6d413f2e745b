"""The five workloads in JAX: pure functions over a dict of parameters with PyTorch's names
and layouts, and one ``jax.jit`` of the whole training step (forward, loss, gradient,
optimizer update and BatchNorm running statistics). The optimizers follow PyTorch's update
rules (SGD momentum buffer ``b = m*b + g``; Adam/AdamW with bias correction, AdamW's decay
applied to the weights first), so the losses track ember's and PyTorch's step for step.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy

from bench.workloads import common


def setup(threads):
    """Threads are set through XLA_FLAGS, which the worker puts in the environment before
    the import; nothing to do here."""


def _linear(p, prefix, x):
    return x @ p[prefix + "weight"].T + p[prefix + "bias"]


def _conv(p, prefix, x):
    y = jax.lax.conv_general_dilated(x, p[prefix + "weight"], (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
    bias = p.get(prefix + "bias")
    return y if bias is None else y + bias[None, :, None, None]


def _max_pool2(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def _batch_norm(p, buffers, new_buffers, prefix, x):
    """Training-mode BatchNorm: normalise with the batch statistics (biased variance) and
    move the running statistics towards them (unbiased variance), as PyTorch does."""
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    n = x.size // x.shape[1]
    m = common.BN_MOMENTUM
    new_buffers[prefix + "running_mean"] = (1 - m) * buffers[prefix + "running_mean"] + m * mean
    new_buffers[prefix + "running_var"] = ((1 - m) * buffers[prefix + "running_var"]
                                           + m * var * (n / (n - 1)))
    scale = p[prefix + "weight"] * jax.lax.rsqrt(var + common.BN_EPS)
    shift = p[prefix + "bias"] - mean * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def _layer_norm(p, prefix, x):
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    normed = (x - mean) * jax.lax.rsqrt(var + common.LN_EPS)
    return normed * p[prefix + "weight"] + p[prefix + "bias"]


def _w1(p, buffers, x):
    h = jax.nn.relu(_linear(p, "0.", x))
    h = jax.nn.relu(_linear(p, "2.", h))
    return _linear(p, "4.", h), buffers


def _w2(p, buffers, x):
    h = _max_pool2(jax.nn.relu(_conv(p, "0.", x)))
    h = _max_pool2(jax.nn.relu(_conv(p, "3.", h)))
    h = jax.nn.relu(_linear(p, "7.", h.reshape(h.shape[0], -1)))
    return _linear(p, "9.", h), buffers


def _w3(p, buffers, x):
    new = {}
    h = jax.nn.relu(_batch_norm(p, buffers, new, "stem_bn.", _conv(p, "stem.", x)))
    for b in ("block1.", "block2."):
        out = jax.nn.relu(_batch_norm(p, buffers, new, b + "bn1.", _conv(p, b + "conv1.", h)))
        out = _batch_norm(p, buffers, new, b + "bn2.", _conv(p, b + "conv2.", out))
        h = jax.nn.relu(out + h)
    return _linear(p, "fc.", h.mean(axis=(2, 3))), new


def _w4(p, buffers, tokens):
    x = p["embedding.weight"][tokens]                      # (N, T, E)
    # The input projection of all time steps is one matmul; the scan carries (h, c).
    gates_x = x @ p["lstm.weight_ih_l0"].T + p["lstm.bias_ih_l0"] + p["lstm.bias_hh_l0"]
    w_hh = p["lstm.weight_hh_l0"]
    hidden = common.W4_HIDDEN

    def cell(carry, gx):
        h, c = carry
        g = gx + h @ w_hh.T
        i, f = jax.nn.sigmoid(g[:, :hidden]), jax.nn.sigmoid(g[:, hidden:2 * hidden])
        cand, o = jnp.tanh(g[:, 2 * hidden:3 * hidden]), jax.nn.sigmoid(g[:, 3 * hidden:])
        c = f * c + i * cand
        h = o * jnp.tanh(c)
        return (h, c), None

    zeros = jnp.zeros((tokens.shape[0], hidden), x.dtype)
    (h, _), _ = jax.lax.scan(cell, (zeros, zeros), jnp.swapaxes(gates_x, 0, 1))
    return _linear(p, "fc.", h), buffers


def _self_attention(p, prefix, x):
    n, s, d = x.shape
    heads = common.W5_HEADS
    qkv = x @ p[prefix + "in_proj_weight"].T + p[prefix + "in_proj_bias"]
    q, k, v = (t.reshape(n, s, heads, d // heads).transpose(0, 2, 1, 3)
               for t in jnp.split(qkv, 3, axis=-1))
    weights = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(d // heads), axis=-1)
    out = (weights @ v).transpose(0, 2, 1, 3).reshape(n, s, d)
    return _linear(p, prefix + "out_proj.", out)


def _w5(p, buffers, tokens):
    x = p["embedding.weight"][tokens]
    for i in range(common.W5_LAYERS):
        pre = f"encoder.layers.{i}."
        x = _layer_norm(p, pre + "norm1.", x + _self_attention(p, pre + "self_attn.", x))
        ff = _linear(p, pre + "linear2.", jax.nn.relu(_linear(p, pre + "linear1.", x)))
        x = _layer_norm(p, pre + "norm2.", x + ff)
    return _linear(p, "fc.", x.mean(axis=1)), buffers


_FORWARD = {"W1": _w1, "W2": _w2, "W3": _w3, "W4": _w4, "W5": _w5}


def _cross_entropy(logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, labels[:, None], axis=1).mean()


def _init_opt(kind, params):
    zeros = {k: jnp.zeros_like(v) for k, v in params.items()}
    if kind == "sgd":
        return {"buf": zeros}
    return {"m": zeros, "v": {k: jnp.zeros_like(v) for k, v in params.items()},
            "t": jnp.zeros((), jnp.float32)}


def _update(kind, hp, params, grads, opt):
    if kind == "sgd":
        buf = {k: hp["momentum"] * opt["buf"][k] + grads[k] for k in params}
        return {k: params[k] - hp["lr"] * buf[k] for k in params}, {"buf": buf}
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, hp["lr"]
    t = opt["t"] + 1
    m = {k: b1 * opt["m"][k] + (1 - b1) * grads[k] for k in params}
    v = {k: b2 * opt["v"][k] + (1 - b2) * grads[k] ** 2 for k in params}
    step = lr / (1 - b1 ** t)
    denom_scale = 1.0 / jnp.sqrt(1 - b2 ** t)
    new = {}
    for k, p in params.items():
        if kind == "adamw":
            p = p * (1 - lr * hp["weight_decay"])
        new[k] = p - step * m[k] / (jnp.sqrt(v[k]) * denom_scale + eps)
    return new, {"m": m, "v": v, "t": t}


def make_step(name, state, batch):
    kind, hp = common.optimizer(name)
    specs = {key for key, *_ in common.param_specs(name)}
    params = {k: jnp.asarray(v) for k, v in state.items() if k in specs}
    buffers = {k: jnp.asarray(v) for k, v in state.items() if k not in specs}
    x = jnp.asarray(batch[0] if batch[0].dtype == numpy.float32 else batch[0].astype(numpy.int32))
    y = jnp.asarray(batch[1].astype(numpy.int32))
    forward = _FORWARD[name]

    def loss_fn(p, b, inputs, labels):
        logits, new_b = forward(p, b, inputs)
        return _cross_entropy(logits, labels), new_b

    # The batch is an argument, not a closed-over constant, so XLA cannot fold it in.
    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def train_step(p, b, opt, inputs, labels):
        (loss, new_b), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, b, inputs, labels)
        p, opt = _update(kind, hp, p, grads, opt)
        return p, new_b, opt, loss

    carry = [params, buffers, _init_opt(kind, params)]

    def step():
        carry[0], carry[1], carry[2], loss = train_step(*carry, x, y)
        return loss

    return step


def to_float(loss):
    return float(loss)
