"""The learning-rate range test (L. Smith 2015; fastai's ``lr_find``, Lightning's ``Tuner.lr_find``).

One short run in which the rate grows exponentially batch by batch, from ``start_lr``
to ``end_lr`` over ``num_iter`` batches, while the loss is recorded; a rate is then
read off the curve. It reads top to bottom:

1. `lr_schedule`: the rates, ``start * (end/start) ** (i / (num_iter - 1))``.
2. `CurveRecorder`: each batch's loss, smoothed by an exponential moving average
   (``beta`` 0.98) with bias correction (``avg / (1 - beta**(i+1))``, so the first
   points are not pulled towards zero). The curve ends early once the smoothed loss
   exceeds ``stop_factor`` (4) times its best, or at the first NaN/inf loss, which
   is left out of the curve and ends it, never the command.
   Batch *i*'s loss is computed before the optimizer step at ``lrs[i]``, so it shows
   the effect of the steps before it (as in fastai).
3. `range_test`: runs the test on a given model and optimizer, and restores both
   state dicts afterwards: nothing carries over to later training.
   `lr_find` runs it for a `TrainConfig` (the same data, model, optimizer, batch size
   and precision as ``lrtrack train``) with K seeds: seed ``s`` builds its weights as
   `lrtrack.train.run` does (``torch.manual_seed(s)``) and its data order from
   ``s + 1``; the global RNG state is restored afterwards. The batches come from
   either data path of `lrtrack.data` (resident or streaming), epoch after epoch
   until ``num_iter`` batches are taken. Where the model and data allow (no buffers,
   such as BatchNorm's running statistics; resident data), the K repeats train
   together with the ``torch.func.vmap`` machinery of packed training
   (`lrtrack.pack`); otherwise one after another. Both give the same curves up to
   floating-point rounding.
4. `suggest`: three rules, side by side (`SUGGESTION_RULES`), on a smoothed curve:
   ``valley`` (fastai's: the middle of the longest stretch over which the smoothed
   loss keeps falling, i.e. the span of its longest decreasing subsequence),
   ``steep`` (the steepest descent of the smoothed loss against log10 lr, before
   its minimum) and ``minimum/10`` (the rate at the lowest smoothed loss, divided by 10).
   With K > 1 the suggestions are read off the median curve; each rule's spread is
   the range of its per-seed suggestions.
5. Outputs: `write_html` (a self-contained page with the SVG chart), `log_to_wandb`
   (history rows ``iteration``/``lr``/``loss``, suggestions in the summary, the chart
   as an image) and `sweep_spec` (a W&B-syntax sweep around the suggestion that
   carries the result, so ``lrtrack report`` can draw it beside the sweep's results).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lrtrack.formatting import format_value
from lrtrack.errors import UserError
from lrtrack.metrics import VAL_ACC

if TYPE_CHECKING:
    import torch

    from lrtrack.config import TrainConfig
    from lrtrack.data import Split, StreamSplit

#: How a curve ended: it ran all ``num_iter`` batches, the smoothed loss exceeded
#: ``stop_factor`` times its best, or a loss was NaN/inf.
COMPLETED, DIVERGED, NON_FINITE = "completed", "diverged", "non-finite"

#: The suggestion rules, in the order they are shown.
SUGGESTION_RULES = ("valley", "steep", "minimum/10")
SuggestionRule = Literal["valley", "steep", "minimum/10"]

#: The sweep grid around a suggestion ``s``: ``s * 10**(k/2)`` for these ``k``, i.e.
#: half-decade steps from s/10 to about 3x s (3.16x); random/bayes search draws
#: ``log_uniform_values`` between the same bounds.
GRID_HALF_DECADES = (-2, -1, 0, 1)
SWEEP_METHODS = ("grid", "random", "bayes")

#: Called after every batch with (iteration, lr, raw losses of the seeds still running).
StepHook = Callable[[int, float, list[float]], None]


class RangeTestSettings(BaseModel):
    """The range test's own settings (the training settings are a `TrainConfig`)."""

    model_config = ConfigDict(extra="forbid")

    start_lr: float = Field(1e-7, gt=0.0, description="First learning rate of the exponential schedule.")
    end_lr: float = Field(10.0, gt=0.0, description="Last learning rate of the exponential schedule.")
    num_iter: int = Field(100, ge=10, description="Batches the rate grows over (at least 10).")
    seeds: int = Field(1, ge=1, description="Repeat the test with this many seeds (seed, seed+1, ...); "
                                            "report the median curve and each suggestion's spread.")
    beta: float = Field(0.98, ge=0.0, lt=1.0, description="Smoothing of the loss (EMA factor, bias-corrected).")
    stop_factor: float = Field(4.0, gt=1.0, description="Stop once the smoothed loss exceeds this times its best.")
    suggestion: SuggestionRule = Field("minimum/10", description="The suggestion the sweep is centred on "
                                                                 "(see the README: measured on the studies).")

    @model_validator(mode="after")
    def _increasing(self) -> RangeTestSettings:
        if self.start_lr >= self.end_lr:
            raise ValueError(f"--start-lr ({self.start_lr:g}) must be smaller than --end-lr ({self.end_lr:g})")
        return self


