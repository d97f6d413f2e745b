"""What the five training workloads share across frameworks: sizes, hyperparameters, the
synthetic batch and the initial weights, all made here in NumPy from fixed seeds.

Every framework builds the same model with PyTorch's parameter names and layouts (``0.weight``
of shape ``(out, in)``, LSTM gates in the order i, f, g, o, ``self_attn.in_proj_weight`` ...),
then loads :func:`initial_state` into it, so the three frameworks start from identical
weights and see identical data. ``param_specs`` is the one place the layouts are written down.

The workloads (float32; a step is forward, loss, backward and optimizer step):

- W1 MLP 784-512-512-10, ReLU, cross-entropy, SGD with momentum, batch 128.
- W2 LeNet-like CNN on 1x28x28: conv 1->16 3x3 pad 1, ReLU, maxpool 2, conv 16->32 3x3 pad 1,
  ReLU, maxpool 2, flatten, linear 1568->128, ReLU, linear 128->10; SGD with momentum, batch 64.
- W3 ResNet-like on 3x32x32: stem conv 3->32 3x3 + BatchNorm + ReLU, two basic residual
  blocks of 32 channels (conv-BN-ReLU-conv-BN, identity shortcut, ReLU), global average
  pool, linear 32->10; SGD with momentum, batch 32.
- W4 LSTM text classifier: embedding (5000, 128), one LSTM layer of 128, 64 tokens, the last
  hidden state, linear 128->2; Adam, batch 32.
- W5 Transformer encoder: embedding (5000, 128), two post-norm encoder layers (4 heads,
  feed-forward 512, ReLU, dropout 0), sequence 64, mean over the sequence, linear 128->10;
  AdamW, batch 16.

Dropout is 0 in W5 so that the three frameworks do the same arithmetic (a random mask would
differ between them); no positional encoding is added.
"""

import collections

import numpy

SEED = 1234
VOCAB = 5000

# name -> (title, batch size, optimizer name, optimizer keyword arguments)
WORKLOADS = collections.OrderedDict([
    ("W1", ("MLP 784-512-512-10", 128, "sgd", {"lr": 0.01, "momentum": 0.9})),
    ("W2", ("LeNet-like CNN", 64, "sgd", {"lr": 0.01, "momentum": 0.9})),
    ("W3", ("ResNet-like + BatchNorm", 32, "sgd", {"lr": 0.01, "momentum": 0.9})),
    ("W4", ("LSTM text classifier", 32, "adam", {"lr": 1e-3})),
    ("W5", ("Transformer encoder", 16, "adamw", {"lr": 1e-3, "weight_decay": 0.01})),
])

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
LN_EPS = 1e-5
W4_SEQ, W4_EMBED, W4_HIDDEN = 64, 128, 128
W5_SEQ, W5_MODEL, W5_HEADS, W5_FF, W5_LAYERS = 64, 128, 4, 512, 2


def batch_size(name):
    return WORKLOADS[name][1]


def optimizer(name):
    """``(kind, kwargs)``: kind is "sgd", "adam" or "adamw"; kwargs use PyTorch's names."""
    return WORKLOADS[name][2], dict(WORKLOADS[name][3])


def _linear(prefix, fan_in, fan_out):
    return [(prefix + "weight", (fan_out, fan_in), "uniform", fan_in),
            (prefix + "bias", (fan_out,), "uniform", fan_in)]


def _conv(prefix, c_in, c_out, k=3, bias=True):
    fan_in = c_in * k * k
    specs = [(prefix + "weight", (c_out, c_in, k, k), "uniform", fan_in)]
    if bias:
        specs.append((prefix + "bias", (c_out,), "uniform", fan_in))
    return specs


def _norm(prefix, width):
    return [(prefix + "weight", (width,), "ones", None), (prefix + "bias", (width,), "zeros", None)]


