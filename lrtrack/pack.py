"""Packed training: several compatible configs trained together in one process.

Small learning-rate studies are dominated by per-step overhead, not arithmetic: one
small run leaves a GPU mostly idle. K runs of the same model, data and batch size can
share one batched program instead (on a 2-core CPU, 12 configs took 0.8x the
sequential time and 3 were even; see benchmarks/README.md). `run_packed` does that
with ``torch.func``:

- the K models are built exactly as `lrtrack.train.run` builds them (``torch.manual_seed(seed)``
  then ``build_model``), and `stack_module_state` stacks their weights into one
  ``(K, ...)`` tensor per parameter;
- each member's optimizer (built by `lrtrack.train.build_optimizer`, so its own
  lr, optimizer, momentum, weight decay...) and scheduler own *views* of its slice of
  those stacked tensors, so an optimizer step updates the stack in place, no copy;
- one step is one ``vmap``-ed ``functional_call`` forward and one backward for all
  members; each member's gradient is its slice of the stacked gradient (the Linear
  layers are written so that slice needs no copy, see `_skeleton`);
- each member keeps its own data order (a generator seeded ``seed + 1``, like
  `run`), its own subset/validation split when seeds differ, its own divergence
  check, hook, W&B run (its logger) and summary, through the `Recorder` that `run` uses.

A model with buffers (`packing_refusal`) or data on the streaming path (`lrtrack.data`)
cannot be stacked this way: `run_packed` then says so in one line and trains the configs
one by one with `lrtrack.train.run`.

A member that diverges, is stopped by its hook or reaches its own ``epochs`` finishes
its W&B run at the end of that epoch and drops out: the remaining members are
re-stacked and go on undisturbed. Results equal training each config alone with
`lrtrack.train.run` up to floating-point rounding (batched matmuls add in another
order); ``tests/test_pack.py`` checks it. ``compile`` is ignored when packing.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from lrtrack.errors import LrtrackError
from lrtrack.states import State
from lrtrack.tracking import MemoryLogger, RunLogger
from lrtrack.train import (
    EpochHook,
    Recorder,
    RunResult,
    augment,
    batches_per_epoch,
    build_optimizer,
    build_scheduler,
    data_summary,
    epoch_metrics,
    precision_context,
    resolve_device,
    samples_per_epoch,
)

if TYPE_CHECKING:
    import torch

    from lrtrack.config import TrainConfig

#: Settings members of a pack must share: the data, the model's shape, the batch
#: shapes and where/how it runs. Everything else (lr, optimizer, scheduler, epochs,
#: seed, momentum, weight decay, divergence threshold...) may differ per member.
PACK_FIELDS = (
    "dataset", "dataset_args", "data_dir", "data_path", "resident_budget_mb", "train_size", "test_size", "val_split",
    "model", "model_args", "hidden", "batch_size", "eval_batch_size", "device", "precision", "drop_last", "augment",
)


def pack_key(config: TrainConfig) -> tuple:
    """Configs with equal keys can train together in one `run_packed` call."""
    return tuple(_hashable(getattr(config, name)) for name in PACK_FIELDS)


def _hashable(value: Any) -> Any:
    """A mapping setting (``model_args``) as a key: its JSON text with sorted keys."""
    import json

    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict) else value


def packing_refusal(model: torch.nn.Module, reference: str) -> str | None:
    """Why ``model`` cannot train packed (None when it can). Packing runs one weightless copy
    under ``vmap`` over stacked parameters; a module with buffers (BatchNorm's running
    statistics...) would update them in place across all members, so it is refused."""
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        return (f"model {reference} has buffers ({', '.join(buffers[:3])}{', ...' if len(buffers) > 3 else ''}), "
                "e.g. running statistics; packing needs a buffer-free model")
    return None


@dataclass
class Member:
    """One config of a pack: its weights (views into the stack), optimizer, data order and records."""

    config: TrainConfig
    hook: EpochHook | None
    record: Recorder
    data: int  #: index of its dataset among the pack's distinct ones
    generator: torch.Generator
    augment_generator: torch.Generator | None  #: seeded ``seed + 2`` when ``augment``, as in `run`
    weights: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    state: str | None = None  #: None while training
    result: RunResult | None = None  #: set when it finishes

    @property
    def per_batch(self) -> bool:
        return self.config.scheduler == "onecycle"

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().clone() for name, tensor in self.weights.items()}


def run_packed(configs: list[TrainConfig], loggers: list[RunLogger] | None = None,
               hooks: list[EpochHook | None] | None = None,
               notify: Callable[[str], None] | None = None) -> list[RunResult]:
    """Train ``configs`` together; one `RunResult` per config, as `lrtrack.train.run` would return.

    A model that cannot be packed (`packing_refusal`) is not trained packed: ``notify`` (default:
    a line on stderr) gets one line naming the reason and the configs train one by one with
    `lrtrack.train.run`.
    """
    import torch
    from torch.func import stack_module_state

    from lrtrack.data import load_data
    from lrtrack.models import build_model

    configs = list(configs)
    loggers = list(loggers) if loggers is not None else [MemoryLogger() for _ in configs]
    hooks = list(hooks) if hooks is not None else [None] * len(configs)
    if len({pack_key(config) for config in configs}) > 1:
        differing = [f for i, f in enumerate(PACK_FIELDS) if len({pack_key(c)[i] for c in configs}) > 1]
        raise LrtrackError(f"cannot pack configs that differ in {', '.join(differing)}")
    first = configs[0]
    device = resolve_device(first.device)

    # data: loaded once per distinct split (the seed matters only for subsets and validation splits)
    data_keys = [_data_key(config) for config in configs]
    distinct = list(dict.fromkeys(data_keys))
    datas = [load_data(configs[data_keys.index(key)], device) for key in distinct]
    if datas[0].path != "resident":
        for data in datas:
            data.close()
        return _one_by_one(configs, loggers, hooks, notify, "its data is streamed (the decoded splits exceed "
                           "resident_budget_mb, or data_path is streaming); packing needs resident data")
    configs = [config.model_copy(update={"data_path": datas[0].path}) for config in configs]  # the path taken, as logged
    train_x = torch.cat([d.train.x for d in datas]) if len(datas) > 1 else datas[0].train.x
    train_y = torch.cat([d.train.y for d in datas]) if len(datas) > 1 else datas[0].train.y

    # models: each member's weights are what torch.manual_seed(seed) + build_model give alone
    models = []
    for config in configs:
        torch.manual_seed(config.seed)
        models.append(build_model(config, datas[0].input_shape, datas[0].num_classes).to(device))
    if reason := packing_refusal(models[0], first.model):
        return _one_by_one(configs, loggers, hooks, notify, reason)
    skeleton = _skeleton(models[0])  # the structure functional_call runs
    stacked, buffers = stack_module_state(models)  # one (K, ...) leaf per parameter and buffer
    steps_per_epoch = batches_per_epoch(len(datas[0].train), first.batch_size, first.drop_last)

    members = []
    for i, (config, logger, hook) in enumerate(zip(configs, loggers, hooks)):
        with torch.no_grad():
            weights = {name: tensor[i].detach().requires_grad_() for name, tensor in stacked.items()}
        optimizer = build_optimizer(config, weights.values())
        members.append(Member(
            config=config, hook=hook, record=Recorder(config, logger, data_summary(datas[0])), data=distinct.index(data_keys[i]),
            generator=torch.Generator().manual_seed(config.seed + 1), weights=weights, optimizer=optimizer,
            augment_generator=torch.Generator().manual_seed(config.seed + 2) if config.augment else None,
            scheduler=build_scheduler(config, optimizer, steps_per_epoch),
        ))

    active = members
    try:
        for epoch in itertools.count(1):
            tick = time.perf_counter()
            trained = _train_epoch(skeleton, stacked, buffers, active, train_x, train_y, len(datas[0].train))
            vals = _evaluate(skeleton, stacked, buffers, active, [d.eval_split for d in datas], first)
            tests = _evaluate(skeleton, stacked, buffers, active, [d.test for d in datas], first) \
                if datas[0].val is not None else [None] * len(active)
            seconds = time.perf_counter() - tick
            for member, (loss, acc, lr), val, test in zip(active, trained, vals, tests):
                metrics = epoch_metrics(epoch, loss, acc, val, test, lr, seconds, len(datas[0].train))
                stop = member.record.end_epoch(metrics, member.snapshot, member.scheduler, member.hook)
                if stop or epoch == member.config.epochs:
                    _finish(member, stop or State.FINISHED)
            survivors = [member for member in active if member.state is None]
            if not survivors:
                break
            if len(survivors) < len(active):
                stacked, buffers = _restack(stacked, buffers, survivors, active)
            active = survivors
    except KeyboardInterrupt:
        for member in members:
            if member.state is None:
                _finish(member, State.INTERRUPTED)
        raise
    except Exception:
        for member in members:
            if member.state is None:
                _finish(member, State.FAILED)
        raise
    return [member.result for member in members]


def _one_by_one(configs, loggers, hooks, notify, reason: str) -> list[RunResult]:
    """The refusal: one line naming ``reason`` to ``notify`` (default: stderr), then each config
    trained alone with `lrtrack.train.run`."""
    from lrtrack.train import run

    (notify or _stderr)(f"pack: not packing {len(configs)} runs: {reason}; training them one by one")
    return [run(config, logger, on_epoch=hook) for config, logger, hook in zip(configs, loggers, hooks)]


def _stderr(line: str) -> None:
    import sys

    print(line, file=sys.stderr, flush=True)


def _skeleton(model: torch.nn.Module) -> torch.nn.Module:
    """A weightless copy of ``model`` for ``functional_call``, its Linear layers computing
    ``(W @ x^T)^T + b`` instead of ``x @ W^T + b``.

    Same result; but under ``vmap`` the batched weight gradient then comes out in the
    weights' own ``(K, out, in)`` layout, where ``x @ W^T`` makes autograd transpose-copy
    every weight gradient: measured 1.2-1.3x the packed step time on CPU.
    """
    import copy

    import torch
    from torch import nn

    class WeightLayoutLinear(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.matmul(self.weight, x.mT).mT
            return out if self.bias is None else out + self.bias

    skeleton = copy.deepcopy(model)
    for module in skeleton.modules():
        if type(module) is nn.Linear:
            module.__class__ = WeightLayoutLinear  # same attributes, other forward
    return skeleton.to("meta")


def _data_key(config: TrainConfig) -> tuple:
    """Members with equal keys see identical splits."""
    seeded = config.train_size is not None or config.test_size is not None or config.val_split > 0
    return (config.seed if seeded else None,)


def _finish(member: Member, state: str) -> None:
    member.state = state
    member.result = member.record.finish(state, member.snapshot)


def _batched_forward(skeleton: torch.nn.Module):
    """``(weights, buffers, x) -> logits`` of all members at once: x is ``(K, B, ...)``, logits ``(K, B, C)``."""
    from torch.func import functional_call, vmap

    return vmap(lambda weights, buffers, x: functional_call(skeleton, (weights, buffers), (x,), tie_weights=False))


def _member_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's mean cross-entropy, ``(K,)``: one flat call outside vmap (measured cheaper)."""
    import torch.nn.functional as F

    per_sample = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
    return per_sample.view(y.shape).mean(1)