def make_settings(values: dict[str, Any]) -> RangeTestSettings:
    """Validate ``values`` (flags by field name) or raise `UserError` naming each flag."""
    from lrtrack.config import validation_lines

    try:
        return RangeTestSettings(**values)
    except ValidationError as exc:
        raise UserError(validation_lines(exc, flags=True)) from None


def lr_schedule(start_lr: float, end_lr: float, num_iter: int) -> list[float]:
    """``num_iter`` rates growing exponentially from ``start_lr`` to ``end_lr`` (both included)."""
    ratio = end_lr / start_lr
    return [start_lr * ratio ** (i / (num_iter - 1)) for i in range(num_iter)]


@dataclass
class Curve:
    """One range test: the rates tried, raw and smoothed losses, and how it ended."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    stop: str | None = None  #: None while running, then COMPLETED, DIVERGED or NON_FINITE


class CurveRecorder:
    """Builds a `Curve` batch by batch: EMA smoothing with bias correction and the stopping rules."""

    def __init__(self, beta: float, stop_factor: float) -> None:
        self.beta, self.stop_factor = beta, stop_factor
        self.curve = Curve()
        self._average = 0.0
        self._best = math.inf

    @property
    def running(self) -> bool:
        return self.curve.stop is None

    def add(self, lr: float, loss: float) -> bool:
        """Record batch ``lr``/``loss``; True when the curve ends here."""
        if not math.isfinite(loss):
            self.curve.stop = NON_FINITE  # the point is not part of the curve
            return True
        self._average = self.beta * self._average + (1 - self.beta) * loss
        smoothed = self._average / (1 - self.beta ** (len(self.curve.losses) + 1))
        self.curve.lrs.append(lr)
        self.curve.losses.append(loss)
        self.curve.smoothed.append(smoothed)
        self._best = min(self._best, smoothed)
        if smoothed > self.stop_factor * self._best:
            self.curve.stop = DIVERGED
            return True
        return False

    def end(self) -> Curve:
        if self.curve.stop is None:
            self.curve.stop = COMPLETED
        return self.curve


# --- suggestions --------------------------------------------------------------------------------

@dataclass
class Suggestion:
    """One rule's suggested rate (None when the curve is too short) and the numbers behind it."""

    rule: str
    lr: float | None
    detail: str


def suggest(lrs: list[float], smoothed: list[float], num_iter: int) -> dict[str, Suggestion]:
    """Each rule of `SUGGESTION_RULES` on one smoothed curve, its first `warmup_points` left out."""
    skip = warmup_points(num_iter)
    lrs, smoothed = lrs[skip:], smoothed[skip:]
    return {"valley": valley(lrs, smoothed), "steep": steep(lrs, smoothed), "minimum/10": minimum_tenth(lrs, smoothed)}


