"""SequentialLR: hand the optimizer from one scheduler to the next at given milestones."""

import bisect

from ember.optim import optimizer as _optimizer
from ember.optim.lr_scheduler import base, plateau


class SequentialLR(base.LRScheduler):
    """Run ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` (restarted from
    its own epoch 0) until ``milestones[1]``, and so on.

    Example: warm up linearly for 5 epochs, then anneal::

        warm = LinearLR(opt, start_factor=0.1, total_iters=5)
        cool = CosineAnnealingLR(opt, T_max=95)
        sched = SequentialLR(opt, [warm, cool], milestones=[5])
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        name = "SequentialLR"
        if len(schedulers) < 1:
            raise _optimizer.OptimizerError(f"{name}: needs at least one scheduler, got none")
        for i, s in enumerate(schedulers):
            if isinstance(s, plateau.ReduceLROnPlateau):
                raise _optimizer.OptimizerError(
                    f"{name}: scheduler {i} is a ReduceLROnPlateau, which needs a metric in "
                    "step() and cannot be sequenced"
                )
            if getattr(s, "optimizer", None) is not optimizer:
                raise _optimizer.OptimizerError(
                    f"{name}: scheduler {i} ({type(s).__name__}) drives a different optimizer; "
                    "all schedulers must share the one given to SequentialLR"
                )
        if len(milestones) != len(schedulers) - 1:
            raise _optimizer.OptimizerError(
                f"{name}: expected {len(schedulers) - 1} milestones for {len(schedulers)} "
                f"schedulers, got {len(milestones)}"
            )
        self._schedulers = list(schedulers)
        self._milestones = list(milestones)
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer

        # Building each scheduler took a step; undo them and start again from the first.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for s in self._schedulers:
            _undo_step(s)
        first = self._schedulers[bisect.bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self):
        self.last_epoch += 1
        idx = bisect.bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)  # a new scheduler starts at its epoch 0
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        saved = state_dict.pop("_schedulers")
        self.__dict__.update(state_dict)
        for s, sd in zip(self._schedulers, saved):
            s.load_state_dict(sd)


def _undo_step(scheduler):
    if hasattr(scheduler, "_schedulers"):
        for s in scheduler._schedulers:
            _undo_step(s)
    else:
        scheduler.last_epoch -= 1
