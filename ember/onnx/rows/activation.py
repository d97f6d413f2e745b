"""Activations and softmax."""

import math

from ember.ops import activation as A
from ember.ops import elementwise as E
from ember.ops import piecewise
from ember.ops import shape as S
from ember.onnx import table
from ember.onnx.rows import _common as C


def _x(ctx, node):
    return ctx.name(node.args[0])


def _k(ctx, node, v):
    return ctx.scalar(v, node.outputs[0])


def _export_softplus(ctx, node):
    x, beta, threshold = _x(ctx, node), node.args[1], node.args[2]
    bx = ctx.add("Mul", [x, _k(ctx, node, beta)]) if beta != 1 else x
    soft = ctx.add("Softplus", [bx])
    if beta != 1:
        soft = ctx.add("Div", [soft, _k(ctx, node, beta)])
    # torch returns x itself where beta * x > threshold (a linear tail, no overflow).
    big = ctx.add("Greater", [bx, _k(ctx, node, threshold)])
    return ctx.add("Where", [big, x, soft])


def _load_softplus(ctx, node, x):
    return A.softplus(x, 1.0, math.inf)


def _export_elu(ctx, node):
    x, alpha, inv = _x(ctx, node), node.args[1], node.args[2]
    if inv == 1:
        return ctx.add("Elu", [x], alpha=float(alpha))
    if ctx.opset >= 12 and abs(alpha * inv - 1) < 1e-12:
        return ctx.add("Celu", [x], alpha=float(alpha))
    raise ValueError(f"onnx export: ELU with alpha={alpha}, inv={inv} has no ONNX form")


def _export_gelu(ctx, node):
    x, approximate = _x(ctx, node), node.args[1]
    if ctx.opset >= 20:
        return ctx.add("Gelu", [x], approximate=approximate)
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = ctx.add("Mul", [ctx.add("Mul", [x, x]), x])
        inner = ctx.add("Add", [x, ctx.add("Mul", [x3, _k(ctx, node, 0.044715)])])
        t = ctx.add("Tanh", [ctx.add("Mul", [inner, _k(ctx, node, math.sqrt(2 / math.pi))])])
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        t = ctx.add("Erf", [ctx.add("Mul", [x, _k(ctx, node, 1 / math.sqrt(2))])])
    half_x = ctx.add("Mul", [x, _k(ctx, node, 0.5)])
    return ctx.add("Mul", [half_x, ctx.add("Add", [t, _k(ctx, node, 1.0)])])


def _export_softmax(op):
    def export(ctx, node):
        x, dim = node.args[0], node.args[1]
        if ctx.opset >= 13:
            return ctx.add(op, [ctx.name(x)], axis=int(dim))
        # Before opset 13 Softmax flattened at `axis`: move dim last to get per-row semantics.
        n = len(x.shape)
        d = dim % n
        perm = list(range(n))
        perm[d], perm[-1] = perm[-1], perm[d]
        t = ctx.add("Transpose", [ctx.name(x)], perm=perm)
        return ctx.add("Transpose", [ctx.add(op, [t], axis=n - 1)], perm=perm)

    return export


def _load_softmax(fn, legacy):
    def load(ctx, node, x, axis=-1 if not legacy else 1):
        if not legacy:
            return fn(x, axis)
        a = axis % x.ndim
        flat = S.reshape(x, tuple(x.shape[:a]) + (-1,))
        return S.reshape(fn(flat, -1), tuple(x.shape))

    return load


def _load_leaky(ctx, node, x, alpha=0.01):
    return A.leaky_relu(x, alpha)


def _load_elu(ctx, node, x, alpha=1.0):
    return A.elu(x, alpha)


def _load_celu(ctx, node, x, alpha=1.0):
    return A.celu(x, alpha)


def _load_selu(ctx, node, x, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
    return A.elu(x, alpha) * gamma


def _load_hardsigmoid(ctx, node, x, alpha=0.2, beta=0.5):
    if abs(alpha - 1 / 6) < 1e-7 and beta == 0.5:
        return A.hardsigmoid(x)
    return piecewise.clamp(x * alpha + beta, 0.0, 1.0)


def _load_gelu(ctx, node, x, approximate="none"):
    return A.gelu(x, approximate=approximate)


def _load_prelu(ctx, node, x, slope):
    return E.where(x < 0, x * slope, x)


def _load_thresholded(ctx, node, x, alpha=1.0):
    return E.where(x > alpha, x, x * 0)


table.register(
    C.unary_row("Relu", (A.ReLU,), A.relu, since=6),
    C.unary_row("Sigmoid", (A.Sigmoid,), A.sigmoid, since=6),
    C.unary_row("Softsign", (A.Softsign,), A.softsign),
    C.unary_row("HardSwish", (A.Hardswish,), A.hardswish, since=14),
    table.Row("Softplus", ember_ops=(A.Softplus,), export=_export_softplus, load=_load_softplus),
    table.Row("LeakyRelu", since=6, ember_ops=(A.LeakyReLU,), load=_load_leaky,
              export=lambda ctx, n: ctx.add("LeakyRelu", [_x(ctx, n)], alpha=float(n.args[1]))),
    table.Row("Elu", since=6, ember_ops=(A.ELU,), export=_export_elu, load=_load_elu,
              note="elu, celu (Celu at opset 12+), selu as Elu * scale"),
    table.Row("Celu", since=12, load=_load_celu),
    table.Row("Selu", since=6, load=_load_selu),
    table.Row("PRelu", since=9, load=_load_prelu),
    table.Row("ThresholdedRelu", since=10, load=_load_thresholded),
    table.Row("HardSigmoid", since=6, ember_ops=(A.Hardsigmoid,), load=_load_hardsigmoid,
              export=lambda ctx, n: ctx.add("HardSigmoid", [_x(ctx, n)], alpha=1 / 6,
                                            beta=0.5)),
    table.Row("Clip", since=11, ember_ops=(A.Hardtanh,), note="hardtanh, relu6",
              export=lambda ctx, n: ctx.add("Clip", [_x(ctx, n), _k(ctx, n, n.args[1]),
                                                     _k(ctx, n, n.args[2])])),
    table.Row("Sigmoid", since=6, ember_ops=(A.SiLU,), note="silu as x * Sigmoid(x)",
              export=lambda ctx, n: ctx.add("Mul", [_x(ctx, n),
                                                    ctx.add("Sigmoid", [_x(ctx, n)])])),
    table.Row("Softplus", since=1, ember_ops=(A.LogSigmoid,), note="logsigmoid as -Softplus(-x)",
              export=lambda ctx, n: ctx.add("Neg", [ctx.add("Softplus", [
                  ctx.add("Neg", [_x(ctx, n)])])])),
    table.Row("Gelu", since=20, load=_load_gelu),
    table.Row("Erf", since=9, ember_ops=(A.GELU,), export=_export_gelu,
              note="gelu: Gelu at opset 20+, else composed with Erf or Tanh"),
    table.Row("Softmax", since=13, ember_ops=(A.Softmax,), export=_export_softmax("Softmax"),
              load=_load_softmax(A.softmax, False)),
    table.Row("Softmax", since=1, until=12, load=_load_softmax(A.softmax, True)),
    table.Row("LogSoftmax", since=13, ember_ops=(A.LogSoftmax,),
              export=_export_softmax("LogSoftmax"), load=_load_softmax(A.log_softmax, False)),
    table.Row("LogSoftmax", since=1, until=12, load=_load_softmax(A.log_softmax, True)),
)
