"""A dataset callable: what a user's own data for an lrtrack study looks like.

lrtrack calls it like torchvision's dataset classes: ``digits(train=True, **dataset_args)``
for the training split and ``train=False`` for the test split (``root=DATA_DIR`` too, had
the signature a ``root`` parameter). It returns a map-style dataset of ``(PIL image, int
label)`` items, which lrtrack converts as torchvision's ``ToTensor`` would; ``classes``
gives the number of classes. Nothing here imports lrtrack.

The images are scikit-learn's bundled 8x8 handwritten digits (no download), scaled up.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Share of the 1,797 digits held out as the test split (fixed, seeded permutation).
TEST_FRACTION = 0.2


class Digits:
    """Handwritten digits ``0 .. classes-1`` as ``size x size`` grayscale PIL images."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: int) -> None:
        self.images, self.labels = images, labels
        self.classes = [str(digit) for digit in range(classes)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[i]), int(self.labels[i])


def digits(train: bool = True, size: int = 16, classes: int = 10) -> Digits:
    """The training (``train=True``) or test split, images resized to ``size`` pixels, only the
    digits below ``classes``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    keep = bunch.target < classes
    images = (bunch.images[keep] * (255 / 16)).round().astype(np.uint8)
    labels = bunch.target[keep]
    order = np.random.default_rng(0).permutation(len(labels))
    n_test = int(len(labels) * TEST_FRACTION)
    chosen = order[n_test:] if train else order[:n_test]
    resized = np.stack([np.asarray(Image.fromarray(images[i]).resize((size, size), Image.BILINEAR))
                        for i in chosen])
    return Digits(resized, labels[chosen], classes)
