"""Transformer layers and stacks with PyTorch's names, arguments and parameter layout:
TransformerEncoderLayer, TransformerEncoder, TransformerDecoderLayer, TransformerDecoder,
Transformer.

A state_dict saved from ``torch.nn.Transformer*`` loads as it is. PyTorch's nested-tensor
fast path is not reproduced: ``enable_nested_tensor`` is accepted and ignored, so outputs at
padded positions keep their computed values instead of being zeroed.
"""

import copy
import math

from ember import creation, errors
from ember.nn import functional as F
from ember.nn import init
from ember.nn import module as _module
from ember.nn.layers import attention as _attention
from ember.nn.layers import container as _container
from ember.nn.layers import dropout as _dropout
from ember.nn.layers import linear as _linear
from ember.nn.layers import norm as _norm

__all__ = [
    "TransformerEncoderLayer", "TransformerEncoder", "TransformerDecoderLayer",
    "TransformerDecoder", "Transformer",
]


def _activation(layer, activation):
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    if callable(activation) and not isinstance(activation, str):
        return activation
    raise ValueError(f"{layer}: activation should be 'relu', 'gelu' or a callable. "
                     f"Received: activation={activation!r}")


def _expand(layer, x):
    """The feed-forward block's first half, ``activation(linear1(x))``: one node when the
    activation is ReLU and linear1 a plain Linear without hooks (Linear._forward_relu)."""
    linear1 = layer.linear1
    if layer.activation is F.relu and type(linear1) is _linear.Linear and \
            not _container._has_hooks(linear1):
        return linear1._forward_relu(x)
    return layer.activation(linear1(x))


def _drop(module, x):
    """Dropout only where it changes something (training with p > 0): F.dropout with p == 0
    would still draw and apply a mask of ones."""
    if module.training and module.p > 0:
        return module(x)
    return x


def _check_width(layer, name, x, d_model):
    if not hasattr(x, "_data"):
        raise errors.DTypeError(f"{layer}: expected {name} to be a Tensor, got "
                                f"{type(x).__name__}")
    if x.ndim not in (2, 3) or x.shape[-1] != d_model:
        raise errors.ShapeError(
            f"{layer}: expected {name} of shape (S, N, {d_model}), (N, S, {d_model}) with "
            f"batch_first, or unbatched (S, {d_model}); got {errors.shape_str(x.shape)}"
        )


def generate_square_subsequent_mask(sz, device=None, dtype=None):
    """A float mask ``(sz, sz)`` with -inf above the diagonal and 0 elsewhere: position i
    attends to positions 0..i."""
    mask = creation.full((sz, sz), -math.inf, device=device, dtype=dtype)
    return mask.triu(1)


class TransformerEncoderLayer(_module.Module):
    """Self-attention and a feed-forward block, each with a residual connection and a
    LayerNorm (after the residual, or before the block with ``norm_first``).

    Args:
        d_model (int): model width. nhead (int): attention heads.
        dim_feedforward (int): hidden width of the feed-forward block. Default: 2048.
        dropout (float): Default: 0.1. activation: "relu", "gelu" or a callable.
        layer_norm_eps (float): Default: 1e-5. batch_first (bool): Default: False.
        norm_first (bool): pre-norm instead of post-norm. Default: False.
        bias (bool): biases in the linear and LayerNorm layers. Default: True.

    Shape:
        src: ``(S, N, E)``, ``(N, S, E)`` with batch_first, or unbatched ``(S, E)``; the
        output has the same shape.

    Example::

        >>> layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, batch_first=True)
        >>> layer(ember.randn(2, 10, 16)).shape
        ember.Size([2, 10, 16])
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = _attention.MultiheadAttention(d_model, nhead, dropout=dropout,
                                                       bias=bias, batch_first=batch_first, **kw)
        self.linear1 = _linear.Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = _dropout.Dropout(dropout)
        self.linear2 = _linear.Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = _norm.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = _norm.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = _dropout.Dropout(dropout)
        self.dropout2 = _dropout.Dropout(dropout)
        self.activation = _activation("TransformerEncoderLayer", activation)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        _check_width(self._layer_label(), "src", src, self.self_attn.embed_dim)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=bool(is_causal))[0]
        return _drop(self.dropout1, x)

    def _ff_block(self, x):
        # NOTE (measured with timeit, one thread, W5's (1024, 512) hidden activations; tried
        # and dropped): one fused linear1 + ReLU + linear2 node would save the ReLU's fresh
        # buffers (max in place 190 vs 222 us, backward in place 380 vs 418 us) and, with
        # ones-vector products for the bias gradients (60 vs 115 us, 10 vs 39 us), ~0.15 ms
        # a layer (~0.5% of a W5 step), while bypassing the submodules' hooks and repeating
        # Linear's backward. The residual adds (~140 us each in a step) would need an
        # in-place, aliasing node for a similar gain. linear1 + ReLU alone is one node
        # (_expand), the ReLU applied in the product's last pass.
        x = self.linear2(_drop(self.dropout, _expand(self, x)))
        return _drop(self.dropout2, x)


class TransformerDecoderLayer(_module.Module):
    """Self-attention over the target, attention over the encoder's ``memory``, and a
    feed-forward block, each with a residual connection and a LayerNorm.

    Arguments as TransformerEncoderLayer.

    Shape:
        tgt: ``(T, N, E)`` (``(N, T, E)`` with batch_first); memory: ``(S, N, E)``; the
        output is shaped like tgt.

    Example::

        >>> layer = nn.TransformerDecoderLayer(d_model=16, nhead=4, batch_first=True)
        >>> layer(ember.randn(2, 7, 16), ember.randn(2, 10, 16)).shape
        ember.Size([2, 7, 16])
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = _attention.MultiheadAttention(d_model, nhead, dropout=dropout,
                                                       bias=bias, batch_first=batch_first, **kw)
        self.multihead_attn = _attention.MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.linear1 = _linear.Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = _dropout.Dropout(dropout)
        self.linear2 = _linear.Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = _norm.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = _norm.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = _norm.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = _dropout.Dropout(dropout)
        self.dropout2 = _dropout.Dropout(dropout)
        self.dropout3 = _dropout.Dropout(dropout)
        self.activation = _activation("TransformerDecoderLayer", activation)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        label = self._layer_label()
        _check_width(label, "tgt", tgt, self.self_attn.embed_dim)
        _check_width(label, "memory", memory, self.self_attn.embed_dim)
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask,
                                   tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask,
                                    memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask,
                                              tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask,
                                               memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           is_causal=bool(is_causal), need_weights=False)[0]
        return _drop(self.dropout1, x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask,
                                key_padding_mask=key_padding_mask,
                                is_causal=bool(is_causal), need_weights=False)[0]
        return _drop(self.dropout2, x)

    def _ff_block(self, x):
        x = self.linear2(_drop(self.dropout, _expand(self, x)))
        return _drop(self.dropout3, x)


