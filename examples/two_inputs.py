"""A model with two inputs, trained with ``fit`` on a tuple ``x``.

    python examples/two_inputs.py [--epochs 15]

Each digit image is cut into its left and right halves; one branch reads each half and a
shared head classifies from both. ``fit((left, right), y)`` passes the tuple's items to
``forward`` as two positional arguments, batch by batch, and so do ``evaluate`` and
``predict``.
"""

import argparse

import ember
from ember import nn
from ember.data import datasets


class TwoHalves(nn.Module):
    def __init__(self, hidden=32, classes=10):
        super().__init__()
        self.left = nn.Sequential(nn.Flatten(), nn.Linear(8 * 4, hidden), nn.ReLU())
        self.right = nn.Sequential(nn.Flatten(), nn.Linear(8 * 4, hidden), nn.ReLU())
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, left, right):
        return self.head(ember.cat([self.left(left), self.right(right)], dim=1))


def halves(images):
    """(N, 1, 8, 8) -> the left (N, 1, 8, 4) and right (N, 1, 8, 4) halves."""
    return images[..., :4], images[..., 4:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args(argv)
    ember.manual_seed(0)

    x_train, y_train = datasets.Digits(train=True).tensors()
    x_test, y_test = datasets.Digits(train=False).tensors()
    model = TwoHalves()
    model.compile(optimizer=ember.optim.Adam(lr=3e-3), loss="cross_entropy",
                  metrics=["accuracy"])
    model.fit(halves(x_train), y_train, epochs=args.epochs, batch_size=32,
              validation_split=0.1, verbose=2)
    loss, accuracy = model.evaluate(halves(x_test), y_test, verbose=0)
    print(f"test accuracy {accuracy:.2%}")
    return accuracy


if __name__ == "__main__":
    main()
