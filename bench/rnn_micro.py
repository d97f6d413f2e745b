"""Micro-benchmark: ember's recurrent layers (forward + backward) against PyTorch eager on the
shapes of workload W4 (embedding 5000x128 -> LSTM hidden 128, 64 steps, batch 32 -> linear).

    OPENBLAS_CORETYPE=SkylakeX python bench/rnn_micro.py [--threads 2] [--repeats 5]

Each case runs ember and PyTorch interleaved (A B A B ...) in one process on equal weights and
prints the median time per call and the ratio ember / torch (below 1 means ember is faster).
Gradients are taken of a fixed random weighting of the outputs, so no loss op is needed.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _timing  # noqa: E402

_timing.setup_env()  # OPENBLAS_CORETYPE before NumPy loads (PERF-NOTES.md)

import numpy  # noqa: E402
import torch  # noqa: E402

import ember  # noqa: E402
from ember import nn  # noqa: E402

_ARGS = argparse.Namespace(repeats=5, min_time=0.2)
SEQ, BATCH, HIDDEN, VOCAB, CLASSES = 64, 32, 128, 5000, 10


def _race(name, e_fn, t_fn):
    times = _timing.interleaved({"ember": e_fn, "torch": t_fn}, _ARGS.repeats, _ARGS.min_time)
    e, t = times["ember"], times["torch"]
    print(f"{name:<40} ember {e * 1e3:7.2f} ms   torch {t * 1e3:7.2f} ms   ratio {e / t:5.2f}")
    return e / t


def _twin(kind, *args, **kwargs):
    """The same layer in both frameworks, ember's weights copied from torch's."""
    t_layer = getattr(torch.nn, kind)(*args, **kwargs)
    e_layer = getattr(nn, kind)(*args, **kwargs)
    e_layer.load_state_dict({k: ember.tensor(v.detach().numpy())
                             for k, v in t_layer.state_dict().items()})
    return e_layer, t_layer


def _layer_case(kind, rng, bidirectional=False):
    e_layer, t_layer = _twin(kind, HIDDEN, HIDDEN, bidirectional=bidirectional)
    x = rng.standard_normal((SEQ, BATCH, HIDDEN)).astype(numpy.float32)
    ex, tx = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    width = HIDDEN * (2 if bidirectional else 1)
    g = rng.standard_normal((SEQ, BATCH, width)).astype(numpy.float32)
    eg, tg = ember.tensor(g), torch.tensor(g)
    e_params = [ex] + list(e_layer.parameters())
    t_params = [tx] + list(t_layer.parameters())

    def e_step():
        ember.autograd.grad(e_layer(ex)[0], e_params, eg)

    def t_step():
        torch.autograd.grad(t_layer(tx)[0], t_params, tg)

    label = f"{kind}({HIDDEN},{HIDDEN}{', bidir' if bidirectional else ''}) " \
            f"({SEQ},{BATCH},{HIDDEN})"
    ratio = _race(label + " fwd+bwd", e_step, t_step)
    with ember.no_grad(), torch.no_grad():
        _race(label + " fwd", lambda: e_layer(ex), lambda: t_layer(tx))
    return ratio


def _w4_case(rng):
    """The W4 training step without the optimizer: embedding -> LSTM -> linear on h_n."""
    emb = rng.standard_normal((VOCAB, HIDDEN)).astype(numpy.float32)
    e_emb, t_emb = ember.tensor(emb, requires_grad=True), torch.tensor(emb, requires_grad=True)
    e_lstm, t_lstm = _twin("LSTM", HIDDEN, HIDDEN)
    e_fc, t_fc = _twin("Linear", HIDDEN, CLASSES)
    tokens = rng.integers(0, VOCAB, size=(SEQ, BATCH))
    e_tok, t_tok = ember.tensor(tokens), torch.tensor(tokens)
    g = rng.standard_normal((BATCH, CLASSES)).astype(numpy.float32)
    eg, tg = ember.tensor(g), torch.tensor(g)
    e_params = [e_emb, *e_lstm.parameters(), *e_fc.parameters()]
    t_params = [t_emb, *t_lstm.parameters(), *t_fc.parameters()]
    lookup = getattr(ember.nn.functional, "embedding", None)

    def e_step():
        x = lookup(e_tok, e_emb) if lookup else ember.index_select(e_emb, 0, e_tok.reshape(-1))
        x = x.reshape(SEQ, BATCH, HIDDEN)
        _, (h, _) = e_lstm(x)
        ember.autograd.grad(e_fc(h[-1]), e_params, eg)

    def t_step():
        x = torch.nn.functional.embedding(t_tok, t_emb)
        _, (h, _) = t_lstm(x)
        torch.autograd.grad(t_fc(h[-1]), t_params, tg)

    return _race("W4 step: embedding->LSTM->linear", e_step, t_step)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2)
    args = parser.parse_args(namespace=_ARGS)
    torch.set_num_threads(args.threads)
    rng = numpy.random.default_rng(0)
    print(f"{_timing.machine_line()}; torch threads {torch.get_num_threads()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    _layer_case("LSTM", rng)
    _layer_case("GRU", rng)
    _layer_case("RNN", rng)
    _layer_case("LSTM", rng, bidirectional=True)
    _w4_case(rng)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
