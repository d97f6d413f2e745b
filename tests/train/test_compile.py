"""compile: names and objects for optimizer, loss and metrics; unknown names; fit before
compile."""

import pytest

import ember
from ember import nn, optim
from ember.train import registry
from tests.train import _helpers


@pytest.mark.parametrize("name, cls, lr", [
    ("sgd", optim.SGD, 1e-2), ("adam", optim.Adam, 1e-3), ("adamw", optim.AdamW, 1e-3),
    ("rmsprop", optim.RMSprop, 1e-3), ("Adam", optim.Adam, 1e-3),
])
def test_optimizer_names(name, cls, lr):
    model = _helpers.mlp()
    model.compile(optimizer=name, loss="cross_entropy")
    assert type(model.optimizer) is cls
    assert model.optimizer.defaults["lr"] == lr


def test_objects_are_used_as_given_and_bound_at_fit():
    model = _helpers.mlp()
    opt = optim.SGD(lr=0.05, momentum=0.9)
    metric = ember.metrics.Accuracy()
    loss = nn.CrossEntropyLoss()
    model.compile(optimizer=opt, loss=loss, metrics=[metric])
    assert model.optimizer is opt and not opt.is_bound
    x, y = _helpers.blobs(64)
    model.fit(x, y, epochs=1, verbose=0)
    assert opt.is_bound
    assert {id(p) for p in opt.param_groups[0]["params"]} == {id(p) for p in model.parameters()}
    assert metric.total == 64  # the same instance collected the epoch


@pytest.mark.parametrize("loss", ["mse", "mae", "cross_entropy", "sparse_categorical_crossentropy",
                                  "categorical_crossentropy", "binary_crossentropy", "huber"])
def test_loss_names_resolve(loss):
    assert isinstance(registry.get_loss(loss), registry.Loss)


def test_metric_names():
    model = _helpers.mlp()
    model.compile("adam", "cross_entropy", metrics=["accuracy", "top_k_accuracy"])
    x, y = _helpers.blobs(64)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "accuracy", "top_k_accuracy"}
    assert logs["top_k_accuracy"] == 1.0  # top 5 of 3 classes


@pytest.mark.parametrize("kwargs, words", [
    ({"optimizer": "adamm", "loss": "mse"}, ["unknown optimizer 'adamm'", "adam", "sgd"]),
    ({"optimizer": "adam", "loss": "msee"}, ["unknown loss 'msee'", "cross_entropy", "mse"]),
    ({"optimizer": "adam", "loss": "mse", "metrics": ["acuracy"]},
     ["unknown metric 'acuracy'", "accuracy"]),
])
def test_unknown_names_list_the_known_ones(kwargs, words):
    with pytest.raises(ValueError) as info:
        _helpers.mlp().compile(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_strings_never_reach_outside_the_registry():
    # A dotted path or an import-looking name is just an unknown name.
    for name in ("os.system", "ember.nn.functional.cross_entropy", "__import__"):
        with pytest.raises(ValueError, match="unknown loss"):
            registry.get_loss(name)
        with pytest.raises(ValueError, match="unknown optimizer"):
            registry.get_optimizer(name)


def test_fit_before_compile_says_to_compile():
    x, y = _helpers.blobs(16)
    with pytest.raises(RuntimeError, match=r"not compiled; call model.compile"):
        _helpers.mlp().fit(x, y)
    with pytest.raises(RuntimeError, match="compile"):
        _helpers.mlp().evaluate(x, y)


def test_compile_without_loss_cannot_fit():
    model = _helpers.mlp()
    model.compile("adam")
    x, y = _helpers.blobs(16)
    with pytest.raises(RuntimeError, match="without a loss"):
        model.fit(x, y, verbose=0)
