"""The issue's headline: a small CNN trained with compile/fit on the digits reaches >= 90%."""

import ember
from ember import nn
from ember.data import datasets


def test_small_cnn_learns_digits():
    x_train, y_train = datasets.Digits(train=True).tensors()
    x_test, y_test = datasets.Digits(train=False).tensors()
    model = nn.Sequential(nn.Conv2d(out_channels=8, kernel_size=3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(out_features=10))
    model.compile(optimizer=ember.optim.Adam(lr=3e-3), loss="cross_entropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=10, batch_size=32, validation_split=0.1,
                        verbose=0, callbacks=[ember.callbacks.EarlyStopping(patience=2)])
    assert history.history["val_accuracy"][-1] >= 0.85
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.90
