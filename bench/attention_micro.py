"""Micro-benchmark: ember's attention and Transformer encoder (forward + backward) against
PyTorch eager on the shapes of workload W5 (token embedding 5000x128, 2 encoder layers with
d_model 128, 4 heads, feed-forward 512, sequence 64, batch 16, mean pool, linear 10, AdamW).

    OPENBLAS_CORETYPE=SkylakeX python bench/attention_micro.py [--threads 2] [--repeats 5]
                                                               [--clock cpu]

Each case runs ember and PyTorch interleaved (A B A B ...) in one process on equal weights and
prints the median time per call and the ratio ember / torch (below 1 means ember is faster).
Layer cases take gradients of a fixed random weighting of the outputs, so no loss op is needed;
the W5 case is a whole training step with cross-entropy and AdamW. One line races ember
against itself: MultiheadAttention's self-attention through the packed _SelfAttention node
against the general path (ember.ops.attention._PACKED switched off). ``--threads`` also sets
OpenBLAS's and ember's thread counts unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS are set.
``--clock cpu`` times process CPU time instead of the wall clock (with ``--threads 1``:
steadier on a shared machine) and reports the median of the repeats.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _timing  # noqa: E402


os.environ.setdefault("OPENBLAS_NUM_THREADS", _timing.early_threads())
os.environ.setdefault("OMP_NUM_THREADS", os.environ["OPENBLAS_NUM_THREADS"])
_timing.setup_env()  # OPENBLAS_CORETYPE before NumPy loads (PERF-NOTES.md)

import numpy  # noqa: E402
import torch  # noqa: E402

import ember  # noqa: E402
from bench import _twins  # noqa: E402
from ember import nn  # noqa: E402

_ARGS = argparse.Namespace(repeats=5, min_time=0.2, clock="wall")
SEQ, BATCH, D_MODEL, HEADS, FF, VOCAB, CLASSES = 64, 16, 128, 4, 512, 5000, 10


def _race(name, e_fn, t_fn):
    return _twins.race(name, e_fn, t_fn, _ARGS, width=46)


_twin = _twins.twin


def _pair(rng, shape, grad=True):
    a = rng.standard_normal(shape).astype(numpy.float32)
    return ember.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad)


def _sdpa_case(rng):
    shape = (BATCH, HEADS, SEQ, D_MODEL // HEADS)
    (eq, tq), (ek, tk), (ev, tv) = (_pair(rng, shape) for _ in range(3))
    eg, tg = _pair(rng, shape, grad=False)
    sdpa_e = ember.nn.functional.scaled_dot_product_attention
    sdpa_t = torch.nn.functional.scaled_dot_product_attention
    _race(f"sdpa {shape} fwd+bwd",
          lambda: ember.autograd.grad(sdpa_e(eq, ek, ev), [eq, ek, ev], eg),
          lambda: torch.autograd.grad(sdpa_t(tq, tk, tv), [tq, tk, tv], tg))
    _race(f"sdpa {shape} causal fwd+bwd",
          lambda: ember.autograd.grad(sdpa_e(eq, ek, ev, is_causal=True), [eq, ek, ev], eg),
          lambda: torch.autograd.grad(sdpa_t(tq, tk, tv, is_causal=True), [tq, tk, tv], tg))


def _mha_case(rng, need_weights):
    e_mha, t_mha = _twin("MultiheadAttention", D_MODEL, HEADS, batch_first=True)
    ex, tx = _pair(rng, (BATCH, SEQ, D_MODEL))
    eg, tg = _pair(rng, (BATCH, SEQ, D_MODEL), grad=False)
    e_params = [ex, *e_mha.parameters()]
    t_params = [tx, *t_mha.parameters()]
    _race(f"MultiheadAttention need_weights={need_weights} f+b",
          lambda: ember.autograd.grad(e_mha(ex, ex, ex, need_weights=need_weights)[0],
                                      e_params, eg),
          lambda: torch.autograd.grad(t_mha(tx, tx, tx, need_weights=need_weights)[0],
                                      t_params, tg))


def _packed_case(rng):
    """ember against itself: MultiheadAttention self-attention through the packed
    _SelfAttention node against the general path (unbind + _Attention), interleaved."""
    from ember.ops import attention as ops_attention  # noqa: PLC0415

    e_mha, _ = _twin("MultiheadAttention", D_MODEL, HEADS, batch_first=True)
    ex, _ = _pair(rng, (BATCH, SEQ, D_MODEL))
    eg, _ = _pair(rng, (BATCH, SEQ, D_MODEL), grad=False)
    params = [ex, *e_mha.parameters()]

    def run(packed):
        def fn():
            ops_attention._PACKED[0] = packed
            ember.autograd.grad(e_mha(ex, ex, ex, need_weights=False)[0], params, eg)
        return fn

    try:
        times = _timing.interleaved({"packed": run(True), "general": run(False)},
                                    _ARGS.repeats, _ARGS.min_time, _ARGS.clock)
    finally:
        ops_attention._PACKED[0] = True
    p, g = times["packed"], times["general"]
    print(f"{'MHA f+b packed vs general path (ember)':<46} packed {p * 1e3:6.2f} ms  "
          f"general {g * 1e3:6.2f} ms  ratio {p / g:5.2f}")


def _encoder_case(rng, dropout, batch_first=True):
    e_layer, t_layer = _twin("TransformerEncoderLayer", D_MODEL, HEADS, FF, dropout=dropout,
                             batch_first=batch_first)
    shape = (BATCH, SEQ, D_MODEL) if batch_first else (SEQ, BATCH, D_MODEL)
    ex, tx = _pair(rng, shape)
    eg, tg = _pair(rng, shape, grad=False)
    e_params = [ex, *e_layer.parameters()]
    t_params = [tx, *t_layer.parameters()]
    label = f"EncoderLayer dropout={dropout} batch_first={batch_first}"
    ratio = _race(label + " f+b", lambda: ember.autograd.grad(e_layer(ex), e_params, eg),
                  lambda: torch.autograd.grad(t_layer(tx), t_params, tg))
    e_layer.eval()
    t_layer.eval()
    with ember.no_grad(), torch.no_grad():
        _race(label + " eval fwd", lambda: e_layer(ex), lambda: t_layer(tx))
    return ratio


def _w5_case(rng, dropout):
    """One W5 training step: embedding -> 2 encoder layers -> mean pool -> linear -> CE."""
    emb = rng.standard_normal((VOCAB, D_MODEL)).astype(numpy.float32)
    t_model = torch.nn.ModuleDict({
        "emb": torch.nn.Embedding(VOCAB, D_MODEL),
        "enc": torch.nn.TransformerEncoder(
            torch.nn.TransformerEncoderLayer(D_MODEL, HEADS, FF, dropout=dropout,
                                             batch_first=True), 2,
            enable_nested_tensor=False),
        "fc": torch.nn.Linear(D_MODEL, CLASSES),
    })
    with torch.no_grad():
        t_model["emb"].weight.copy_(torch.tensor(emb))
    e_model = nn.ModuleDict({
        "emb": nn.Embedding(VOCAB, D_MODEL),
        "enc": nn.TransformerEncoder(
            nn.TransformerEncoderLayer(D_MODEL, HEADS, FF, dropout=dropout, batch_first=True),
            2),
        "fc": nn.Linear(D_MODEL, CLASSES),
    })
    e_model.load_state_dict({k: ember.tensor(v.detach().numpy())
                             for k, v in t_model.state_dict().items()})
    tokens = rng.integers(0, VOCAB, size=(BATCH, SEQ))
    labels = rng.integers(0, CLASSES, size=(BATCH,))
    e_tok, t_tok = ember.tensor(tokens), torch.tensor(tokens)
    e_lab, t_lab = ember.tensor(labels), torch.tensor(labels)
    e_opt = ember.optim.AdamW(e_model.parameters(), lr=1e-3)
    t_opt = torch.optim.AdamW(t_model.parameters(), lr=1e-3)
    ef, tf = ember.nn.functional, torch.nn.functional

    def e_step():
        h = e_model["enc"](e_model["emb"](e_tok)).mean(1)
        loss = ef.cross_entropy(e_model["fc"](h), e_lab)
        e_opt.zero_grad()
        loss.backward()
        e_opt.step()

    def t_step():
        h = t_model["enc"](t_model["emb"](t_tok)).mean(1)
        loss = tf.cross_entropy(t_model["fc"](h), t_lab)
        t_opt.zero_grad()
        loss.backward()
        t_opt.step()

    return _race(f"W5 training step (dropout={dropout})", e_step, t_step)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _timing.add_timing_args(parser)
    args = parser.parse_args(namespace=_ARGS)
    torch.set_num_threads(args.threads)
    ember.set_num_threads(args.threads)  # ember's pool and OpenBLAS, like torch's
    rng = numpy.random.default_rng(0)
    print(f"{_timing.machine_line()}; torch threads {torch.get_num_threads()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}, clock {args.clock}")
    _sdpa_case(rng)
    _mha_case(rng, need_weights=False)
    _mha_case(rng, need_weights=True)
    _packed_case(rng)
    _encoder_case(rng, 0.0)
    _encoder_case(rng, 0.1)
    _encoder_case(rng, 0.0, batch_first=False)
    _w5_case(rng, 0.0)
    _w5_case(rng, 0.1)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
