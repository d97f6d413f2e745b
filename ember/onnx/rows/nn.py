"""Layers: convolution, pooling, normalization, embedding."""

import numpy

from ember import creation
from ember.nn import functional as F
from ember.ops import conv as CV
from ember.ops import embedding as EM
from ember.ops import norm as N
from ember.ops import pad as pad_ops
from ember.ops import pool as P
from ember.ops import reduce as R
from ember.ops import shape as S
from ember.onnx import table
from ember.onnx.rows import _common as C
from ember.onnx.rows import shape as shape_rows

# ---- export -----------------------------------------------------------------------------------


def _ints(t):
    return [int(v) for v in t]


def _export_conv(ctx, node):
    x, w, b, g = node.args
    ins = [ctx.name(x), ctx.name(w)] + ([ctx.name(b)] if b is not None else [])
    attrs = dict(kernel_shape=_ints(g.k), strides=_ints(g.stride), dilations=_ints(g.dilation),
                 group=int(g.groups), pads=_ints(g.pad_lo) + _ints(g.pad_hi))
    if node.op is CV._ConvTranspose:
        if any(g.output_padding):
            attrs["output_padding"] = _ints(g.output_padding)
        return ctx.add("ConvTranspose", ins, **attrs)
    return ctx.add("Conv", ins, **attrs)


def _export_maxpool(ctx, node):
    x, g = node.args[0], node.args[1]
    attrs = dict(kernel_shape=_ints(g.k), strides=_ints(g.stride), pads=_ints(g.pad) * 2,
                 dilations=_ints(g.dilation), ceil_mode=int(g.ceil_mode))
    if not ctx.is_read(node.outputs[1]):
        return [ctx.add("MaxPool", [ctx.name(x)], **attrs), None]
    y, flat = ctx.add("MaxPool", [ctx.name(x)], n_out=2, **attrs)
    # ONNX counts positions over the whole (N, C, *spatial) input, torch within each plane:
    # the plane's index is the remainder by the plane size (taken at run time).
    sizes = ctx.add("Slice", [ctx.add("Shape", [ctx.name(x)]), ctx.ints([2]),
                              ctx.ints([len(x.shape)]), ctx.ints([0])])
    plane = C.reduce(ctx, "ReduceProd", sizes, [0], True)
    return [y, ctx.add("Mod", [flat, plane])]


def _export_avgpool(ctx, node):
    x, g = node.args
    if g.divisor_override is not None:
        raise shape_rows._unsupported(ctx, node, "avg_pool divisor_override")
    if any(d != 1 for d in g.dilation):
        raise shape_rows._unsupported(ctx, node, "a dilated avg_pool")
    return ctx.add("AveragePool", [ctx.name(x)], kernel_shape=_ints(g.k),
                   strides=_ints(g.stride), pads=_ints(g.pad) * 2, ceil_mode=int(g.ceil_mode),
                   count_include_pad=int(bool(g.count_include_pad)))


def _export_adaptive_max(ctx, node):
    raise shape_rows._unsupported(ctx, node, "adaptive max pooling with unequal windows "
                                  "(only sizes that divide the input export, as MaxPool)")


def _affine_input(ctx, t, n, fill):
    return ctx.name(t) if t is not None else ctx.const(numpy.full(n, fill, numpy.float32), "k")


