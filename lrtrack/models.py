"""The studies' models, built by name for any single-channel square input.

``fcn``/``mlp2``: Flatten -> Linear(H*W -> hidden) -> ReLU -> Linear(hidden -> 10)
(studies A and E). ``cnn``: two padded 3x3 convs 16/32 with max-pooling and a 128-wide
head (studies C and D). ``cnn-small``: two unpadded 3x3 convs 8/16 and a 64-wide head
(study B). The flattened width is computed from the input shape, so 8x8 ``digits``
needs no special case anywhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from lrtrack.config import TrainConfig


def build_model(config: TrainConfig, input_shape: tuple[int, ...], num_classes: int = 10) -> nn.Module:
    """A freshly initialised model (seed the RNG before calling for reproducible weights)."""
    from torch import nn

    channels, height, width = input_shape
    if config.model in ("fcn", "mlp2"):
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * width, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, num_classes),
        )
    if config.model == "cnn":
        features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        head_width = 128
    elif config.model == "cnn-small":
        features = nn.Sequential(
            nn.Conv2d(channels, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        head_width = 64
    else:  # TrainConfig's Literal makes this unreachable for validated configs
        raise ValueError(f"unknown model {config.model!r}")
    flat = _flat_width(features, input_shape)
    return nn.Sequential(*features, nn.Linear(flat, head_width), nn.ReLU(), nn.Linear(head_width, num_classes))


def _flat_width(features: nn.Module, input_shape: tuple[int, ...]) -> int:
    import torch

    with torch.no_grad():
        return int(features(torch.zeros(1, *input_shape)).shape[1])
