"""The bundled digits dataset and the image transforms."""

import numpy
import pytest

import ember
from ember.data import DataLoader, transforms
from ember.data.datasets import Digits, make_classification, make_regression, make_sequences


def test_digits_fixed_split_shapes_and_ranges():
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) + len(test) == 1797 and len(test) == 359
    image, label = train[0]
    assert image.shape == (1, 8, 8) and image.dtype == ember.float32 and 0 <= label <= 9
    assert 0.0 <= float(train.data.min()) and float(train.data.max()) <= 1.0
    ember.manual_seed(123)
    numpy.testing.assert_array_equal(Digits(train=False).targets, test.targets)
    assert set(numpy.unique(test.targets)) == set(range(10))
    x, y = test.tensors()
    assert x.shape == (359, 1, 8, 8) and y.dtype == ember.int64


def test_digits_through_a_dataloader_with_normalize():
    ds = Digits(train=False, transform=transforms.Normalize([0.5], [0.25]))
    xb, yb = next(iter(DataLoader(ds, batch_size=16)))
    assert xb.shape == (16, 1, 8, 8) and yb.shape == (16,)
    raw = Digits(train=False).data[:16]
    numpy.testing.assert_allclose(xb.numpy(), (raw - 0.5) / 0.25, rtol=1e-6)


def test_random_crop_and_flip_are_seeded():
    img = ember.tensor(numpy.arange(2 * 6 * 6, dtype=numpy.float32).reshape(2, 6, 6))
    t = transforms.Compose([transforms.RandomCrop(6, padding=2), transforms.RandomHorizontalFlip(1.0)])
    ember.manual_seed(0)
    a = t(img).numpy()
    ember.manual_seed(0)
    b = t(img).numpy()
    numpy.testing.assert_array_equal(a, b)
    assert a.shape == (2, 6, 6)
    flipped = transforms.RandomHorizontalFlip(1.0)(img).numpy()
    numpy.testing.assert_array_equal(flipped, img.numpy()[..., ::-1])
    assert transforms.RandomHorizontalFlip(0.0)(img) is img
    with pytest.raises(ember.errors.ShapeError, match="larger than the image"):
        transforms.RandomCrop(9)(img)


def test_random_crop_without_padding_is_a_window():
    img = numpy.arange(25, dtype=numpy.float32).reshape(1, 5, 5)
    out = transforms.RandomCrop(3)(img)
    assert out.shape == (1, 3, 3)
    top, left = divmod(int(out[0, 0, 0]), 5)
    numpy.testing.assert_array_equal(out, img[:, top:top + 3, left:left + 3])


def test_normalize_checks_channels():
    with pytest.raises(ember.errors.ShapeError, match="3 channels"):
        transforms.Normalize([0.1, 0.2, 0.3], [1, 1, 1])(numpy.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="zero"):
        transforms.Normalize([0.0], [0.0])


def test_to_tensor():
    out = transforms.ToTensor()(numpy.full((4, 5, 3), 255, dtype=numpy.uint8))
    assert out.shape == (3, 4, 5) and out.dtype == ember.float32 and out.numpy().max() == 1.0


def test_synthetic_generators():
    x, y = make_classification(100, 3, 4)
    assert x.shape == (100, 3) and y.dtype == ember.int64 and set(y.tolist()) <= {0, 1, 2, 3}
    x, y, w = make_regression(50, 2)
    assert y.shape == (50, 1) and w.shape == (2, 1)
    seqs, labels = make_sequences(10, 2, 5)
    assert len(seqs) == 10 and all(2 <= len(s) <= 5 for s in seqs) and labels.shape == (10,)
