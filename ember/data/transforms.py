"""Image transforms for (C, H, W) tensors or arrays; random ones draw from ember.random, so
``ember.manual_seed`` (and each DataLoader worker's seed) makes them repeat."""

import numpy

from ember import errors, random
from ember.tensor import Tensor


def _array(img):
    return (img.numpy(force=True) if isinstance(img, Tensor) else numpy.asarray(img)), isinstance(img, Tensor)


def _like(arr, was_tensor):
    return Tensor._make(numpy.ascontiguousarray(arr), False, None, 0) if was_tensor else arr


class Compose:
    """Apply transforms one after another."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class ToTensor:
    """Array (H, W) or (H, W, C) of uint8 or float -> float32 (C, H, W) Tensor in [0, 1]."""

    def __call__(self, img):
        arr, _ = _array(img)
        if arr.ndim == 2:
            arr = arr[None]
        elif arr.ndim == 3:
            arr = arr.transpose(2, 0, 1)
        else:
            raise errors.ShapeError(f"ToTensor: expected an (H, W) or (H, W, C) image, got {arr.shape}")
        arr = arr.astype(numpy.float32) / (255.0 if arr.dtype == numpy.uint8 else 1.0)
        return Tensor._make(numpy.ascontiguousarray(arr), False, None, 0)


class Normalize:
    """(img - mean) / std per channel of a (C, H, W) image."""

    def __init__(self, mean, std):
        self.mean = numpy.asarray(mean, dtype=numpy.float64).reshape(-1, 1, 1)
        self.std = numpy.asarray(std, dtype=numpy.float64).reshape(-1, 1, 1)
        if (self.std == 0).any():
            raise ValueError(f"Normalize: std contains a zero: {std}")

    def __call__(self, img):
        arr, was_tensor = _array(img)
        if arr.ndim != 3 or self.mean.shape[0] not in (1, arr.shape[0]):
            raise errors.ShapeError(
                f"Normalize: expected a (C, H, W) image with {self.mean.shape[0]} channels, got "
                f"shape {arr.shape}"
            )
        out = ((arr - self.mean) / self.std).astype(arr.dtype if arr.dtype.kind == "f" else numpy.float32)
        return _like(out, was_tensor)

    def __repr__(self):
        return f"Normalize(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"


class RandomCrop:
    """A random ``size`` crop, after zero (or ``fill``) padding of ``padding`` pixels."""

    def __init__(self, size, padding=0, fill=0):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding = padding
        self.fill = fill

    def __call__(self, img):
        arr, was_tensor = _array(img)
        p = self.padding
        if p:
            pads = [(0, 0)] * (arr.ndim - 2) + [(p, p), (p, p)]
            arr = numpy.pad(arr, pads, constant_values=self.fill)
        h, w = arr.shape[-2:]
        th, tw = self.size
        if th > h or tw > w:
            raise errors.ShapeError(f"RandomCrop: crop {self.size} is larger than the image {(h, w)}")
        rng = random._gen(None)
        top = int(rng.integers(0, h - th + 1))
        left = int(rng.integers(0, w - tw + 1))
        return _like(arr[..., top:top + th, left:left + tw], was_tensor)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror the image left-right with probability ``p``."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        if random._gen(None).random() >= self.p:
            return img
        arr, was_tensor = _array(img)
        return _like(arr[..., ::-1], was_tensor)

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"
