"""MultiheadAttention, with PyTorch's parameters (names, shapes, init) and call signature.

The math lives in ``ember.ops.attention`` (one fused attention node per call); this file holds
the parameters and the argument checking that names the layer.
"""

from ember import creation, errors
from ember.nn import init
from ember.nn import module as _module
from ember.nn.layers import linear as _linear
from ember.nn.parameter import Parameter
from ember.ops import attention as _attention

__all__ = ["MultiheadAttention"]


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"MultiheadAttention: {name} must be a positive integer. "
                         f"Received: {name}={value!r}")
    return value


class MultiheadAttention(_module.Module):
    """Attend from a query sequence over a key/value sequence with ``num_heads`` parallel
    heads: ``Concat(head_1, ..., head_h) W_O`` with ``head_i = softmax(Q W_i^Q (K W_i^K)^T /
    sqrt(d)) V W_i^V``.

    Args:
        embed_dim (int): model width ``E`` (query size and output size).
        num_heads (int): parallel heads; must divide ``embed_dim``.
        dropout (float): dropout on the attention weights in training. Default: 0.0.
        bias (bool): biases in the input and output projections. Default: True.
        add_bias_kv (bool): learn a bias key and value appended to the sequence. Default: False.
        add_zero_attn (bool): append a zero key and value. Default: False.
        kdim, vdim (int, optional): key and value sizes; default ``embed_dim``. When they
            differ from it, the projections are ``q_proj_weight``, ``k_proj_weight`` and
            ``v_proj_weight`` instead of the packed ``in_proj_weight``.
        batch_first (bool): inputs and outputs are ``(N, L, E)`` instead of ``(L, N, E)``.
            Default: False.
        device, dtype: where and in which dtype to create the parameters.

    Shape:
        query ``(L, N, E)`` / ``(N, L, E)`` with batch_first / unbatched ``(L, E)``; key
        ``(S, N, kdim)``, value ``(S, N, vdim)`` likewise. Returns ``attn_output`` like the
        query and, with ``need_weights``, ``attn_weights`` ``(N, L, S)`` averaged over heads
        or ``(N, num_heads, L, S)``.

    Masks: ``key_padding_mask`` ``(N, S)`` and ``attn_mask`` ``(L, S)`` or
    ``(N * num_heads, L, S)``; bool masks are True where attention is NOT allowed, float masks
    are added to the scores. A query whose keys are all masked gets zero weights (PyTorch's
    need_weights path gives NaN there).

    Example::

        >>> mha = nn.MultiheadAttention(16, 4, batch_first=True)
        >>> x = ember.randn(2, 5, 16)
        >>> out, w = mha(x, x, x)
        >>> out.shape, w.shape
        (ember.Size([2, 5, 16]), ember.Size([2, 5, 5]))
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        embed_dim = _positive("embed_dim", embed_dim)
        num_heads = _positive("num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim {embed_dim} is not divisible by num_heads "
                f"{num_heads}; pick num_heads among the divisors of embed_dim"
            )
        if isinstance(dropout, bool) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be between 0 and 1. "
                             f"Received: dropout={dropout!r}")
        self.embed_dim = embed_dim
        self.kdim = _positive("kdim", kdim) if kdim is not None else embed_dim
        self.vdim = _positive("vdim", vdim) if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads

        def empty(*shape):
            return Parameter(creation.empty(*shape, device=device, dtype=dtype))

        if self._qkv_same_embed_dim:
            self.in_proj_weight = empty(3 * embed_dim, embed_dim)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = empty(embed_dim, embed_dim)
            self.k_proj_weight = empty(embed_dim, self.kdim)
            self.v_proj_weight = empty(embed_dim, self.vdim)
        if bias:
            self.in_proj_bias = empty(3 * embed_dim)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = _linear.Linear(embed_dim, embed_dim, bias=bias, device=device,
                                       dtype=dtype)
        if add_bias_kv:
            self.bias_k = empty(1, 1, embed_dim)
            self.bias_v = empty(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        """PyTorch's init: Xavier-uniform projections, zero biases, Xavier-normal bias_k/v;
        out_proj.weight keeps Linear's default."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        """Returns ``(attn_output, attn_weights)``; ``attn_weights`` is None unless
        ``need_weights``. See the class docstring for shapes and masks."""
        op = self._layer_label()
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not hasattr(t, "_data"):
                raise errors.DTypeError(f"{op}: expected {name} to be a Tensor, got "
                                        f"{type(t).__name__}")
        self._check_widths(op, query, key, value)
        return _attention._mha(
            op, query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
            self.out_proj.weight, self.out_proj.bias, self.training, key_padding_mask,
            need_weights, attn_mask, not self._qkv_same_embed_dim, self.q_proj_weight,
            self.k_proj_weight, self.v_proj_weight, average_attn_weights, is_causal,
            self.batch_first,
        )

    def _check_widths(self, op, query, key, value):
        """The most common mistake first: a last dim that does not match the layer."""
        for name, t, want, arg in (("query", query, self.embed_dim, "embed_dim"),
                                   ("key", key, self.kdim, "kdim"),
                                   ("value", value, self.vdim, "vdim")):
            if t.ndim and t.shape[-1] != want:
                raise errors.ShapeError(
                    f"{op}: expected {name} with last dim {arg}={want}, got {name} of shape "
                    f"{errors.shape_str(t.shape)}"
                    + ("" if name == "query" else "; pass kdim/vdim for keys and values of "
                       "another width")
                )

    def extra_repr(self):
        extra = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.dropout:
            extra += f", dropout={self.dropout}"
        if not self._qkv_same_embed_dim:
            extra += f", kdim={self.kdim}, vdim={self.vdim}"
        if self.batch_first:
            extra += ", batch_first=True"
        return extra