def _export_normalize(ctx, node):
    x, w, b, mean, var, cfg = node.args
    a, c, length = x.shape
    xn = ctx.name(x)
    like = node.outputs[0]
    if not cfg.batch:  # BatchNorm in eval: the running statistics
        return ctx.add("BatchNormalization", [xn, _affine_input(ctx, w, c, 1.0),
                                              _affine_input(ctx, b, c, 0.0), ctx.name(mean),
                                              ctx.name(var)], epsilon=float(cfg.eps))
    if cfg.center and not cfg.per_channel and cfg.w_on == "L" and ctx.opset >= 17:
        return ctx.add("LayerNormalization", [xn, _affine_input(ctx, w, length, 1.0)] +
                       ([ctx.name(b)] if b is not None else []), axis=-1,
                       epsilon=float(cfg.eps))
    if cfg.center and not cfg.per_channel and cfg.w_on == "C":
        return ctx.add("InstanceNormalization", [xn, _affine_input(ctx, w, c, 1.0),
                                                 _affine_input(ctx, b, c, 0.0)],
                       epsilon=float(cfg.eps))
    # The general case (rms_norm, batch statistics): composed from reductions.
    axes = [0, 2] if cfg.per_channel else [2]
    xc = xn
    if cfg.center:
        xc = ctx.add("Sub", [xn, C.reduce(ctx, "ReduceMean", xn, axes, True)])
    var_ = C.reduce(ctx, "ReduceMean", ctx.add("Mul", [xc, xc]), axes, True)
    std = ctx.add("Sqrt", [ctx.add("Add", [var_, ctx.scalar(cfg.eps, like)])])
    y = ctx.add("Div", [xc, std])
    shape = [1, c, 1] if cfg.w_on == "C" else [1, 1, length]
    if w is not None:
        y = ctx.add("Mul", [y, ctx.add("Reshape", [ctx.name(w), ctx.ints(shape)])])
    if b is not None:
        y = ctx.add("Add", [y, ctx.add("Reshape", [ctx.name(b), ctx.ints(shape)])])
    return y


def _export_embedding(ctx, node):
    weight, index, padding_idx, scale = node.args
    if scale is not None:
        raise shape_rows._unsupported(ctx, node, "a scaled embedding")
    idx = ctx.name(index) if not isinstance(index, numpy.ndarray) else \
        ctx.const(index.astype(numpy.int64), "idx")
    return ctx.add("Gather", [ctx.name(weight), idx], axis=0)


def _pad_mode(idx, n):
    """(mode, before, after) when the index array ``idx`` pads a length-``n`` axis the way
    reflect/replicate/circular padding does, else None."""
    idx = numpy.asarray(idx).tolist()
    total = len(idx)
    for before in range(total - n + 1):
        after = total - n - before
        if idx[before:before + n] != list(range(n)):
            continue
        pos = numpy.arange(-before, n + after)
        candidates = {
            "reflect": numpy.abs(pos) if n == 1 else
            (n - 1) - numpy.abs((n - 1) - numpy.abs(pos) % (2 * n - 2)),
            "edge": numpy.clip(pos, 0, n - 1),
            "wrap": pos % n,
        }
        for mode, ref in candidates.items():
            if ref.tolist() == idx:
                return mode, before, after
    return None


def _export_index_gather(ctx, node):
    """Non-constant padding arrives as a gather with a fixed index per padded axis: Pad."""
    x, dim, idx = node.args
    n = len(x.shape)
    found = _pad_mode(idx, x.shape[dim])
    if found is None or found[0] == "wrap" and ctx.opset < 19:
        return shape_rows._export_gather(ctx, node)
    mode, before, after = found
    pads = [0] * (2 * n)
    pads[dim], pads[n + dim] = before, after
    return ctx.add("Pad", [ctx.name(x), ctx.ints(pads)], mode=mode)


table.register(
    table.Row("Conv", since=11, ember_ops=(CV._Conv,), export=_export_conv, load=None,
              note="conv1d/2d/3d, groups, dilation; padding modes via Pad"),
    table.Row("ConvTranspose", since=11, ember_ops=(CV._ConvTranspose,), export=_export_conv),
    table.Row("MaxPool", since=12, ember_ops=(P._MaxPool,), export=_export_maxpool,
              note="max_pool1d/2d/3d, adaptive_max_pool when the sizes divide"),
    table.Row("AveragePool", since=19, ember_ops=(P._AvgPool,), export=_export_avgpool,
              note="avg_pool1d/2d/3d"),
    table.Row("AveragePool", since=11, until=18, ember_ops=(P._AvgPool,),
              export=_export_avgpool),
    table.Row("MaxPool", since=12, ember_ops=(P._PlaneGather,), export=_export_adaptive_max),
    table.Row("BatchNormalization", since=15, ember_ops=(N._Normalize,),
              export=_export_normalize, note="batch/layer/instance/group/rms norm; "
              "LayerNormalization at opset 17+, InstanceNormalization, else composed"),
    table.Row("Gather", since=13, ember_ops=(EM._Embedding,), export=_export_embedding,
              note="nn.Embedding"),
    table.Row("Pad", since=11, ember_ops=(pad_ops._Gather,), export=_export_index_gather,
              note="reflect/replicate (circular at opset 19+) padding"),
)

