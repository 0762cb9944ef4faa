"""Training throughput: images per second for the detector and patches per second for the classifier, at the
``paper`` preset's settings or the CPU preset's (``--preset fast``), on a small phantom study.

The engines themselves are run (the same data loading, augmentation, mixed precision and optimiser as a real
training) and stopped after a few steps; the first step is a warm-up and is left out. Printed per model: the median
step time and items/s, the share of the time spent waiting for data (the loader for the detector, cutting and
augmenting patches for the classifier), the FLOPs per trained item (forward and backward), and the achieved FLOP/s
against this machine's matmul FLOP/s in the precision the training computes in, measured in the same run. On a GPU
that ratio against the bfloat16 matmul peak is the MFU. At the ``smoke`` size the study is one case of two slices,
the detector trains at 128 px and the classifier on 32 px patches.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from core.benchmarks import BenchmarkError, scale_for
from core.benchmarks.models import MODEL_SCALES, ModelScale, matmul_gflops
from core.models.classifier import build_classifier
from core.models.detector import build_detector
from core.models.devices import training_compute
from core.progress import Progress, run
from core.synthetic.generate import SynthOptions, generate_study
from core.training.classification_engine import PRESETS as CLASSIFIER_PRESETS
from core.training.classification_engine import ClassifierTraining, train_classifier
from core.training.datasets import DetectionDataset, collate, collect_records
from core.training.detection_engine import PRESETS as DETECTOR_PRESETS
from core.training.detection_engine import DetectorTraining, train_detector
from core.training.throughput import UNITS

SINGULAR = {"images": "image", "patches": "patch"}
STUDY = SynthOptions(cases=4, seed=3, slices_per_case=4, readers=0)


def _train_steps(generator: Any, steps: int) -> list[dict[str, float]]:
    """The payloads of the first ``steps`` training steps; the training is then stopped."""
    payloads: list[dict[str, float]] = []
    try:
        for event in generator:
            if isinstance(event, Progress) and event.stage == "train" and event.metrics:
                payloads.append(dict(event.metrics))
                if len(payloads) >= steps:
                    break
    finally:
        generator.close()
    return payloads


def _detector_flops(settings: Any, study: Path) -> float:
    """FLOPs of one training image, forward and backward."""
    config = settings.architecture()
    model = build_detector(config, use_imagenet=False).train()
    dataset = DetectionDataset(collect_records([study], "consensus")[:1], config.geometry, "none", config.window)
    images, targets = collate([dataset[0]])
    with FlopCounterMode(display=False) as counter:
        sum(model(images, targets).values()).backward()
    return counter.get_total_flops()


def _classifier_flops(settings: Any, batch: int = 2) -> float:
    """FLOPs of one training patch, forward and backward."""
    model = build_classifier(settings.architecture(), use_imagenet=False).train()
    with FlopCounterMode(display=False) as counter:
        model(torch.rand(batch, 3, settings.size, settings.size)).sum().backward()
    return counter.get_total_flops() / batch


def _summary(payloads: list[dict[str, float]], flops_per_item: float, peak_gflops: float) -> dict[str, Any]:
    measured = payloads[1:] or payloads  # the first step warms up the kernels
    items_per_s = [p["items"] / p["step_s"] for p in measured]
    rate = statistics.median(items_per_s)
    achieved = rate * flops_per_item / 1e9
    return {
        "items_per_s": rate, "items_per_s_min": min(items_per_s),
        "step_s": statistics.median(p["step_s"] for p in measured),
        "data_wait": sum(p["data_s"] for p in measured) / sum(p["step_s"] for p in measured),
        "steps": len(measured), "batch": int(measured[0]["items"]), "gflop_per_item": flops_per_item / 1e9,
        "achieved_gflops": achieved, "ratio": achieved / peak_gflops,
    }


@dataclass(frozen=True)
class TrainScale:
    """The study trained on, the models' input sizes, the batches (None: the preset's) and the matmul's side."""

    study: SynthOptions
    models: ModelScale
    val_fraction: float | None = None
    detector_batch: int | None = None
    classifier_batch: int | None = None

    def detector(self, settings: DetectorTraining) -> DetectorTraining:
        changes = {"size": self.models.detector_px, "batch_size": self.detector_batch,
                   "val_fraction": self.val_fraction}
        return replace(settings, **{key: value for key, value in changes.items() if value is not None})

    def classifier(self, settings: ClassifierTraining) -> ClassifierTraining:
        changes = {"size": self.models.patch_px, "batch_size": self.classifier_batch,
                   "val_fraction": self.val_fraction}
        return replace(settings, **{key: value for key, value in changes.items() if value is not None})


