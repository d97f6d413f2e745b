"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019)."""

from ember.optim import adam


class AdamW(adam.Adam):
    """AdamW (PyTorch's ``torch.optim.AdamW``): Adam whose weight decay shrinks the weights
    directly instead of being added to the gradient::

        param *= 1 - lr * weight_decay
        (then the Adam update, see ``ember.optim.Adam``)

    Args are Adam's, except that ``weight_decay`` defaults to 1e-2 and decay is always
    decoupled.
    """

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)
