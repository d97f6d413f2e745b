"""The digits classifier trained by a hand-written, PyTorch-style loop: a DataLoader, an
optimizer and a learning-rate scheduler, each step written out.

    python examples/handwritten_loop.py [--epochs 10] [--batch-size 64]

The same model could be trained with ``model.fit`` (see train_digits.py); this is the loop
that ``fit`` saves you from writing, and the one to start from when you need full control.
"""

import argparse

import ember
from ember import nn, optim
from ember.data import DataLoader, datasets
from ember.optim import lr_scheduler


def evaluate(model, loader):
    """Accuracy over ``loader``, in eval mode and without recording a graph."""
    model.eval()
    correct = total = 0
    with ember.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(1) == labels).sum().item()
            total += len(labels)
    return correct / total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    ember.manual_seed(0)

    train_loader = DataLoader(datasets.Digits(train=True), batch_size=args.batch_size,
                              shuffle=True)
    test_loader = DataLoader(datasets.Digits(train=False), batch_size=256)

    model = nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    # Cosine decay from 0.1 towards 0 over the whole run, stepped once per epoch.
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    loss_fn = nn.CrossEntropyLoss()

    for epoch in range(args.epochs):
        model.train()
        total_loss = 0.0
        for images, labels in train_loader:
            loss = loss_fn(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        mean_loss = total_loss / len(train_loader.dataset)
        print(f"epoch {epoch + 1}/{args.epochs}: lr {lr:.4f}, loss {mean_loss:.4f}, "
              f"test accuracy {evaluate(model, test_loader):.2%}")

    accuracy = evaluate(model, test_loader)
    print(f"test accuracy {accuracy:.2%}")
    return accuracy


if __name__ == "__main__":
    main()