#: ``smoke``: one case of two slices, all trained on, one image or 16 patches a step, 128 px images, 32 px patches.
SCALES = {
    "full": TrainScale(STUDY, ModelScale()),
    "smoke": TrainScale(SynthOptions(cases=1, seed=3, slices_per_case=2, readers=0), MODEL_SCALES["smoke"],
                        val_fraction=0.0, detector_batch=1, classifier_batch=16),
}


def _settings(preset: str, device: str, scale: TrainScale) -> tuple[DetectorTraining, ClassifierTraining]:
    """The preset's training settings for one epoch from its first step on ``device``, at ``scale``."""
    name = "cpu" if preset == "fast" else preset
    if name not in DETECTOR_PRESETS:
        raise BenchmarkError(f"unknown preset {preset!r}: use paper or fast")
    detector = replace(DETECTOR_PRESETS[name], epochs=1, device=device, warmup_steps=1)
    classifier = replace(CLASSIFIER_PRESETS[name], epochs=1, device=device, warmup_steps=1)
    return scale.detector(detector), scale.classifier(classifier)


def bench_train(repeats: int = 5, device: str = "cpu", preset: str = "paper", size: str = "full") -> dict[str, Any]:
    scale = scale_for(SCALES, size)
    detector, classifier = _settings(preset, device, scale)
    compute = training_compute(device, detector.precision)
    peak_dtype = torch.bfloat16 if compute.kind == "cuda" else (compute.autocast_dtype or torch.float32)
    matmul_n = scale.models.matmul_n * (4 if compute.kind == "cuda" else 1)
    result: dict[str, Any] = {"preset": "cpu" if preset == "fast" else preset, "size": size,
                              "device": compute.describe(), "repeats": repeats}
    with tempfile.TemporaryDirectory(prefix="vertebra-review-bench-train-") as temporary:
        work = Path(temporary)
        run(generate_study(work / "study", scale.study))
        peak = matmul_gflops(compute.device, peak_dtype, n=matmul_n, repeats=scale.models.matmul_repeats)
        result["matmul_gflops"], result["matmul_dtype"] = peak, str(peak_dtype).removeprefix("torch.")
        steps = _train_steps(train_detector([work / "study"], work / "models", detector, model_id="d"), repeats + 1)
        result["detector"] = {**_summary(steps, _detector_flops(detector, work / "study"), peak),
                              "unit": UNITS["detector"], "input_px": detector.size}
        steps = _train_steps(train_classifier([work / "study"], work / "models", classifier, model_id="c"),
                             repeats + 1)
        result["classifier"] = {**_summary(steps, _classifier_flops(classifier), peak),
                                "unit": UNITS["classifier"], "input_px": classifier.size, "arch": classifier.arch}
    for model in ("detector", "classifier"):
        r = result[model]
        result[f"{model}_{r['unit']}_per_s"] = r["items_per_s"]
    result["lines"] = describe(result).splitlines()
    return result


def describe(result: dict[str, Any]) -> str:
    """The figures as the lines ``vertebra-review bench train`` prints."""
    lines = [f"training throughput, preset {result['preset']}, on {result['device']} "
             f"(median of {result['repeats']} steps after a warm-up)",
             f"  {result['matmul_dtype']} matmul: {result['matmul_gflops']:.0f} GFLOP/s"]
    for model in ("detector", "classifier"):
        r = result[model]
        lines.append(f"  {model} at {r['input_px']} px, batch {r['batch']}: {r['items_per_s']:.2f} {r['unit']}/s "
                     f"(slowest step {r['items_per_s_min']:.2f}), {r['step_s']:.2f} s per step, "
                     f"{r['data_wait']:.1%} of the time waiting for data; {r['gflop_per_item']:.1f} GFLOP per "
                     f"{SINGULAR[r['unit']]} (forward + backward), {r['achieved_gflops']:.0f} GFLOP/s achieved = "
                     f"{r['ratio']:.2f} of the matmul rate")
    return "\n".join(lines)
