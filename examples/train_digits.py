"""Train a small CNN on the handwritten digits that scikit-learn bundles, Keras-style.

    python examples/train_digits.py                 # about 15 epochs, well under a minute
    python examples/train_digits.py --epochs 2 --out /tmp/digits

It shows the whole round trip on one model: ``compile``/``fit`` with a progress bar, the test
accuracy and confusion matrix, a checkpoint (ModelCheckpoint) reloaded into a fresh model,
TensorBoard logs (the TensorBoard callback, plus the model's op graph and a few digits), a PNG
of the training curves and, where ``onnx`` and ``onnxruntime`` are installed, an ONNX file
checked against onnxruntime.

Everything lands in ``--out`` (default runs/digits); look at the logs with
``tensorboard --logdir runs/digits/logs``.
"""

import argparse
import os

import numpy

import ember
from ember import metrics, nn
from ember.data import datasets
from ember.optim import lr_scheduler
from ember.utils import tensorboard


def build_model():
    """Two rounds of 3x3 convolution and 2x2 pooling (8x8 -> 4x4 -> 2x2), then one linear
    layer: about 21,000 parameters."""
    return nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 2 * 2, 10),
    )


def print_confusion_matrix(matrix):
    """Rows are the true digits, columns the predicted ones; the diagonal is what went right."""
    print("confusion matrix (rows: true digit, columns: predicted digit)")
    print("     " + " ".join(f"{c:>3}" for c in range(len(matrix))))
    for digit, row in enumerate(matrix):
        print(f"  {digit}: " + " ".join(f"{n:>3}" for n in row))


def export_onnx(model, example, path):
    """Export to ONNX and compare onnxruntime's output with ember's; skipped (with a note)
    where onnx, onnxruntime or ember.onnx.export is missing."""
    try:
        import onnxruntime  # noqa: PLC0415
        from ember import onnx as ember_onnx  # noqa: PLC0415

        ember_onnx.export  # noqa: B018  (an ember without the exporter skips this step)
        import onnx  # noqa: PLC0415,F401
    except (ImportError, AttributeError):
        print("ONNX export skipped: pip install 'ember[onnx]' to get onnx and onnxruntime")
        return
    ember_onnx.export(model, example, path)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    theirs = session.run(None, {session.get_inputs()[0].name: example.numpy()})[0]
    ours = model.predict(example, verbose=0)
    diff = float(numpy.abs(theirs - ours).max())
    print(f"ONNX model: {path} (onnxruntime matches ember: max difference {diff:.1e})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    parser.add_argument("--out", default=os.path.join("runs", "digits"),
                        help="folder for the checkpoint, logs and plots (default runs/digits)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    ember.manual_seed(0)

    x_train, y_train = datasets.Digits(train=True).tensors()  # (1438, 1, 8, 8), (1438,)
    x_test, y_test = datasets.Digits(train=False).tensors()  # (359, 1, 8, 8), (359,)

    model = build_model()
    model.compile(optimizer=ember.optim.Adam(lr=3e-3), loss="cross_entropy",
                  metrics=["accuracy"])
    model.summary((None, 1, 8, 8))

    log_dir = os.path.join(args.out, "logs")
    checkpoint = os.path.join(args.out, "digits.safetensors")
    callbacks = [
        # Cosine decay of the learning rate to zero: the last epochs settle instead of
        # bouncing, so the final weights are the ones to keep.
        ember.callbacks.LearningRateScheduler(lr_scheduler.CosineAnnealingLR,
                                              T_max=args.epochs),
        ember.callbacks.ModelCheckpoint(checkpoint, save_weights_only=True),  # every epoch
        ember.callbacks.TensorBoard(log_dir),
    ]
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=32,
                        validation_split=0.1, callbacks=callbacks)

    # Reload the checkpoint into a fresh model, as a later program would.
    model = build_model()
    model.load_state_dict(ember.load(checkpoint))
    model.compile(loss="cross_entropy", metrics=["accuracy"])
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test loss {loss:.4f}, test accuracy {accuracy:.2%}")
    confusion = metrics.ConfusionMatrix(num_classes=10)
    confusion.update(model.predict(x_test, verbose=0), y_test)
    print_confusion_matrix(confusion.compute())

    with tensorboard.SummaryWriter(os.path.join(log_dir, "model")) as writer:
        writer.add_graph(model, x_test[:1])
        writer.add_images("test digits", x_test[:16], 0)
    curves = history.plot(os.path.join(args.out, "training_curves.png"))
    print(f"checkpoint: {checkpoint}")
    print(f"training curves: {curves}")
    print(f"TensorBoard logs: {log_dir} (tensorboard --logdir {log_dir})")
    export_onnx(model, x_test[:8], os.path.join(args.out, "digits.onnx"))
    return accuracy


if __name__ == "__main__":
    main()
