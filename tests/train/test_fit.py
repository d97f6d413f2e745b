"""fit / evaluate / predict / train_on_batch / test_on_batch on small synthetic data."""

import numpy
import pytest

import ember
import ember.nn.functional as F
from ember import data, nn, optim
from ember.train import callbacks
from tests.train import _helpers


def _compiled(out=3, **kwargs):
    model = _helpers.mlp(out)
    kwargs.setdefault("optimizer", optim.Adam(lr=0.01))
    kwargs.setdefault("loss", "cross_entropy")
    kwargs.setdefault("metrics", ["accuracy"])
    return model.compile(**kwargs)


def test_fit_separates_blobs():
    x, y = _helpers.blobs(400)
    model = _compiled()
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.95
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy > 0.95
    assert model.history is history


def test_fit_accepts_tensors_and_float64_arrays():
    x, y = _helpers.blobs(128)
    model = _compiled()
    model.fit(ember.tensor(x), ember.tensor(y), epochs=2, verbose=0)
    model.fit(x.astype(numpy.float64), y, epochs=2, verbose=0)  # cast to the model's float32
    assert next(model.parameters()).dtype == numpy.float32


@pytest.mark.parametrize("wrap", ["dataset", "loader"])
def test_fit_with_dataset_and_dataloader(wrap):
    x, y = _helpers.blobs(300)
    dataset = data.TensorDataset(ember.tensor(x), ember.tensor(y))
    source = dataset if wrap == "dataset" else data.DataLoader(dataset, batch_size=32,
                                                               shuffle=True)
    model = _compiled()
    history = model.fit(source, epochs=12, batch_size=32, verbose=0, validation_data=dataset)
    assert history.history["accuracy"][-1] > 0.95
    assert history.history["val_accuracy"][-1] > 0.95
    assert model.evaluate(source, verbose=0)[1] > 0.95


def test_validation_split_and_validation_data_log_val_metrics():
    x, y = _helpers.blobs(100)
    model = _compiled()
    history = model.fit(x, y, epochs=3, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in history.history.values())
    # validation_split holds out the last 20%: their loss is what evaluate reports on them.
    assert history.history["val_loss"][-1] == pytest.approx(
        model.evaluate(x[80:], y[80:], verbose=0)[0], rel=1e-5)
    history = model.fit(x[:80], y[:80], epochs=2, validation_data=(x[80:], y[80:]), verbose=0)
    assert len(history.history["val_accuracy"]) == 2


def test_validation_split_rejects_loaders():
    x, y = _helpers.blobs(40)
    loader = data.DataLoader(data.TensorDataset(ember.tensor(x), ember.tensor(y)), batch_size=8)
    with pytest.raises(ValueError, match="validation_split works on arrays"):
        _compiled().fit(loader, validation_split=0.2, verbose=0)


def _hand_loss(model, x, y, weights):
    with ember.no_grad():
        per_sample = F.cross_entropy(model(ember.tensor(x)), ember.tensor(y), reduction="none")
    return float((per_sample.numpy() * weights).mean())


def test_sample_weight_scales_each_loss():
    x, y = _helpers.blobs(32)
    model = _compiled()
    w = numpy.linspace(0.0, 2.0, 32).astype(numpy.float32)
    expected = _hand_loss(model, x, y, w)
    assert model.test_on_batch(x, y, sample_weight=w)[0] == pytest.approx(expected, rel=1e-5)
    assert model.evaluate(x, y, sample_weight=w, batch_size=32, verbose=0)[0] == \
        pytest.approx(expected, rel=1e-5)
    unweighted = _hand_loss(model, x, y, numpy.ones(32))
    assert unweighted != pytest.approx(expected, rel=1e-3)


def test_class_weight_scales_losses_by_class():
    x, y = _helpers.blobs(48)
    model = _compiled(optimizer=optim.SGD(lr=0.0))  # lr 0: the returned loss is before a step
    class_weight = {0: 0.5, 1: 3.0, 2: 1.0}
    expected = _hand_loss(model, x, y, numpy.array([class_weight[c] for c in y]))
    got = model.train_on_batch(x, y, class_weight=class_weight)[0]
    assert got == pytest.approx(expected, rel=1e-5)
    both = model.train_on_batch(x, y, class_weight=class_weight, sample_weight=numpy.full(48, 2.0))
    assert both[0] == pytest.approx(2 * expected, rel=1e-5)
    with pytest.raises(ValueError, match=r"no weight for class\(es\) \[2\]"):
        model.fit(x, y, class_weight={0: 1.0, 1: 1.0}, verbose=0)


def test_class_weight_in_fit_changes_what_is_learned():
    # Overlapping classes: weighting class 1 heavily makes the model predict it more often.
    rng = numpy.random.default_rng(1)
    x = rng.standard_normal((400, 2)).astype(numpy.float32)
    y = (x[:, 0] + rng.standard_normal(400) > 0).astype(numpy.int64)
    counts = []
    for weights in (None, {0: 1.0, 1: 10.0}):
        ember.manual_seed(0)
        model = _compiled(out=2)
        model.fit(x, y, epochs=10, class_weight=weights, verbose=0)
        counts.append(int((model.predict(x, verbose=0).argmax(1) == 1).sum()))
    assert counts[1] > counts[0] + 40


