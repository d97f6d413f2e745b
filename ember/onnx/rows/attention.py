"""Attention: ember's fused ``_Attention`` node (scaled_dot_product_attention, and the core of
nn.MultiheadAttention and the Transformer layers) as plain ONNX nodes.

``softmax(q @ k^T * scale + mask) @ v`` becomes Transpose, MatMul, Mul, Add, Softmax and
MatMul. Masks reach the node already additive (ember turns bool masks into 0 / -inf before the
node), so a mask is one Add. Where every key of a query is masked, ONNX Softmax gives NaN and
ember gives zero weights: a ReduceMax / Equal / Where triple reproduces ember there. A causal
mask that ember built for the traced length is a constant; export.py rebuilds it with Trilu at
run time when the sequence axis is dynamic. Dropout on the weights exists only in training and
is refused (export traces in eval mode, where it is off).

The file has no import row of its own: an exported attention loads back through the rows of
the ops above.
"""

import numpy

from ember.onnx import table
from ember.onnx.rows import _common as C
from ember.onnx.rows import shape as shape_rows
from ember.ops import attention as AT


def _swap_last(ctx, name, rank):
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    return ctx.add("Transpose", [name], perm=perm)


def _export_attention(ctx, node):
    q, k, v, mask, scale, keep, weights = node.args[:7]
    if keep is not None:
        raise shape_rows._unsupported(
            ctx, node, "dropout on the attention weights",
            "export runs layers in eval mode, where it is off; when calling "
            "scaled_dot_product_attention yourself pass dropout_p=0.0 outside training")
    like = node.outputs[0]
    kt = _swap_last(ctx, ctx.name(k), len(k.shape))
    qn = ctx.name(q)
    # Scale the smaller operand, as ember does: the queries when E < S, else the scores.
    if q.shape[-1] < k.shape[-2]:
        scores = ctx.add("MatMul", [ctx.add("Mul", [qn, ctx.scalar(scale, like)]), kt])
    else:
        scores = ctx.add("Mul", [ctx.add("MatMul", [qn, kt]), ctx.scalar(scale, like)])
    if mask is not None:
        scores = ctx.add("Add", [scores, C.cast_to(ctx, mask, like.dtype)])
    probs = ctx.add("Softmax", [scores], axis=-1)
    if mask is not None:  # rows with every key masked: zero weights, not NaN
        top = C.reduce(ctx, "ReduceMax", scores, [-1], True)
        empty = ctx.add("Equal", [top, ctx.scalar(-numpy.inf, like)])
        probs = ctx.add("Where", [empty, ctx.scalar(0.0, like), probs])
    out = ctx.add("MatMul", [probs, ctx.name(v)])
    return [out, probs] if weights else [out]


table.register(
    table.Row("MatMul", since=13, ember_ops=(AT._Attention,), export=_export_attention,
              note="scaled_dot_product_attention / MultiheadAttention / Transformer: "
              "MatMul, Softmax, masks as Add (causal masks rebuilt with Trilu at 14+)"),
)
