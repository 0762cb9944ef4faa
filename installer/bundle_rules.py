"""What goes into the application bundle, kept out of the spec so that it can be tested without building.

Two torch flavours, one spec (``VERTEBRA_REVIEW_BUNDLE_VARIANT``):

- ``cpu`` (the default). With a CPU build of torch (the wheels on the PyTorch CPU index; on Windows and macOS the
  PyPI wheels) the bundle holds no CUDA library at all. With the CUDA build of torch (the only Linux x86_64 wheel
  on PyPI), torch's own libraries are linked against the CUDA runtime, cuBLAS, cuFFT, cuSPARSE, NCCL and others
  (``DT_NEEDED``), so those must be there for ``import torch`` to succeed even on the CPU; they are found by
  PyInstaller's binary dependency analysis. What CUDA only loads on demand (cuDNN's engine libraries, the NVRTC
  builtins, the nvshmem transports, the profiler and JIT extras, triton) is left out, and a runtime hook hides every
  GPU from torch (``CUDA_VISIBLE_DEVICES=""``) so that the app never tries to use a library that is not there.
- ``cuda``: every NVIDIA library of the environment goes in, under the same relative folders as in site-packages
  (``nvidia/cu13/lib/...``), where torch's run path looks for them.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

VARIANT_ENV = "VERTEBRA_REVIEW_BUNDLE_VARIANT"
VARIANTS = ("cpu", "cuda")
APP_NAME = "vertebra-review"

# Libraries that CUDA or cuDNN open with dlopen only when a GPU is used; no torch library needs them to load.
ON_DEMAND_CUDA_LIBRARIES = (
    "libcudnn_*.so*",  # cuDNN 9's engines, graph, ops, adv, cnn, heuristic (libcudnn.so.9 itself is needed)
    "libnvrtc-builtins*.so*",
    "libnvrtc.alt.so*",
    "libcusolverMg.so*",
    "libnvperf_*.so*",
    "libcheckpoint.so*",
    "libpcsamplingutil.so*",
    "libnvblas.so*",
    "nvshmem_transport_*.so*",
    "nvshmem_bootstrap_*.so*",
    "libnvshmem_device*",
    "libcuda.so*",  # the driver: never bundled in any variant, it comes with the GPU driver
)

# Modules the app never uses, which PyInstaller would otherwise follow from torch, scipy or matplotlib.
EXCLUDED_MODULES = (
    "triton",  # torch.compile's GPU code generator: the app runs models eagerly (about 0.9 GB)
    "tkinter",
    "_tkinter",
    "IPython",
    "jupyter_client",
    "ipykernel",
    "notebook",
    "tensorboard",
    "torch.utils.tensorboard",
    "pytest",
    "hypothesis",
    "PyQt5",
    "PyQt6",
    "PySide2",
    "labelme",
)
# The nvidia.* hooks would collect every CUDA library; cuda.bindings are NVIDIA's Python bindings of the driver.
CPU_EXCLUDED_MODULES = ("nvidia", "cuda")

# Distributions whose metadata the app reads at run time (entry points of the DICOM decoder plugins, versions).
METADATA = (
    "pydicom",
    "pylibjpeg",
    "pylibjpeg-libjpeg",
    "pylibjpeg-openjpeg",
    "pylibjpeg-rle",
    "torch",
    "torchvision",
    "safetensors",
    "superqt",
    "pyqtgraph",
    "numpy",
    "scipy",
    "scikit-learn",
)
HIDDEN_PACKAGES = ("core", "desktop")  # the command line imports the desktop app only inside `gui`
HIDDEN_MODULES = ("libjpeg", "openjpeg", "rle", "pylibjpeg")  # decoder plugins found through entry points

# resources/ as shipped: the demo study, the real CT samples and the icons (the screenshots stay out).
RESOURCE_FOLDERS = ("demo", "sample", "icons")
SKIPPED_NAMES = (".locks", "__pycache__", ".DS_Store", "*.pyc", "*.tmp", ".journal*")


def variant(environ: os._Environ[str] | dict[str, str] | None = None) -> str:
    """The bundle variant asked for (``cpu`` unless ``VERTEBRA_REVIEW_BUNDLE_VARIANT=cuda``)."""
    value = (environ if environ is not None else os.environ).get(VARIANT_ENV, "cpu").strip().lower() or "cpu"
    if value not in VARIANTS:
        raise ValueError(f"{VARIANT_ENV}={value!r}: use one of {', '.join(VARIANTS)}")
    return value


def _skipped(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in SKIPPED_NAMES)


def resource_files(resources: Path, folders: Iterable[str] = RESOURCE_FOLDERS) -> Iterator[tuple[str, str]]:
    """PyInstaller ``datas`` entries (source file, destination folder in the bundle) for the shipped resources.

    Lock files, recovery journals and caches are left out; folders that do not exist are skipped."""
    for folder in folders:
        base = resources / folder
        if not base.is_dir():
            continue
        for here, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if not _skipped(d))
            for name in sorted(files):
                if not _skipped(name):
                    source = Path(here) / name
                    yield str(source), str(Path("resources") / source.parent.relative_to(resources))


def is_on_demand_cuda_library(dest_name: str) -> bool:
    """True for a CUDA library that no torch library needs in order to load (see :data:`ON_DEMAND_CUDA_LIBRARIES`)."""
    name = Path(dest_name).name
    return any(fnmatch.fnmatch(name, pattern) for pattern in ON_DEMAND_CUDA_LIBRARIES)


def is_cuda_library(dest_name: str) -> bool:
    """True for a library of an NVIDIA CUDA wheel (``nvidia/...``) or a CUDA library bundled by torchvision."""
    parts = Path(dest_name).parts
    name = parts[-1] if parts else ""
    return (bool(parts) and parts[0] == "nvidia") or name.startswith(("libcudart", "libnvjpeg", "libcuda."))


def keep_binary(dest_name: str, bundle_variant: str) -> bool:
    """Whether a binary that PyInstaller collected stays in the bundle of ``bundle_variant``."""
    if Path(dest_name).name.startswith("libcuda.so"):
        return False
    if bundle_variant == "cpu":
        return not is_on_demand_cuda_library(dest_name)
    return True


def nvidia_libraries(site_packages: Path) -> Iterator[tuple[str, str]]:
    """(library, destination folder) for every NVIDIA CUDA library in ``site_packages`` (the cuda variant)."""
    base = site_packages / "nvidia"
    if not base.is_dir():
        return
    for library in sorted(base.rglob("*.so*")):
        if library.is_file() and not library.name.startswith("libcuda.so"):
            yield str(library), str(library.parent.relative_to(site_packages))
