"""The studies' models, built by name for any single-channel square input.

``fcn``/``mlp2``: Flatten -> Linear(C*H*W -> hidden) -> ReLU -> Linear(hidden -> classes)
(studies A and E). ``cnn``: two padded 3x3 convs 16/32 with max-pooling and a 128-wide
head (studies C and D). ``cnn-small``: two unpadded 3x3 convs 8/16 and a 64-wide head
(study B). The flattened width is computed from the input shape, so 8x8 ``digits``
needs no special case anywhere else.

``fcn``/``mlp2`` take any input shape (flattened); the CNNs take images ``(C, H, W)``.

Any other ``model`` is user code by reference (`lrtrack.references`): it is called as
``callable(input_shape, num_classes, **model_args)``; `lrtrack.references.check_references`
builds each one on one real batch before anything is written.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from lrtrack.config import TrainConfig


def build_model(config: TrainConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A freshly initialised model (seed the RNG before calling for reproducible weights)."""
    from torch import nn

    from lrtrack.references import MODELS, build_user_model, is_builtin

    if not is_builtin(MODELS, config.model):
        return build_user_model(config.model, input_shape, num_classes, config.model_args)
    if config.model in ("fcn", "mlp2"):
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, num_classes),
        )
    channels = input_shape[0]  # (C, H, W) images
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
    else:  # is_builtin makes this unreachable
        raise ValueError(f"unknown model {config.model!r}")
    flat = _flat_width(features, input_shape)
    return nn.Sequential(*features, nn.Linear(flat, head_width), nn.ReLU(), nn.Linear(head_width, num_classes))


def _flat_width(features: nn.Module, input_shape: tuple[int, ...]) -> int:
    import torch

    with torch.no_grad():
        return int(features(torch.zeros(1, *input_shape)).shape[1])