# ---- load -------------------------------------------------------------------------------------


def _same_pads(auto_pad, in_sizes, kernel, strides, dilations):
    pads_lo, pads_hi = [], []
    for n, k, s, d in zip(in_sizes, kernel, strides, dilations):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        small = total // 2
        lo, hi = (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)
        pads_lo.append(lo)
        pads_hi.append(hi)
    return pads_lo + pads_hi


def _geometry(x, w_shape, kernel_shape, strides, pads, dilations, auto_pad):
    nd = x.ndim - 2
    kernel = list(kernel_shape) if kernel_shape is not None else list(w_shape[2:])
    strides = list(strides) if strides is not None else [1] * nd
    dilations = list(dilations) if dilations is not None else [1] * nd
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = _same_pads(auto_pad, x.shape[2:], kernel, strides, dilations)
    elif pads is None or auto_pad == "VALID":
        pads = [0] * (2 * nd)
    return nd, kernel, strides, list(pads), dilations


def _pre_pad(x, pads, nd, value=0.0):
    """Asymmetric pads: pad first (torch-style pad list starts at the last dim)."""
    lo, hi = pads[:nd], pads[nd:]
    if lo == hi:
        return x, lo
    torch_pad = []
    for d in range(nd - 1, -1, -1):
        torch_pad += [lo[d], hi[d]]
    return pad_ops.pad(x, tuple(torch_pad), "constant", value), [0] * nd


def _load_conv(ctx, node, x, w, b=None, auto_pad="NOTSET", dilations=None, group=1,
               kernel_shape=None, pads=None, strides=None):
    nd, _, strides, pads, dilations = _geometry(x, w.shape, kernel_shape, strides, pads,
                                                 dilations, auto_pad)
    x, pad = _pre_pad(x, pads, nd)
    fn = {1: CV.conv1d, 2: CV.conv2d, 3: CV.conv3d}[nd]
    return fn(x, w, b, tuple(strides), tuple(pad), tuple(dilations), group)


def _load_conv_transpose(ctx, node, x, w, b=None, auto_pad="NOTSET", dilations=None, group=1,
                         kernel_shape=None, output_padding=None, output_shape=None, pads=None,
                         strides=None):
    nd = x.ndim - 2
    strides = list(strides or [1] * nd)
    dilations = list(dilations or [1] * nd)
    pads = list(pads or [0] * (2 * nd))
    out_pad = list(output_padding or [0] * nd)
    if output_shape is not None or auto_pad not in ("NOTSET", "VALID") or \
            pads[:nd] != pads[nd:]:
        raise ctx.error("ConvTranspose: output_shape, auto_pad and asymmetric pads are not "
                        "supported; export with explicit symmetric pads")
    fn = {1: CV.conv_transpose1d, 2: CV.conv_transpose2d, 3: CV.conv_transpose3d}[nd]
    return fn(x, w, b, tuple(strides), tuple(pads[:nd]), tuple(out_pad), group, tuple(dilations))