def warmup_points(num_iter: int) -> int:
    """Points the rules ignore at the start: a tenth of the schedule, at most 10 (Lightning's ``skip_begin``).

    There the bias-corrected average rests on a handful of batches, as noisy as one
    batch: measured on study D's settings (batch size 10), the lowest smoothed loss
    was otherwise the very first point for most seeds.
    """
    return min(10, num_iter // 10)


def valley(lrs: list[float], smoothed: list[float]) -> Suggestion:
    """The middle of the longest stretch where the smoothed loss falls (fastai's ``valley``).

    The stretch is the span of the longest decreasing subsequence, so a small bump
    inside a long descent does not cut it in two.
    """
    n = len(smoothed)
    if n < 3:
        return Suggestion("valley", None, "curve too short")
    length = [1] * n  # longest decreasing subsequence ending at i
    start = list(range(n))  # where that subsequence starts
    for i in range(1, n):
        for j in range(i):
            if smoothed[i] < smoothed[j] and length[j] + 1 > length[i]:
                length[i], start[i] = length[j] + 1, start[j]
    end = max(range(n), key=lambda i: (length[i], i - start[i]))  # ties: the widest stretch
    first = start[end]
    middle = (first + end) // 2
    return Suggestion("valley", lrs[middle], f"loss falls from lr {lrs[first]:.3g} to {lrs[end]:.3g} "
                                             f"({smoothed[first]:.3g} -> {smoothed[end]:.3g}); middle")


def steep(lrs: list[float], smoothed: list[float]) -> Suggestion:
    """Where the smoothed loss falls fastest against log10 lr, before its minimum."""
    import numpy as np

    lowest = int(np.argmin(smoothed))
    if lowest < 2:
        return Suggestion("steep", None, "no descent before the minimum")
    slopes = np.gradient(np.asarray(smoothed[: lowest + 1]), np.log10(lrs[: lowest + 1]))
    i = int(np.argmin(slopes))
    return Suggestion("steep", lrs[i], f"slope {slopes[i]:.3g} per decade of lr")


def minimum_tenth(lrs: list[float], smoothed: list[float]) -> Suggestion:
    """The rate at the lowest smoothed loss, divided by 10."""
    if not smoothed:
        return Suggestion("minimum/10", None, "empty curve")
    i = min(range(len(smoothed)), key=smoothed.__getitem__)
    return Suggestion("minimum/10", lrs[i] / 10, f"lowest smoothed loss {smoothed[i]:.3g} at lr {lrs[i]:.3g}")


# --- running the test ---------------------------------------------------------------------------

def range_test(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Iterator[tuple[Any, Any]],
               settings: RangeTestSettings, *, precision: Any = None, on_step: StepHook | None = None) -> Curve:
    """The range test on ``model``/``optimizer`` with ``(x, y)`` batches (cross-entropy loss).

    Both state dicts (weights, optimizer moments and hyper-parameters) are restored
    afterwards, whatever happens, so nothing carries over to later training.
    """
    import contextlib
    import copy

    import torch.nn.functional as F

    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    recorder = CurveRecorder(settings.beta, settings.stop_factor)
    model.train()
    try:
        for i, lr in enumerate(lr_schedule(settings.start_lr, settings.end_lr, settings.num_iter)):
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = next(batches)
            with precision or contextlib.nullcontext():
                loss = F.cross_entropy(model(x), y)
            value = loss.item()
            if on_step:
                on_step(i, lr, [value])
            if recorder.add(lr, value):
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
    return recorder.end()


def cycled_batches(split: Split | StreamSplit, batch_size: int, drop_last: bool,
                   generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` batches of ``split`` epoch after epoch, each epoch in a fresh seeded order, as
    `lrtrack.train.train_epoch` draws them, from either data path (`lrtrack.data`): the range
    test takes as many batches as ``num_iter`` asks, however small the split."""
    import torch

    from lrtrack.train import samples_per_epoch

    end = samples_per_epoch(len(split), batch_size, drop_last)
    while True:
        yield from split.train_batches(torch.randperm(len(split), generator=generator), batch_size, end)


def batch_indices(n: int, batch_size: int, drop_last: bool, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches epoch after epoch, each epoch in a fresh seeded order, as `lrtrack.train.train_epoch`
    does: the seeds trained together (`_batched_curves`) gather their batches from resident tensors."""
    import torch

    from lrtrack.train import samples_per_epoch

    end = samples_per_epoch(n, batch_size, drop_last)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, end, batch_size):
            yield order[start : start + batch_size]


def lr_find(config: TrainConfig, settings: RangeTestSettings, on_step: StepHook | None = None,
            batched: bool | None = None) -> RangeTestResult:
    """The range test of ``config`` with ``settings.seeds`` seeds (``config.seed`` onwards).

    The seeds train together with vmap where the model and data allow (`can_batch`) unless
    ``batched`` is False, which forces one after another. The global RNG state is restored.
    """
    import torch

    from lrtrack.train import resolve_device

    seeds = [config.seed + k for k in range(settings.seeds)]
    device = resolve_device(config.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        batched = len(seeds) > 1 and batched is not False and can_batch(config, device)
        curves = _batched_curves(config, settings, seeds, device, on_step) if batched else [
            _single_curve(config.model_copy(update={"seed": seed}), settings, device, on_step) for seed in seeds]
    return RangeTestResult.from_curves(config, settings, seeds, curves, batched=batched)


def can_batch(config: TrainConfig, device: torch.device) -> bool:
    """True when the data is resident (the seeds' batches are gathered from its tensors) and the
    model has no buffers (vmap cannot update BatchNorm-style running statistics in place)."""
    import torch

    from lrtrack.data import load_data
    from lrtrack.models import build_model

    data = load_data(config, device)
    try:
        if data.path != "resident":
            return False
        with torch.random.fork_rng(devices=[]):
            model = build_model(config, data.input_shape, data.num_classes)
    finally:
        data.close()
    return not list(model.buffers())


def _single_curve(config: TrainConfig, settings: RangeTestSettings, device: torch.device,
                  on_step: StepHook | None) -> Curve:
    """One seed's curve: the model, optimizer and batches `lrtrack.train.run` would use, on
    whichever data path `lrtrack.data.load_data` takes (a streaming path's workers end with it)."""
    import torch

    from lrtrack.data import load_data
    from lrtrack.models import build_model
    from lrtrack.train import build_optimizer, precision_context

    data = load_data(config, device)
    try:
        torch.manual_seed(config.seed)
        model = build_model(config, data.input_shape, data.num_classes).to(device)
        optimizer = build_optimizer(config.model_copy(update={"lr": settings.start_lr}), model.parameters())
        batches = cycled_batches(data.train, config.batch_size, config.drop_last,
                                 torch.Generator().manual_seed(config.seed + 1))
        return range_test(model, optimizer, batches, settings, precision=precision_context(config, device),
                          on_step=on_step)
    finally:
        data.close()


def _batched_curves(config: TrainConfig, settings: RangeTestSettings, seeds: list[int], device: torch.device,
                    on_step: StepHook | None) -> list[Curve]:
    """All seeds' curves in one vmap-ed program, with packed training's machinery (`lrtrack.pack`):
    stacked weights, per-seed optimizers on views of them, one forward and backward per batch."""
    import torch
    from torch.func import stack_module_state

    from lrtrack.data import load_data
    from lrtrack.models import build_model
    from lrtrack.pack import _batched_forward, _data_key, _member_losses, _skeleton
    from lrtrack.train import build_optimizer, precision_context

    configs = [config.model_copy(update={"seed": seed}) for seed in seeds]
    data_keys = [_data_key(c) for c in configs]  # seeds share the split unless it is a seeded subset
    distinct = list(dict.fromkeys(data_keys))
    datas = [load_data(configs[data_keys.index(key)], device) for key in distinct]
    n = len(datas[0].train)
    train_x = torch.cat([d.train.x for d in datas])
    train_y = torch.cat([d.train.y for d in datas])
    offsets = [distinct.index(key) * n for key in data_keys]

    models = []
    for c in configs:
        torch.manual_seed(c.seed)
        models.append(build_model(c, datas[0].input_shape, datas[0].num_classes).to(device))
    skeleton = _skeleton(models[0])
    stacked, buffers = stack_module_state(models)
    weights, optimizers = [], []
    for k, c in enumerate(configs):
        with torch.no_grad():
            own = {name: tensor[k].detach().requires_grad_() for name, tensor in stacked.items()}
        weights.append(own)
        optimizers.append(build_optimizer(c.model_copy(update={"lr": settings.start_lr}), own.values()))
    orders = [batch_indices(n, config.batch_size, config.drop_last, torch.Generator().manual_seed(c.seed + 1))
              for c in configs]
    recorders = [CurveRecorder(settings.beta, settings.stop_factor) for _ in configs]
    forward = _batched_forward(skeleton)
    mixed_precision = precision_context(config, device)
    for i, lr in enumerate(lr_schedule(settings.start_lr, settings.end_lr, settings.num_iter)):
        index = torch.stack([next(order) + offset for order, offset in zip(orders, offsets)]).to(device)
        x = train_x.index_select(0, index.reshape(-1)).view(*index.shape, *train_x.shape[1:])
        y = train_y.index_select(0, index.reshape(-1)).view(index.shape)
        with mixed_precision:
            losses = _member_losses(forward(stacked, buffers, x), y)
        values = losses.tolist()
        active = [k for k, r in enumerate(recorders) if r.running]
        if on_step:
            on_step(i, lr, [values[k] for k in active])
        active = [k for k in active if not recorders[k].add(lr, values[k])]
        if not active:
            break
        for tensor in stacked.values():
            tensor.grad = None
        losses[active].sum().backward()  # seeds are independent: each gets its own loss's gradient
        for k in active:
            for name, weight in weights[k].items():
                weight.grad = stacked[name].grad[k]
            for group in optimizers[k].param_groups:
                group["lr"] = lr
            optimizers[k].step()
    return [recorder.end() for recorder in recorders]


# --- results across seeds -----------------------------------------------------------------------

@dataclass
class RangeTestResult:
    """The curves of all seeds, the median curve with its band, and the suggestions.

    The median curve runs while more than half of the seeds' curves do; the band spans
    the seeds' lowest and highest smoothed loss at each rate. Suggestions are read
    off the median curve; ``per_seed`` holds each rule's suggestion on each seed's curve.
    """

    config: dict[str, Any]
    settings: dict[str, Any]
    seeds: list[int]
    curves: list[Curve]
    lrs: list[float]
    median: list[float]
    low: list[float]
    high: list[float]
    suggestions: dict[str, Suggestion]
    per_seed: dict[str, list[float | None]]
    batched: bool = False

    @classmethod
    def from_curves(cls, config: TrainConfig, settings: RangeTestSettings, seeds: list[int], curves: list[Curve],
                    batched: bool = False) -> RangeTestResult:
        import numpy as np

        schedule = lr_schedule(settings.start_lr, settings.end_lr, settings.num_iter)
        lrs, median, low, high = [], [], [], []
        for i, lr in enumerate(schedule):
            values = [c.smoothed[i] for c in curves if i < len(c.smoothed)]
            if 2 * len(values) <= len(curves):
                break
            lrs.append(lr)
            median.append(float(np.median(values)))
            low.append(min(values))
            high.append(max(values))
        per_seed = {rule: [] for rule in SUGGESTION_RULES}
        for curve in curves:
            for rule, suggestion in suggest(curve.lrs, curve.smoothed, settings.num_iter).items():
                per_seed[rule].append(suggestion.lr)
        return cls(config=config.model_dump(mode="json"), settings=settings.model_dump(), seeds=seeds, curves=curves,
                   lrs=lrs, median=median, low=low, high=high, suggestions=suggest(lrs, median, settings.num_iter), per_seed=per_seed,
                   batched=batched)

    @property
    def default(self) -> Suggestion:
        """The suggestion ``settings.suggestion`` names."""
        return self.suggestions[self.settings["suggestion"]]

    @property
    def drop(self) -> float:
        """How far the median smoothed loss fell below its first value, as a fraction of it."""
        return 1 - min(self.median) / self.median[0] if self.median and self.median[0] > 0 else 0.0

    def spread(self, rule: str) -> tuple[float, float] | None:
        """Lowest and highest per-seed suggestion of ``rule`` (None when a seed had none)."""
        values = self.per_seed[rule]
        if not values or any(v is None for v in values):
            return None
        return min(values), max(values)

    def spread_decades(self, rule: str) -> float | None:
        """``log10(highest / lowest)`` of the per-seed suggestions: 0 when all seeds agree."""
        bounds = self.spread(rule)
        return None if bounds is None else math.log10(bounds[1] / bounds[0])

    def summary(self) -> dict[str, Any]:
        """What the W&B run's summary holds: each suggestion, its per-seed range and the default."""
        out: dict[str, Any] = {"suggestion": self.default.lr, "suggestion/rule": self.default.rule,
                               "seeds": len(self.seeds), "iterations": len(self.lrs)}
        for rule, suggestion in self.suggestions.items():
            out[f"suggestions/{rule}"] = suggestion.lr
            bounds = self.spread(rule)
            if bounds is not None and len(self.seeds) > 1:
                out[f"spread/{rule}/low"], out[f"spread/{rule}/high"] = bounds
                out[f"spread/{rule}/decades"] = self.spread_decades(rule)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON/YAML), as stored in a sweep written by `sweep_spec`."""
        data = asdict(self)
        data["curves"] = [{"stop": c.stop, "points": len(c.lrs)} for c in self.curves]  # the median keeps the shape
        return data


def chart_svg(result: dict[str, Any], chart_id: str = "lr-find", won: tuple[str, float] | None = None) -> str:
    """The chart of a result (`RangeTestResult.to_dict`): smoothed loss against lr, the band, the
    suggestions marked; ``won`` marks another rate, e.g. ``("best in sweep", 0.001)``."""
    from lrtrack.charts import lr_range_chart

    return lr_range_chart(chart_id, result["lrs"], result["median"], result["low"], result["high"],
                          _marks(result), won=won, title=_title(result))


def _marks(result: dict[str, Any]) -> list[tuple[str, float]]:
    return [(rule, s["lr"]) for rule, s in result["suggestions"].items() if s["lr"] is not None]


def _title(result: dict[str, Any]) -> str:
    config = result["config"]
    seeds = len(result["seeds"])
    return (f"LR range test: {config['dataset']}, {config['model']}, {config['optimizer']}"
            f"{f', median of {seeds} seeds' if seeds > 1 else ''}")


# --- outputs ------------------------------------------------------------------------------------

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
table { border-collapse: collapse; } td, th { padding: .25rem .75rem; border-bottom: 1px solid #ddd; text-align: left; }
.chart-svg { width: 100%; height: auto; } .default { font-weight: bold; } code { font-size: .9em; }
</style></head><body>
<h1>{{ title }}</h1>
<p>Exponential schedule {{ fmt(settings.start_lr) }} &rarr; {{ fmt(settings.end_lr) }} over {{ settings.num_iter }} batches,
loss smoothed (EMA &beta; = {{ settings.beta }}, bias-corrected), stopped at {{ settings.stop_factor }}&times; the best.
Seeds: {{ seeds | join(", ") }}{% if batched %} (trained together with vmap){% endif %}.</p>
<figure id="chart-lr-find">{{ svg | safe }}</figure>
<table id="suggestions"><thead><tr><th>rule</th><th>suggested lr</th>{% if seeds | length > 1 %}<th>seeds' range</th>{% endif %}<th>behind it</th></tr></thead><tbody>
{% for rule, s in suggestions.items() %}
<tr data-rule="{{ rule }}" data-lr="{{ s.lr if s.lr is not none else '' }}"{% if rule == settings.suggestion %} class="default"{% endif %}>
<td>{{ rule }}{% if rule == settings.suggestion %} (default){% endif %}</td><td>{{ fmt(s.lr) }}</td>
{% if seeds | length > 1 %}<td>{{ spread(rule) }}</td>{% endif %}<td>{{ s.detail }}</td></tr>
{% endfor %}
</tbody></table>
<h2>Settings</h2><p>{% for key, value in config.items() if value is not none %}<code>{{ key }}={{ value }}</code> {% endfor %}</p>
</body></html>
"""


def spread_text(result: RangeTestResult, rule: str) -> str:
    """``1.2e-3 – 4.5e-3 (0.57 decades)`` for the seeds' range of ``rule``; ``-`` when undefined."""
    bounds = result.spread(rule)
    if bounds is None:
        return "-"
    return f"{bounds[0]:.3g} – {bounds[1]:.3g} ({result.spread_decades(rule):.2f} decades)"


def write_html(result: RangeTestResult, path: str | Path) -> Path:
    """A self-contained page (inline SVG, no network asset) with the chart and the suggestions table."""
    import jinja2

    data = result.to_dict()
    page = jinja2.Environment(autoescape=True).from_string(_HTML).render(
        title=_title(data), settings=result.settings, seeds=result.seeds, batched=result.batched,
        svg=chart_svg(data), suggestions=data["suggestions"], config=result.config,
        fmt=lambda v: "-" if v is None else f"{v:.3g}", spread=lambda rule: spread_text(result, rule))
    path = Path(path)
    path.write_text(page)
    return path


def log_to_wandb(result: RangeTestResult, project: str, entity: str | None, mode: str) -> str:
    """A W&B run (job type ``lr-find``): one history row per iteration (``iteration``, ``lr``,
    ``loss`` = median smoothed loss, ``loss/low``, ``loss/high``), the suggestions in the
    summary (`RangeTestResult.summary`) and the chart as an image. Returns the run id."""
    import tempfile

    import wandb

    from lrtrack.charts import lr_range_png

    config = result.config
    run = wandb.init(project=project, entity=entity, mode=mode, job_type="lr-find", reinit="create_new",
                     name=f"lr-find {config['dataset']} {config['model']} {config['optimizer']}",
                     config={**config, "lr_find": result.settings, "lr_find/seeds": result.seeds})
    try:
        run.define_metric("iteration")
        run.define_metric("*", step_metric="iteration")
        for i, (lr, loss, low, high) in enumerate(zip(result.lrs, result.median, result.low, result.high)):
            run.log({"iteration": i, "lr": lr, "loss": loss, "loss/low": low, "loss/high": high})
        data = result.to_dict()
        with tempfile.TemporaryDirectory() as folder:
            png = lr_range_png(Path(folder) / "lr-find.png", data["lrs"], data["median"], data["low"], data["high"],
                               _marks(data), title=_title(data))
            run.summary["chart"] = wandb.Image(str(png))
        run.summary.update(result.summary())
    finally:
        run.finish()
    return run.id


def sweep_spec(result: RangeTestResult, method: str = "grid", name: str | None = None) -> dict[str, Any]:
    """A sweep (W&B syntax, as ``lrtrack sweep create`` reads it) around the default suggestion.

    The tested settings are ``fixed`` (every TrainConfig value that is set, the rate
    aside); ``lr`` takes the grid ``s * 10**(k/2)`` for k in `GRID_HALF_DECADES`
    (``grid``), or ``log_uniform_values`` between its ends (``random``/``bayes``).
    ``range_test`` carries the result, so ``lrtrack report`` can draw it.
    """
    if method not in SWEEP_METHODS:
        raise UserError(f"--method: must be one of {', '.join(SWEEP_METHODS)}, not {method!r}")
    centre = result.default.lr
    if centre is None:
        raise UserError(f"--write-sweep: the {result.default.rule} rule found no rate on this curve")
    grid = [float(f"{centre * 10 ** (k / 2):.2g}") for k in GRID_HALF_DECADES]
    lr = {"values": grid} if method == "grid" else {"distribution": "log_uniform_values", "min": grid[0], "max": grid[-1]}
    fixed = {key: value for key, value in result.config.items() if value is not None and key != "lr"}
    config = result.config
    return {
        "name": name or f"lr-find-{config['dataset']}-{config['model']}-{config['optimizer']}",
        "description": (f"lr around the range test's {result.default.rule} suggestion {centre:.3g} "
                        f"(seeds {', '.join(map(str, result.seeds))}); written by lrtrack lr-find"),
        "method": method,
        "metric": {"name": VAL_ACC, "goal": "maximize"},
        "parameters": {"lr": lr},
        "fixed": fixed,
        "range_test": result.to_dict(),
    }


def write_sweep(result: RangeTestResult, path: str | Path, method: str = "grid") -> Path:
    """`sweep_spec` as YAML at ``path``, checked by `lrtrack.config.SweepSpec` first."""
    import yaml

    from lrtrack.config import SweepSpec

    spec = sweep_spec(result, method)
    try:
        SweepSpec(**spec)
    except ValidationError as exc:  # a bug here, not the user's input
        raise RuntimeError(f"lr-find wrote an invalid sweep: {exc}") from exc
    path = Path(path)
    path.write_text("# Written by `lrtrack lr-find`; range_test holds the curve it was read from.\n"
                    + yaml.safe_dump(spec, sort_keys=False, width=120))
    return path


def describe_lr(value: float | None) -> str:
    return "-" if value is None else format_value(float(f"{value:.3g}"))
