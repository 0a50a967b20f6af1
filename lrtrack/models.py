"""The studies' models, built by name for any single-channel square input.

``fcn``/``mlp2``: Flatten -> Linear(H*W -> hidden) -> ReLU -> Linear(hidden -> 10)
(studies A and E). ``cnn``: two padded 3x3 convs 16/32 with max-pooling and a 128-wide
head (studies C and D). ``cnn-small``: two unpadded 3x3 convs 8/16 and a 64-wide head
(study B). The flattened width is computed from the input shape, so 8x8 ``digits``
needs no special case anywhere else.

Any other ``model`` is user code by reference (`lrtrack.references`): it is called as
``callable(input_shape, num_classes, **model_args)``; `check_models` builds each one on one
real batch before anything is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from lrtrack.config import TrainConfig


def build_model(config: TrainConfig, input_shape: tuple[int, ...], num_classes: int = 10) -> nn.Module:
    """A freshly initialised model (seed the RNG before calling for reproducible weights)."""
    from torch import nn

    from lrtrack.references import MODELS, build_user_model, is_builtin

    if not is_builtin(MODELS, config.model):
        return build_user_model(config.model, input_shape, num_classes, config.model_args)
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
    else:  # is_builtin makes this unreachable
        raise ValueError(f"unknown model {config.model!r}")
    flat = _flat_width(features, input_shape)
    return nn.Sequential(*features, nn.Linear(flat, head_width), nn.ReLU(), nn.Linear(head_width, num_classes))


def _flat_width(features: nn.Module, input_shape: tuple[int, ...]) -> int:
    import torch

    with torch.no_grad():
        return int(features(torch.zeros(1, *input_shape)).shape[1])


def check_models(configs: list[TrainConfig]) -> None:
    """Build every user model of ``configs`` (once per distinct model, arguments and data) and run
    it on one real batch; `UserError` naming ``model`` when it raises or its output is not
    ``(batch, num_classes)`` logits. Each dataset is loaded once, as a tiny subset, on the CPU."""
    import torch

    from lrtrack.data import load_data
    from lrtrack.references import MODELS, check_model_output, is_builtin

    datas: dict[tuple, object] = {}
    seen: set[tuple] = set()
    for config in configs:
        if is_builtin(MODELS, config.model):
            continue
        data_key = (config.dataset, config.data_dir)
        key = (config.model, repr(sorted(config.model_args.items())), min(config.batch_size, 4), data_key)
        if key in seen:
            continue
        seen.add(key)
        if data_key not in datas:
            tiny = config.model_copy(update={"train_size": 4, "test_size": 4, "val_split": 0.0, "seed": 0})
            datas[data_key] = load_data(tiny, torch.device("cpu"))
        data = datas[data_key]
        torch.manual_seed(config.seed)
        model = build_model(config, data.input_shape, data.num_classes)
        model.train()
        batch = data.train.x[: min(config.batch_size, 4)]
        check_model_output(config.model, model, batch, data.num_classes)
