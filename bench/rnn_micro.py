"""Micro-benchmark: ember's recurrent layers (forward + backward) against PyTorch eager on the
shapes of workload W4 (embedding 5000x128 -> LSTM hidden 128, 64 steps, batch 32 -> linear).

    python bench/rnn_micro.py [--threads 2] [--repeats 5] [--clock cpu]

Each case runs ember and PyTorch interleaved (A B A B ...) in one process on equal weights and
prints the median time per call and the ratio ember / torch (below 1 means ember is faster).
Layer cases take gradients of a fixed random weighting of the outputs (no loss op); the W4 case
is the whole training step: embedding -> LSTM (batch_first, as in W4) -> linear on h_n ->
cross-entropy -> Adam.

``--threads`` sets both torch's and OpenBLAS's thread count (OPENBLAS_NUM_THREADS, before NumPy
loads). On a shared machine, ``--clock cpu`` with ``--threads 1`` times process CPU time instead
of wall time: it is far less disturbed by other processes (PERF-NOTES.md), but only means
something with one thread (OpenBLAS threads spin while they wait).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _timing  # noqa: E402


_timing.setup_env()  # OPENBLAS_CORETYPE before NumPy loads (PERF-NOTES.md)
os.environ["OPENBLAS_NUM_THREADS"] = _timing.early_threads()

import numpy  # noqa: E402
import torch  # noqa: E402

import ember  # noqa: E402
from bench import _twins  # noqa: E402
from ember import nn  # noqa: E402

_ARGS = argparse.Namespace(repeats=5, min_time=0.2, clock="wall")
SEQ, BATCH, HIDDEN, VOCAB, CLASSES = 64, 32, 128, 5000, 2


def _race(name, e_fn, t_fn):
    return _twins.race(name, e_fn, t_fn, _ARGS, width=40)


_twin = _twins.twin


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
    """The W4 training step: embedding -> LSTM -> linear on h_n -> cross-entropy -> Adam."""
    e_emb, t_emb = _twin("Embedding", VOCAB, HIDDEN)
    # batch_first, as bench/workloads/eager.py's LSTMClassifier (the layer then sees a
    # transposed view of the embedding output).
    e_lstm, t_lstm = _twin("LSTM", HIDDEN, HIDDEN, batch_first=True)
    e_fc, t_fc = _twin("Linear", HIDDEN, CLASSES)
    tokens = rng.integers(0, VOCAB, size=(BATCH, SEQ))
    labels = rng.integers(0, CLASSES, size=(BATCH,))
    e_tok, t_tok = ember.tensor(tokens), torch.tensor(tokens)
    e_y, t_y = ember.tensor(labels), torch.tensor(labels)
    e_opt = ember.optim.Adam([*e_emb.parameters(), *e_lstm.parameters(), *e_fc.parameters()],
                             lr=1e-3)
    t_opt = torch.optim.Adam([*t_emb.parameters(), *t_lstm.parameters(), *t_fc.parameters()],
                             lr=1e-3)

    def e_step():
        e_opt.zero_grad()
        _, (h, _) = e_lstm(e_emb(e_tok))
        nn.functional.cross_entropy(e_fc(h[-1]), e_y).backward()
        e_opt.step()

    def t_step():
        t_opt.zero_grad()
        _, (h, _) = t_lstm(t_emb(t_tok))
        torch.nn.functional.cross_entropy(t_fc(h[-1]), t_y).backward()
        t_opt.step()

    return _race("W4 step: emb->LSTM->linear->CE->Adam", e_step, t_step)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _timing.add_timing_args(parser)
    parser.add_argument("--cases", default="LSTM,GRU,RNN,LSTM-bidir,W4",
                        help="comma-separated subset of LSTM,GRU,RNN,LSTM-bidir,W4")
    args = parser.parse_args(namespace=_ARGS)
    torch.set_num_threads(args.threads)
    ember.set_num_threads(args.threads)  # ember's pool and OpenBLAS, like torch's
    rng = numpy.random.default_rng(0)
    print(f"{_timing.machine_line()}; torch threads {torch.get_num_threads()}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}, clock {args.clock}")
    cases = args.cases.split(",")
    for kind in ("LSTM", "GRU", "RNN"):
        if kind in cases:
            _layer_case(kind, rng)
    if "LSTM-bidir" in cases:
        _layer_case("LSTM", rng, bidirectional=True)
    if "W4" in cases:
        _w4_case(rng)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
