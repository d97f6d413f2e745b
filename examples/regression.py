"""Linear regression with ``fit``: recover the weights behind noisy synthetic data.

    python examples/regression.py [--epochs 40] [--samples 1000]

``ember.data.datasets.make_regression`` draws ``y = x @ w + noise``; a single ``nn.Linear``
trained on the mean squared error should find ``w`` again, up to the noise.
"""

import argparse

import numpy

import ember
from ember import nn
from ember.data import datasets


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args(argv)
    ember.manual_seed(0)

    x, y, true_w = datasets.make_regression(n_samples=args.samples, n_features=4, noise=0.1)
    model = nn.Linear(4, 1)
    model.compile(optimizer=ember.optim.Adam(lr=0.05), loss="mse", metrics=["mae", "r2"])
    history = model.fit(x, y, epochs=args.epochs, batch_size=32, validation_split=0.2,
                        verbose=0)
    last = {key: values[-1] for key, values in history.history.items()}
    print("after {} epochs: ".format(args.epochs)
          + ", ".join(f"{key} {value:.4f}" for key, value in last.items()))

    learned = model.weight.detach().numpy().ravel()
    print("true weights:    " + " ".join(f"{w:+.3f}" for w in true_w.numpy().ravel()))
    print("learned weights: " + " ".join(f"{w:+.3f}" for w in learned))
    error = float(numpy.abs(learned - true_w.numpy().ravel()).max())
    print(f"largest weight error {error:.4f}, validation r2 {last['val_r2']:.4f}")
    return error


if __name__ == "__main__":
    main()