def _train_epoch(skeleton, stacked, buffers, active: list[Member], train_x, train_y, n: int) -> list[tuple]:
    """One pass for every active member, each in its own seeded order; (loss, acc, lr used) per member.

    Mirrors `lrtrack.train.train_epoch`: the same batches, the same optimizer and
    scheduler steps, loss and correct counts accumulated on the device and read once.
    """
    import torch

    config = active[0].config
    size = config.batch_size
    device = train_x.device
    offsets = [member.data * n for member in active]  # where each member's split starts in train_x
    orders = torch.stack([torch.randperm(n, generator=m.generator) + offset for m, offset in zip(active, offsets)])
    orders = orders.to(device)
    end = samples_per_epoch(n, size, config.drop_last)
    loss_sum = torch.zeros(len(active), device=device)
    correct = torch.zeros(len(active), device=device, dtype=torch.long)
    first_lrs = [m.optimizer.param_groups[0]["lr"] for m in active]
    lr_sums = [0.0] * len(active)
    steps = 0
    forward = _batched_forward(skeleton)
    mixed_precision = precision_context(config, device)
    for start in range(0, end, size):
        index = orders[:, start : start + size]
        # (K, B, ...) and (K, B); index_select measured 5x faster than train_x[index] on CPU
        x = train_x.index_select(0, index.reshape(-1)).view(*index.shape, *train_x.shape[1:])
        y = train_y.index_select(0, index.reshape(-1)).view(index.shape)
        if config.augment:  # each member's batch with its own generator, as `lrtrack.train.train_epoch` does
            x = torch.stack([augment(x[j], member.augment_generator) for j, member in enumerate(active)])
        with mixed_precision:
            logits = forward(stacked, buffers, x)
            losses = _member_losses(logits, y)
        for tensor in stacked.values():
            tensor.grad = None
        losses.sum().backward()  # members are independent: each gets its own loss's gradient
        for j, member in enumerate(active):
            for name, weight in member.weights.items():
                weight.grad = stacked[name].grad[j]
            lr_sums[j] += member.optimizer.param_groups[0]["lr"]
            member.optimizer.step()
            if member.per_batch:
                member.scheduler.step()
        loss_sum += losses.detach() * y.shape[1]
        correct += (logits.argmax(-1) == y).sum(1)
        steps += 1
    losses_seen, correct_seen = torch.stack([loss_sum, correct.to(loss_sum.dtype)]).tolist()
    return [
        (loss / end, right / end, lr_sums[j] / max(steps, 1) if member.per_batch else first_lrs[j])
        for j, (member, loss, right) in enumerate(zip(active, losses_seen, correct_seen))
    ]


