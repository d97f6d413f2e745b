"""A convolutional autoencoder on the digits: squeeze each 8x8 image (64 pixels) through an
8x2x2 code (32 numbers) and rebuild it with transposed convolutions, trained with
``fit(x, x)``.

    python examples/conv_autoencoder.py [--epochs 20] [--out runs/autoencoder]

Prints the test reconstruction error and writes originals above their reconstructions to
``<out>/reconstructions.png`` (and to TensorBoard, in ``<out>/logs``, if tensorboardX is
installed).
"""

import argparse
import os

import numpy

import ember
from ember import nn
from ember.data import datasets


class AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1), nn.ReLU(),  # 8x8 -> 4x4
            nn.Conv2d(16, 8, kernel_size=3, stride=2, padding=1), nn.ReLU(),  # 4x4 -> 2x2
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(8, 16, kernel_size=3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),  # 2x2 -> 4x4
            nn.ConvTranspose2d(16, 1, kernel_size=3, stride=2, padding=1, output_padding=1),
            nn.Sigmoid(),  # 4x4 -> 8x8, pixels in [0, 1] like the inputs
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


def save_pictures(originals, rebuilt, path):
    """Originals in the top row, their reconstructions below, as one PNG."""
    from matplotlib import figure  # noqa: PLC0415
    from matplotlib.backends import backend_agg  # noqa: PLC0415

    n = len(originals)
    fig = figure.Figure(figsize=(n, 2.2), dpi=80)
    backend_agg.FigureCanvasAgg(fig)
    for row, images in enumerate((originals, rebuilt)):
        for i in range(n):
            ax = fig.add_subplot(2, n, row * n + i + 1)
            ax.imshow(images[i, 0], cmap="gray_r", vmin=0, vmax=1)
            ax.axis("off")
    fig.savefig(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", default=os.path.join("runs", "autoencoder"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    ember.manual_seed(0)

    x_train, _ = datasets.Digits(train=True).tensors()
    x_test, _ = datasets.Digits(train=False).tensors()
    model = AutoEncoder()
    model.compile(optimizer=ember.optim.Adam(lr=3e-3), loss="mse")
    model.fit(x_train, x_train, epochs=args.epochs, batch_size=32, verbose=2)

    mse = model.evaluate(x_test, x_test, verbose=0)
    # Predicting the mean image for everything is the bar a useful code has to clear.
    baseline = float(((x_test.numpy() - x_train.numpy().mean(0)) ** 2).mean())
    print(f"test reconstruction MSE {mse:.4f} (mean-image baseline {baseline:.4f})")

    rebuilt = model.predict(x_test[:10], verbose=0)
    try:
        path = os.path.join(args.out, "reconstructions.png")
        save_pictures(x_test[:10].numpy(), rebuilt, path)
        print(f"pictures: {path}")
    except ImportError:
        print("pictures skipped: pip install matplotlib")
    try:
        from ember.utils import tensorboard  # noqa: PLC0415

        with tensorboard.SummaryWriter(os.path.join(args.out, "logs")) as writer:
            writer.add_images("originals", x_test[:10], args.epochs)
            writer.add_images("reconstructions", numpy.clip(rebuilt, 0, 1), args.epochs)
    except ImportError:
        pass
    return mse


if __name__ == "__main__":
    main()