def test_initial_epoch_and_steps_per_epoch():
    x, y = _helpers.blobs(40)
    model = _compiled()
    sizes = []
    model[0].register_forward_hook(
        lambda m, args, out: sizes.append(args[0].shape[0]) if m.training else None)
    history = model.fit(x, y, batch_size=16, epochs=4, initial_epoch=2, shuffle=False,
                        verbose=0, steps_per_epoch=2)
    assert history.epoch == [2, 3]
    # Batches run on across epochs: 16, 16 | 8 (end of the first pass), 16.
    assert sizes == [16, 16, 8, 16]


def test_tuple_and_dict_inputs_for_multi_input_models():
    x, y = _helpers.blobs(200, features=6)
    a, b = x[:, :3], x[:, 3:]
    for inputs in ((a, b), {"a": a, "b": b}):
        ember.manual_seed(0)
        model = _helpers.TwoInputs().compile(optim.Adam(lr=0.01), "cross_entropy", ["accuracy"])
        history = model.fit(inputs, y, epochs=15, batch_size=32, verbose=0)
        assert history.history["accuracy"][-1] > 0.9
        assert model.predict(inputs, verbose=0).shape == (200, 3)
    with pytest.raises(ValueError, match=r"x\[0\] has 200 samples but x\[1\] has 199"):
        model.fit((a, b[:-1]), y, verbose=0)


def test_predict_in_batches_equals_one_forward():
    x, _ = _helpers.blobs(50)
    model = _helpers.mlp()
    out = model.predict(x, batch_size=7, verbose=0)
    with ember.no_grad():
        whole = model(ember.tensor(x)).numpy()
    assert isinstance(out, numpy.ndarray) and out.shape == (50, 3)
    numpy.testing.assert_allclose(out, whole, rtol=1e-5, atol=1e-6)


def test_predict_runs_in_eval_mode_and_restores_training():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    x = numpy.ones((8, 4), numpy.float32)
    first = model.predict(x, verbose=0)
    numpy.testing.assert_array_equal(first, model.predict(x, verbose=0))  # no dropout
    assert model.training and model[1].training


def test_evaluate_returns_loss_and_metrics():
    x, y = _helpers.blobs(64)
    model = _compiled(metrics=["accuracy", "top_k_accuracy"])
    loss, accuracy, top_k = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(_hand_loss(model, x, y, numpy.ones(64)), rel=1e-5)
    with ember.no_grad():
        predicted = model(ember.tensor(x)).numpy().argmax(1)
    assert accuracy == pytest.approx((predicted == y).mean())
    assert top_k == 1.0
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs == {"loss": loss, "accuracy": accuracy, "top_k_accuracy": top_k}
    assert isinstance(_compiled(metrics=None).evaluate(x, y, verbose=0), float)


def test_train_on_batch_steps_and_test_on_batch_does_not():
    x, y = _helpers.blobs(32)
    model = _compiled()
    before = model.predict(x, verbose=0)
    first = model.test_on_batch(x, y)
    assert model.test_on_batch(x, y) == first  # nothing changes
    losses = [model.train_on_batch(x, y, return_dict=True)["loss"] for _ in range(20)]
    assert losses[-1] < losses[0]
    assert model.test_on_batch(x, y)[0] < first[0]
    assert not numpy.allclose(before, model.predict(x, verbose=0))


def test_regression_with_mse_and_one_column_output():
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((200, 3)).astype(numpy.float32)
    y = x @ numpy.array([1.0, -2.0, 0.5], numpy.float32)  # shape (N,), model output (N, 1)
    model = nn.Sequential(nn.Linear(3, 1)).compile(optim.Adam(lr=0.05), "mse", ["mae"])
    history = model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.01
    assert history.history["mae"][-1] < 0.1


def test_categorical_crossentropy_with_one_hot_targets():
    x, y = _helpers.blobs(200)
    one_hot = numpy.eye(3, dtype=numpy.float32)[y]
    model = _compiled(loss="categorical_crossentropy")
    history = model.fit(x, one_hot, epochs=10, verbose=0)
    assert history.history["accuracy"][-1] > 0.95  # accuracy compares argmax with argmax


def test_binary_crossentropy_with_logits():
    x, y = _helpers.blobs(200, classes=2)
    model = _compiled(out=1, loss="binary_crossentropy")
    history = model.fit(x, y.astype(numpy.float32)[:, None], epochs=10, verbose=0)
    assert history.history["accuracy"][-1] > 0.95


def test_stop_training_from_a_callback_ends_the_epoch_early():
    x, y = _helpers.blobs(64)
    model = _compiled()
    seen = []

    def stop(batch, logs):
        seen.append(batch)
        if batch == 1:
            model.stop_training = True

    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0,
                        callbacks=[callbacks.LambdaCallback(on_train_batch_end=stop)])
    assert seen == [0, 1] and history.epoch == [0]
