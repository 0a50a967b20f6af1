"""A small residual CNN: what a user's own model for an lrtrack study looks like.

lrtrack calls ``small_resnet(input_shape, num_classes, **model_args)`` with one sample's
shape, e.g. ``(1, 16, 16)``, and the number of classes it found in the data; the module
must return logits of shape ``(batch, num_classes)``. Nothing here imports lrtrack.
"""

from __future__ import annotations

from torch import nn


class Block(nn.Module):
    """Two 3x3 convolutions with a skip connection: ``relu(x + f(x))``."""

    def __init__(self, width: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False), _norm(norm, width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), _norm(norm, width),
        )
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x + self.body(x))


def small_resnet(input_shape: tuple[int, ...], num_classes: int, width: int = 16, blocks: int = 2,
                 norm: str = "batch") -> nn.Module:
    """A stem convolution, ``blocks`` residual blocks of ``width`` channels, global average
    pooling and a linear classifier. ``norm``: ``batch`` (BatchNorm, the usual choice; its
    running statistics are buffers, so ``--pack`` trains such runs one by one) or ``group``
    (GroupNorm, no buffers: packable)."""
    channels = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1, bias=False), _norm(norm, width), nn.ReLU(),
        *[Block(width, norm) for _ in range(blocks)],
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes),
    )


def _norm(kind: str, width: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(width)
    if kind == "group":
        return nn.GroupNorm(min(8, width), width)
    raise ValueError(f"norm must be batch or group, not {kind!r}")
