"""Training the endplate head (:mod:`core.models.endplate`), the classifier's Schmorl's-node detector.

It trains after the classifier's main network, on the same annotated boxes, in a fixed number of steps whatever
the size of the study: each batch holds a third of SN boxes (drawn with replacement, so a few dozen nodes are
enough) and two thirds of other boxes. The boxes are jittered (a shift of up to ``shift`` of their size and a scale
of 1 ± ``scale``, as a detector's boxes differ from a reader's), the bands flipped left-right at random and given
brightness, contrast and noise. The learning rate drops tenfold for the last quarter of the steps. The head is
scored on the validation split every ``steps / 4`` steps and the best (AUC, then validation loss) is kept.

With fewer than ``min_positives`` SN boxes to learn from, no head is trained: a retrain keeps the parent's head,
and a new classifier has none (its SN output is the main network's).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.annotations.model import Disease
from core.models.classifier import grey_tensor
from core.models.endplate import EndplateGeometry, EndplateNet, extract_bands
from core.progress import Progress, ProgressGenerator
from core.training.checkpoints import TrainingRun
from core.training.classification_data import SliceCache
from core.training.datasets import SliceRecord
from core.training.fit import Evaluation, finite, fit, optimizer_step

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EndplateTraining:
    steps: int = 400
    batch_size: int = 64
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    positive_share: float = 1 / 3
    shift: float = 0.05
    scale: float = 0.05
    brightness: float = 0.1
    contrast: float = 0.1
    noise: float = 0.1
    min_positives: int = 5
    seed: int = 0


@dataclass
class TrainedEndplate:
    state: dict[str, torch.Tensor]
    validation: np.ndarray  # (validation boxes,) SN probabilities, in box order
    auc: float | None
    positives: int
    step: int


def _index(records: Sequence[SliceRecord]) -> tuple[np.ndarray, np.ndarray]:
    """(boxes, 2) record and box indices, and (boxes,) SN labels, in box order."""
    where = [(r, b) for r, record in enumerate(records) for b in range(len(record.boxes))]
    labels = [Disease.SN in records[r].diseases[b] for r, b in where]
    return np.asarray(where, dtype=np.int64).reshape(-1, 2), np.asarray(labels, dtype=np.float32)


def _jitter(boxes: np.ndarray, settings: EndplateTraining, rng: np.random.Generator) -> np.ndarray:
    size = boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + rng.uniform(-settings.shift, settings.shift, size.shape) * size
    half = size / 2 * rng.uniform(1 - settings.scale, 1 + settings.scale, (len(boxes), 1))
    return np.concatenate([centre - half, centre + half], axis=1)


def band_batch(picks: np.ndarray, records: Sequence[SliceRecord], cache: SliceCache, geometry: EndplateGeometry,
               device: torch.device, rng: np.random.Generator | None = None,
               settings: EndplateTraining | None = None) -> torch.Tensor:
    """The bands of the boxes ``picks`` ((n, 2) record and box indices), one batched cut per slice; jittered with
    ``rng``."""
    out: list[torch.Tensor | None] = [None] * len(picks)
    by_slice: dict[int, list[int]] = {}
    for position, (record, _) in enumerate(picks):
        by_slice.setdefault(int(record), []).append(position)
    for record_index, positions in by_slice.items():
        record = records[record_index]
        boxes = record.boxes[[int(picks[p][1]) for p in positions]]
        if rng is not None and settings is not None:
            boxes = _jitter(boxes, settings, rng)
        found = extract_bands(grey_tensor(cache.image(record), device), boxes, geometry)
        for offset, position in enumerate(positions):
            out[position] = found[offset]
    return torch.stack(out)  # type: ignore[arg-type]


def _augment(bands: torch.Tensor, settings: EndplateTraining, generator: torch.Generator) -> torch.Tensor:
    m = len(bands)

    def uniform(spread: float) -> torch.Tensor:
        return ((torch.rand(m, 1, 1, 1, generator=generator) * 2 - 1) * spread).to(bands)

    flip = (torch.rand(m, generator=generator) < 0.5).to(bands.device)
    bands = torch.where(flip[:, None, None, None], bands.flip(3), bands)
    noise = torch.randn(bands.shape, generator=generator).to(bands) * settings.noise
    return bands * (1 + uniform(settings.contrast)) + uniform(settings.brightness) + noise


@torch.inference_mode()
def predict_endplate(model: EndplateNet, records: Sequence[SliceRecord], cache: SliceCache,
                     geometry: EndplateGeometry, device: torch.device, chunk: int = 512) -> np.ndarray:
    """SN probabilities of every box of ``records``, in box order."""
    model.eval()
    picks, _ = _index(records)
    out = [torch.sigmoid(model(band_batch(picks[i : i + chunk], records, cache, geometry, device))).float().cpu()
           for i in range(0, len(picks), chunk)]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


def _score(truth: np.ndarray, probabilities: np.ndarray) -> tuple[float | None, float]:
    from sklearn.metrics import roc_auc_score

    p = np.clip(probabilities, 1e-6, 1 - 1e-6)
    loss = float(-np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p))) if len(p) else 0.0
    auc = float(roc_auc_score(truth, p)) if 0 < truth.sum() < len(truth) else None
    return auc, loss


class _HeadTraining:
    """The head's steps in rounds of ``steps / 4`` (the last may be shorter), each scored on the validation split:
    :func:`core.training.fit.fit`'s epochs."""

    def __init__(self, model: EndplateNet, train: Sequence[SliceRecord], val: Sequence[SliceRecord],
                 geometry: EndplateGeometry, settings: EndplateTraining, cache: SliceCache,
                 device: torch.device) -> None:
        self.model, self.train, self.val, self.geometry = model, train, val, geometry
        self.settings, self.cache, self.device = settings, cache, device
        self.picks, self.labels = _index(train)
        self.positives = np.flatnonzero(self.labels > 0.5)
        self.negatives = np.flatnonzero(self.labels < 0.5)
        self.val_picks, self.val_labels = _index(val)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                         weight_decay=settings.weight_decay)
        self.rng = np.random.default_rng([settings.seed, 7])
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.every = max(1, settings.steps // 4)
        self.rounds = math.ceil(settings.steps / self.every)
        self.n_positive = max(1, round(settings.batch_size * settings.positive_share))

    def last_step(self, round_: int) -> int:
        return min(self.settings.steps, (round_ + 1) * self.every)

    def train_one_epoch(self, round_: int) -> Iterator[Progress]:
        settings, model = self.settings, self.model
        model.train()
        for step in range(round_ * self.every + 1, self.last_step(round_) + 1):
            if step == math.ceil(settings.steps * 0.75) + 1:
                for group in self.optimizer.param_groups:
                    group["lr"] = settings.lr * 0.1
            chosen = np.concatenate([self.rng.choice(self.positives, self.n_positive),
                                     self.rng.choice(self.negatives, settings.batch_size - self.n_positive)])
            bands = _augment(band_batch(self.picks[chosen], self.train, self.cache, self.geometry, self.device,
                                        self.rng, settings), settings, self.generator)
            target = torch.from_numpy(self.labels[chosen]).to(self.device)
            loss = F.binary_cross_entropy_with_logits(model(bands), target)
            value = finite(loss, lambda value, step=step: f"the endplate head's loss became {value} at step {step}")
            optimizer_step(loss, self.optimizer, None)
            yield Progress("endplate", step, settings.steps, f"Schmorl's node head, loss {value:.3f}")

    def evaluate(self, round_: int) -> Evaluation:
        probabilities = (predict_endplate(self.model, self.val, self.cache, self.geometry, self.device)
                         if len(self.val_picks) else np.zeros(0))
        auc, val_loss = _score(self.val_labels, probabilities)
        return Evaluation({"auc": auc, "val_loss": val_loss, "step": self.last_step(round_)},
                          {"probabilities": torch.from_numpy(np.asarray(probabilities))})


def _rank(metrics: Mapping[str, Any]) -> tuple[float, float]:
    """The best head has the highest validation AUC, then the lowest validation loss (the later one on a tie)."""
    return (metrics["auc"] if metrics["auc"] is not None else 0.0, -metrics["val_loss"])


def train_endplate(train: Sequence[SliceRecord], val: Sequence[SliceRecord], geometry: EndplateGeometry,
                   settings: EndplateTraining | None = None, *, cache: SliceCache | None = None,
                   device: torch.device | str = "cpu",
                   initial_state: dict[str, torch.Tensor] | None = None) -> ProgressGenerator[TrainedEndplate | None]:
    """Train the head on the SN labels of ``train``'s boxes; None when there are too few nodes to learn from."""
    settings = settings or EndplateTraining()
    device = torch.device(device)
    cache = cache or SliceCache()
    _, labels = _index(train)
    positives, negatives = int((labels > 0.5).sum()), int((labels < 0.5).sum())
    if positives < settings.min_positives or negatives == 0:
        log.info("endplate head not trained: %d Schmorl's node boxes (at least %d needed)", positives,
                 settings.min_positives)
        return None
    torch.manual_seed(settings.seed)
    model = EndplateNet(geometry)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    model = model.to(device)
    head = _HeadTraining(model, train, val, geometry, settings, cache, device)
    run = TrainingRun(None, {"model": model}, score="auc", resume=False, rank=_rank, ties=True)
    yield from fit(run, head.train_one_epoch, head.evaluate, epochs=head.rounds, settings=asdict(settings))
    best = run.best
    assert best is not None and run.best_state is not None
    log.info("endplate head: validation AUC %s at step %d, from %d Schmorl's node boxes",
             "n/a" if best["auc"] is None else f"{best['auc']:.3f}", best["step"], positives)
    return TrainedEndplate(run.best_state, run.best_extra["probabilities"].numpy().astype(np.float32), best["auc"],
                           positives, best["step"])