def param_specs(name):
    """The trainable parameters of workload ``name``: a list of
    ``(PyTorch state_dict key, shape, init kind, fan_in)``."""
    if name == "W1":
        return _linear("0.", 784, 512) + _linear("2.", 512, 512) + _linear("4.", 512, 10)
    if name == "W2":
        return (_conv("0.", 1, 16) + _conv("3.", 16, 32) + _linear("7.", 1568, 128)
                + _linear("9.", 128, 10))
    if name == "W3":
        specs = _conv("stem.", 3, 32, bias=False) + _norm("stem_bn.", 32)
        for b in ("block1.", "block2."):
            specs += _conv(b + "conv1.", 32, 32, bias=False) + _norm(b + "bn1.", 32)
            specs += _conv(b + "conv2.", 32, 32, bias=False) + _norm(b + "bn2.", 32)
        return specs + _linear("fc.", 32, 10)
    if name == "W4":
        h = W4_HIDDEN
        return [
            ("embedding.weight", (VOCAB, W4_EMBED), "normal", None),
            ("lstm.weight_ih_l0", (4 * h, W4_EMBED), "uniform", h),
            ("lstm.weight_hh_l0", (4 * h, h), "uniform", h),
            ("lstm.bias_ih_l0", (4 * h,), "uniform", h),
            ("lstm.bias_hh_l0", (4 * h,), "uniform", h),
        ] + _linear("fc.", h, 2)
    if name == "W5":
        d, specs = W5_MODEL, [("embedding.weight", (VOCAB, W5_MODEL), "normal", None)]
        for i in range(W5_LAYERS):
            p = f"encoder.layers.{i}."
            specs += [
                (p + "self_attn.in_proj_weight", (3 * d, d), "uniform", d),
                (p + "self_attn.in_proj_bias", (3 * d,), "zeros", None),
            ]
            specs += _linear(p + "self_attn.out_proj.", d, d)
            specs += _linear(p + "linear1.", d, W5_FF) + _linear(p + "linear2.", W5_FF, d)
            specs += _norm(p + "norm1.", d) + _norm(p + "norm2.", d)
        return specs + _linear("fc.", d, 10)
    raise KeyError(f"unknown workload {name!r}; expected one of {list(WORKLOADS)}")


def bn_buffers(name):
    """Running statistics of W3's BatchNorm layers (``{key: array}``), empty elsewhere.
    ``num_batches_tracked`` is left to each framework's default (0)."""
    if name != "W3":
        return {}
    out = {}
    for p in ("stem_bn.", "block1.bn1.", "block1.bn2.", "block2.bn1.", "block2.bn2."):
        out[p + "running_mean"] = numpy.zeros(32, numpy.float32)
        out[p + "running_var"] = numpy.ones(32, numpy.float32)
    return out


def initial_state(name, seed=SEED):
    """``{key: float32 array}`` with the parameters of ``name`` (uniform in +-1/sqrt(fan_in),
    like PyTorch's default; N(0, 1) for embeddings; ones/zeros for norm scales/shifts) and
    the BatchNorm running statistics."""
    rng = numpy.random.default_rng(seed)
    state = collections.OrderedDict()
    for key, shape, kind, fan_in in param_specs(name):
        if kind == "uniform":
            bound = 1.0 / numpy.sqrt(fan_in)
            value = rng.uniform(-bound, bound, shape)
        elif kind == "normal":
            value = rng.standard_normal(shape)
        elif kind == "ones":
            value = numpy.ones(shape)
        else:
            value = numpy.zeros(shape)
        state[key] = value.astype(numpy.float32)
    state.update(bn_buffers(name))
    return state


def make_batch(name, batch=None, seed=SEED + 1):
    """The synthetic batch ``(inputs, labels)``: float32 images/features, or int64 token ids;
    int64 class labels. ``batch`` overrides the workload's batch size (the quick test uses 2)."""
    n = batch_size(name) if batch is None else batch
    rng = numpy.random.default_rng(seed)
    if name == "W1":
        x, classes = rng.standard_normal((n, 784)), 10
    elif name == "W2":
        x, classes = rng.standard_normal((n, 1, 28, 28)), 10
    elif name == "W3":
        x, classes = rng.standard_normal((n, 3, 32, 32)), 10
    elif name == "W4":
        return rng.integers(0, VOCAB, (n, W4_SEQ)), rng.integers(0, 2, n)
    elif name == "W5":
        return rng.integers(0, VOCAB, (n, W5_SEQ)), rng.integers(0, 10, n)
    else:
        raise KeyError(f"unknown workload {name!r}; expected one of {list(WORKLOADS)}")
    return x.astype(numpy.float32), rng.integers(0, classes, n)