def _load_maxpool(ctx, node, x, auto_pad="NOTSET", ceil_mode=0, dilations=None,
                  kernel_shape=None, pads=None, storage_order=0, strides=None):
    want_indices = len(node.output) > 1 and bool(node.output[1])
    nd, kernel, strides, pads, dilations = _geometry(x, None, kernel_shape, strides, pads,
                                                     dilations, auto_pad)
    if want_indices and pads[:nd] != pads[nd:]:
        raise ctx.error("MaxPool: the Indices output is supported with symmetric pads only")
    x, pad = _pre_pad(x, pads, nd, float("-inf"))
    fn = {1: P.max_pool1d, 2: P.max_pool2d, 3: P.max_pool3d}[nd]
    out = fn(x, tuple(kernel), tuple(strides), tuple(pad), tuple(dilations), bool(ceil_mode),
             want_indices)
    if not want_indices:
        return out
    y, idx = out
    sizes = list(x.shape[2:])
    if storage_order:  # column-major: the first spatial axis varies fastest
        rem, flat, stride = idx, None, 1
        coords = []
        for size in reversed(sizes):
            coords.append(rem % size)
            rem = rem // size
        for coord, size in zip(reversed(coords), sizes):
            flat = coord * stride if flat is None else flat + coord * stride
            stride *= size
        idx = flat
    # ember's indices count within each (n, c) plane; ONNX's over the whole input.
    n, c = x.shape[:2]
    plane = int(numpy.prod(sizes))
    offset = numpy.arange(n * c, dtype=numpy.int64).reshape((n, c) + (1,) * nd) * plane
    return y, idx + creation.tensor(offset)


def _load_avgpool(ctx, node, x, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0,
                  dilations=None, kernel_shape=None, pads=None, strides=None):
    nd, kernel, strides, pads, dilations = _geometry(x, None, kernel_shape, strides, pads,
                                                     dilations, auto_pad)
    if any(d != 1 for d in dilations):
        raise ctx.error("AveragePool: dilations are not supported")
    if pads[:nd] != pads[nd:]:
        raise ctx.error("AveragePool: asymmetric pads are not supported")
    fn = {1: P.avg_pool1d, 2: P.avg_pool2d, 3: P.avg_pool3d}[nd]
    return fn(x, tuple(kernel), tuple(strides), tuple(pads[:nd]), bool(ceil_mode),
              bool(count_include_pad))


def _load_global(fn):
    def load(ctx, node, x):
        return fn(x, tuple(range(2, x.ndim)), True)

    return load


def _load_batchnorm(ctx, node, x, scale, b, mean, var, epsilon=1e-5, momentum=0.9,
                    training_mode=0, spatial=1, is_test=None, consumed_inputs=None):
    if training_mode:
        raise ctx.error("BatchNormalization: training_mode=1 is not supported")
    return F.batch_norm(x, mean, var, scale, b, False, 0.1, epsilon)


def _load_layernorm(ctx, node, x, scale, b=None, axis=-1, epsilon=1e-5, stash_type=1):
    if len(node.output) > 1 and any(node.output[1:]):
        raise ctx.error("LayerNormalization: the Mean and InvStdDev outputs are not supported")
    a = axis % x.ndim
    return F.layer_norm(x, tuple(x.shape[a:]), scale, b, epsilon)


def _load_instancenorm(ctx, node, x, scale, b, epsilon=1e-5):
    return F.instance_norm(x, None, None, scale, b, True, 0.1, epsilon)


def _load_lrn(ctx, node, x, size, alpha=1e-4, beta=0.75, bias=1.0):
    sq = x * x
    half = (size - 1) // 2
    padded = pad_ops.pad(sq, (0, 0) * (x.ndim - 2) + (half, size - 1 - half))
    windows = [S.narrow(padded, 1, i, x.shape[1]) for i in range(size)]
    total = windows[0]
    for wdw in windows[1:]:
        total = total + wdw
    return x / (total * (alpha / size) + bias) ** beta


table.register(
    table.Row("Conv", since=1, load=_load_conv),
    table.Row("ConvTranspose", since=1, load=_load_conv_transpose),
    table.Row("MaxPool", since=1, load=_load_maxpool),
    table.Row("AveragePool", since=1, load=_load_avgpool),
    table.Row("GlobalAveragePool", since=1, load=_load_global(R.mean)),
    table.Row("GlobalMaxPool", since=1, load=_load_global(R.amax)),
    table.Row("BatchNormalization", since=1, load=_load_batchnorm),
    table.Row("LayerNormalization", since=17, load=_load_layernorm),
    table.Row("InstanceNormalization", since=1, load=_load_instancenorm),
    table.Row("LRN", since=1, load=_load_lrn),
)