def _evaluate(skeleton, stacked, buffers, active: list[Member], splits, config: TrainConfig) -> list[dict[str, float]]:
    """Mean loss and accuracy of every active member on its own ``splits[member.data]``, without gradients."""
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, vmap

    shared = len({member.data for member in active}) == 1

    def sums(weights, buffers, x, y):
        logits = functional_call(skeleton, (weights, buffers), (x,)).float()
        return F.cross_entropy(logits, y, reduction="sum"), (logits.argmax(1) == y).sum()

    # one split for all: broadcast it (in_dims None) instead of copying it K times
    batched = vmap(sums, in_dims=(0, 0, None, None) if shared else 0)
    own = [splits[member.data] for member in active]
    n, size = len(own[0]), config.eval_batch_size
    loss_sum = torch.zeros(len(active), device=own[0].x.device)
    correct = torch.zeros(len(active), device=own[0].x.device)
    with torch.no_grad(), precision_context(config, own[0].x.device):
        for start in range(0, n, size):
            if shared:
                x, y = own[0].x[start : start + size], own[0].y[start : start + size]
            else:
                x = torch.stack([split.x[start : start + size] for split in own])
                y = torch.stack([split.y[start : start + size] for split in own])
            losses, rights = batched(stacked, buffers, x, y)
            loss_sum += losses
            correct += rights
    losses_seen, correct_seen = torch.stack([loss_sum, correct]).tolist()
    return [{"loss": loss / n, "acc": right / n} for loss, right in zip(losses_seen, correct_seen)]


def _restack(stacked: dict, buffers: dict, survivors: list[Member], previous: list[Member]) -> tuple[dict, dict]:
    """Stacked tensors holding only the survivors; their optimizers keep the same weight objects."""
    import torch

    keep = torch.tensor([previous.index(member) for member in survivors])
    with torch.no_grad():
        stacked = {name: tensor.detach()[keep].requires_grad_() for name, tensor in stacked.items()}
        for j, member in enumerate(survivors):
            for name, weight in member.weights.items():
                weight.data = stacked[name][j]  # same tensor object (optimizer state stays), new storage
        buffers = {name: tensor[keep] for name, tensor in buffers.items()}
    return stacked, buffers
