"""ember.optim: optimizers and learning-rate schedules, named and behaving like torch.optim.

    opt = ember.optim.Adam(model.parameters(), lr=1e-3)
    sched = ember.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    for batch in data:
        opt.zero_grad()
        loss_fn(model(batch)).backward()
        opt.step()
    sched.step()

An optimizer may also be created without parameters (``ember.optim.Adam(lr=1e-3)``) and
bound later with ``opt.bind(params)``, which is what ``model.compile(optimizer=...)`` does.
"""

from ember.optim import lr_scheduler
from ember.optim.adadelta import Adadelta
from ember.optim.adagrad import Adagrad
from ember.optim.adam import Adam
from ember.optim.adamax import Adamax
from ember.optim.adamw import AdamW
from ember.optim.lbfgs import LBFGS
from ember.optim.nadam import NAdam
from ember.optim.optimizer import Optimizer, OptimizerError, UnboundOptimizerError
from ember.optim.radam import RAdam
from ember.optim.rmsprop import RMSprop
from ember.optim.sgd import SGD

__all__ = [
    "Adadelta", "Adagrad", "Adam", "Adamax", "AdamW", "LBFGS", "NAdam", "Optimizer",
    "OptimizerError", "RAdam", "RMSprop", "SGD", "UnboundOptimizerError", "lr_scheduler",
]