def _clones(layer, num_layers, who):
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"{who}: num_layers must be a positive integer. "
                         f"Received: num_layers={num_layers!r}")
    return _container.ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])


class TransformerEncoder(_module.Module):
    """A stack of ``num_layers`` copies of ``encoder_layer`` (independent parameters),
    followed by ``norm`` if given.

    Args:
        encoder_layer (TransformerEncoderLayer): the layer to copy.
        num_layers (int): how many copies.
        norm (Module, optional): applied to the last layer's output.
        enable_nested_tensor (bool): accepted for PyTorch compatibility and ignored.
        mask_check (bool): accepted and ignored.

    Example::

        >>> layer = nn.TransformerEncoderLayer(d_model=16, nhead=4)
        >>> nn.TransformerEncoder(layer, num_layers=2)(ember.randn(10, 3, 16)).shape
        ember.Size([10, 3, 16])
    """

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True,
                 mask_check=True):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers, "TransformerEncoder")
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        output = src
        for mod in self.layers:
            output = mod(output, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                         is_causal=bool(is_causal) and mask is not None)
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(_module.Module):
    """A stack of ``num_layers`` copies of ``decoder_layer``, followed by ``norm`` if given.

    Example::

        >>> layer = nn.TransformerDecoderLayer(d_model=16, nhead=4)
        >>> dec = nn.TransformerDecoder(layer, num_layers=2)
        >>> dec(ember.randn(7, 3, 16), ember.randn(10, 3, 16)).shape
        ember.Size([7, 3, 16])
    """

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers, "TransformerDecoder")
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        output = tgt
        for mod in self.layers:
            output = mod(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                         tgt_key_padding_mask=tgt_key_padding_mask,
                         memory_key_padding_mask=memory_key_padding_mask,
                         tgt_is_causal=bool(tgt_is_causal) and tgt_mask is not None,
                         memory_is_causal=memory_is_causal)
        if self.norm is not None:
            output = self.norm(output)
        return output


class Transformer(_module.Module):
    """The encoder-decoder Transformer of "Attention Is All You Need": an encoder stack and a
    decoder stack, each ending in a LayerNorm; every weight matrix is Xavier-uniform.

    Args:
        d_model (int): Default: 512. nhead (int): Default: 8.
        num_encoder_layers, num_decoder_layers (int): Default: 6 each.
        dim_feedforward (int): Default: 2048. dropout (float): Default: 0.1.
        activation: "relu", "gelu" or a callable. custom_encoder, custom_decoder: modules to
        use instead of the stacks. layer_norm_eps, batch_first, norm_first, bias: as in
        TransformerEncoderLayer.

    Example::

        >>> model = nn.Transformer(d_model=16, nhead=4, num_encoder_layers=1,
        ...                        num_decoder_layers=1, dim_feedforward=32)
        >>> model(ember.randn(10, 2, 16), ember.randn(7, 2, 16)).shape
        ember.Size([7, 2, 16])
    """

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                 dim_feedforward=2048, dropout=0.1, activation="relu", custom_encoder=None,
                 custom_decoder=None, layer_norm_eps=1e-5, batch_first=False, norm_first=False,
                 bias=True, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        layer_kw = dict(dim_feedforward=dim_feedforward, dropout=dropout,
                        activation=activation, layer_norm_eps=layer_norm_eps,
                        batch_first=batch_first, norm_first=norm_first, bias=bias, **kw)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(d_model, nhead, **layer_kw)
            norm = _norm.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
            self.encoder = TransformerEncoder(layer, num_encoder_layers, norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            layer = TransformerDecoderLayer(d_model, nhead, **layer_kw)
            norm = _norm.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
            self.decoder = TransformerDecoder(layer, num_decoder_layers, norm)
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        b = 0 if self.batch_first else 1
        if src.ndim == 3 and tgt.ndim == 3 and src.shape[b] != tgt.shape[b]:
            raise errors.ShapeError(
                f"Transformer: src {errors.shape_str(src.shape)} and tgt "
                f"{errors.shape_str(tgt.shape)} must have the same batch size (dim {b})"
            )
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise errors.ShapeError(
                f"Transformer: the last dim of src {errors.shape_str(src.shape)} and tgt "
                f"{errors.shape_str(tgt.shape)} must be d_model={self.d_model}"
            )
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """A float ``(sz, sz)`` mask with -inf above the diagonal (causal attention)."""
        return generate_square_subsequent_mask(sz, device=device, dtype=dtype)
