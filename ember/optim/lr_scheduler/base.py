"""LRScheduler: the base of the learning-rate schedules.

A scheduler rewrites ``group["lr"]`` of its optimizer's param groups once per ``step()``. It
follows PyTorch's convention: building the scheduler already takes step 0 (so the optimizer
holds the schedule's first value), and ``step()`` is called after ``optimizer.step()``, usually
once per epoch. Most schedules are written recursively, as PyTorch writes them: the next lr is
computed from the lr now in the group, so several schedulers can be chained on one optimizer.
"""

from ember.optim import optimizer as _optimizer


class LRScheduler:
    """Base class: subclasses implement ``get_lr()`` (the lrs at ``self.last_epoch``) and may
    implement ``_closed_form_lr()`` (the same, from ``base_lrs`` alone) for ``step(epoch)``.

    Attributes:
        optimizer: the optimizer whose lrs are set.
        base_lrs: each group's ``initial_lr`` (its lr when the first scheduler was attached).
        last_epoch: the index of the last step taken (0 right after construction).
    """

    def __init__(self, optimizer, last_epoch=-1):
        check_optimizer(self, optimizer)
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise _optimizer.OptimizerError(
                    f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr', needed to "
                    f"resume at last_epoch={last_epoch}; load the optimizer's state dict first, "
                    "or start with last_epoch=-1"
                )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """Take step 0: set the schedule's first lrs."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def get_last_lr(self):
        """The lrs the last step set, one per param group."""
        return self._last_lr

    def step(self, epoch=None):
        """Advance one step (or jump to ``epoch``) and write the new lrs into the optimizer."""
        self._step_count += 1
        self._update_lr(epoch)

    def _update_lr(self, epoch=None):
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed = getattr(self, "_closed_form_lr", None)
            values = closed() if closed is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _group_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """Everything but the optimizer, as a dict of plain values (lists, numbers, strings)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


def check_optimizer(scheduler, optimizer):
    name = type(scheduler).__name__
    if not isinstance(optimizer, _optimizer.Optimizer):
        raise _optimizer.OptimizerError(
            f"{name}: expected an ember.optim optimizer, got {type(optimizer).__name__}"
        )
    if not optimizer.param_groups:
        raise _optimizer.UnboundOptimizerError(
            f"{name}: the optimizer has no parameters yet; bind it (opt.bind(params) or "
            "model.compile) before attaching a scheduler"
        )


def per_group(scheduler, name, value):
    """``value`` repeated for each param group, or a list checked to have one per group."""
    groups = scheduler.optimizer.param_groups
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise _optimizer.OptimizerError(
                f"{type(scheduler).__name__}: expected {len(groups)} values for {name} (one "
                f"per param group), got {len(value)}"
            )
        return list(value)
    return [value] * len(groups)


def set_momentum(group, use_beta1, momentum):
    """Write a cycled momentum: ``betas[0]`` for Adam-like optimizers, else ``momentum``."""
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


def momentum_kind(scheduler, optimizer):
    """True if the optimizer has betas (cycle beta1), False if momentum; error otherwise."""
    if "betas" in optimizer.defaults:
        return True
    if "momentum" in optimizer.defaults:
        return False
    raise _optimizer.OptimizerError(
        f"{type(scheduler).__name__}: cycle_momentum=True needs an optimizer with 'momentum' "
        f"or 'betas', and {type(optimizer).__name__} has neither; pass cycle_momentum=False"
    )
