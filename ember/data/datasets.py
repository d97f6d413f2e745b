"""Small datasets: the handwritten digits that scikit-learn bundles (no download), and
synthetic generators for tests and examples."""

import numpy

from ember import creation, errors
from ember.data.dataset import Dataset
from ember.tensor import Tensor


class Digits(Dataset):
    """The 1,797 handwritten 8x8 digits bundled with scikit-learn, as (1, 8, 8) float32 images
    scaled to [0, 1] with int64 labels 0-9.

    The split is fixed: the same 1,438 images (80% of each class) are always ``train=True``
    and the other 359 the test set, whatever the global random state.

    Args:
        train: the training split (True) or the test split (False).
        transform: applied to each image (e.g. ``transforms.Normalize``).
        target_transform: applied to each label.

    Needs scikit-learn: ``pip install 'ember[datasets]'``.
    """

    num_classes = 10
    _TEST_FRACTION = 0.2

    def __init__(self, train=True, transform=None, target_transform=None):
        images, labels = _load_digits()
        index = _fixed_split(labels, self._TEST_FRACTION)[0 if train else 1]
        self.data = images[index]
        self.targets = labels[index]
        self.transform = transform
        self.target_transform = target_transform
        self.train = train

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        image = Tensor._make(self.data[i], False, None, 0)
        label = int(self.targets[i])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def tensors(self):
        """All images (N, 1, 8, 8) and labels (N,) as two Tensors, for ``model.fit(x, y)``."""
        return creation.tensor(self.data), creation.tensor(self.targets)


def _load_digits():
    try:
        from sklearn.datasets import load_digits  # noqa: PLC0415
    except ImportError as exc:
        raise errors.EmberError(
            "ember.data.Digits needs scikit-learn, which bundles the digits data: "
            "pip install 'ember[datasets]' (or pip install scikit-learn)"
        ) from exc
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(numpy.float32)[:, None, :, :]
    return images, bunch.target.astype(numpy.int64)


def _fixed_split(labels, test_fraction):
    """Stratified train/test index arrays from a private, fixed-seed generator."""
    rng = numpy.random.default_rng(20240601)
    train, test = [], []
    for c in numpy.unique(labels):
        idx = numpy.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return numpy.sort(numpy.concatenate(train)), numpy.sort(numpy.concatenate(test))


def make_classification(n_samples=256, n_features=2, n_classes=2, separation=3.0, seed=0,
                        dtype=numpy.float32):
    """Gaussian blobs, one per class, ``separation`` standard deviations apart: (x, y) Tensors."""
    rng = numpy.random.default_rng(seed)
    centers = rng.standard_normal((n_classes, n_features)) * separation
    y = rng.integers(0, n_classes, n_samples)
    x = centers[y] + rng.standard_normal((n_samples, n_features))
    return creation.tensor(x.astype(dtype)), creation.tensor(y.astype(numpy.int64))


def make_regression(n_samples=256, n_features=4, noise=0.1, seed=0, dtype=numpy.float32):
    """A linear target with Gaussian noise: (x, y, true_weights)."""
    rng = numpy.random.default_rng(seed)
    w = rng.standard_normal((n_features, 1))
    x = rng.standard_normal((n_samples, n_features))
    y = x @ w + noise * rng.standard_normal((n_samples, 1))
    return (creation.tensor(x.astype(dtype)), creation.tensor(y.astype(dtype)),
            creation.tensor(w.astype(dtype)))


def make_sequences(n_samples=128, min_len=3, max_len=12, vocab=20, seed=0):
    """Variable-length token sequences labelled by whether token 1 appears more than token 2:
    (list of int64 Tensors, int64 label Tensor)."""
    rng = numpy.random.default_rng(seed)
    seqs, labels = [], []
    for _ in range(n_samples):
        n = int(rng.integers(min_len, max_len + 1))
        s = rng.integers(1, vocab, n)
        seqs.append(creation.tensor(s.astype(numpy.int64)))
        labels.append(int((s == 1).sum() > (s == 2).sum()))
    return seqs, creation.tensor(numpy.array(labels, dtype=numpy.int64))
