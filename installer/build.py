"""Build the Vertebra Review application bundle (one folder), run its smoke test, and measure it.

    uv run --group installer python installer/build.py                 # CPU bundle (the default)
    uv run --group installer python installer/build.py --cuda          # CUDA bundle (NVIDIA GPU machines)
    ... build.py --torch-index https://download.pytorch.org/whl/cpu    # CPU bundle from PyTorch's CPU wheels
    ... build.py --torch-wheels DIR                                    # the same, offline, from downloaded wheels
    ... build.py --measure-only                                        # smoke-test and measure an existing bundle

The bundle goes to ``installer/dist/vertebra-review/`` and the figures to ``installer/dist/build-report.json``.
By default the torch of the environment running this script is bundled. With ``--torch-index`` or
``--torch-wheels`` a separate build environment (``installer/build/venv-<variant>``) is made with uv from
``uv.lock``, with torch and torchvision (same versions as locked) taken from that index or folder. Nothing is
downloaded when the bundle runs. See installer/README.md for what each variant holds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bundle_rules  # noqa: E402

DIST = HERE / "dist"
WORK = HERE / "build"
BUNDLE = DIST / bundle_rules.APP_NAME
REPORT = DIST / "build-report.json"
SPEC = HERE / "vertebra-review.spec"
MIN_FREE_GB = {"cpu": 12, "cuda": 20}
TORCH_PACKAGES = ("torch", "torchvision", "triton", "nvidia-", "cuda-")  # torch and its CUDA parts


def say(text: str) -> None:
    print(f"build: {text}", flush=True)


class BuildError(Exception):
    pass


def executable(bundle: Path = BUNDLE) -> Path:
    return bundle / (bundle_rules.APP_NAME + (".exe" if sys.platform == "win32" else ""))


# -- the build environment --------------------------------------------------------------------------------------------
def torch_flavour(python: str) -> dict[str, str | None]:
    """torch's and torchvision's versions and CUDA version in the environment of ``python``."""
    code = ("import json, torch, torchvision; print(json.dumps({'torch': torch.__version__, "
            "'torchvision': torchvision.__version__, 'cuda': torch.version.cuda}))")
    done = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"{python} cannot import torch and torchvision: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def _base(version: str) -> str:
    return version.split("+", 1)[0]


def make_build_env(variant: str, index: str | None, wheels: Path | None, locked: dict[str, str | None]) -> str:
    """A fresh environment with the locked dependencies, and torch + torchvision from ``index`` or ``wheels``."""
    uv = shutil.which("uv")
    if uv is None:
        raise BuildError("--torch-index and --torch-wheels need uv on PATH (python -m pip install uv)")
    venv = WORK / f"venv-{variant}"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([uv, "venv", "--python", sys.executable, str(venv)], check=True)
    python = str(venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python"))
    source = ["--index-url", index] if index else ["--no-index", "--find-links", str(wheels)]
    pins = [f"torch=={_base(str(locked['torch']))}", f"torchvision=={_base(str(locked['torchvision']))}"]
    say(f"installing {' '.join(pins)} from {index or wheels}")
    subprocess.run([uv, "pip", "install", "--python", python, *source, *pins], check=True)
    requirements = WORK / f"requirements-{variant}.txt"
    exported = subprocess.run([uv, "export", "--frozen", "--no-hashes", "--no-emit-project", "--no-dev",
                               "--group", "installer"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    keep = [line for line in exported.splitlines() if line.strip() and not line.lstrip().startswith("#")
            and not line.split("==")[0].strip().lower().startswith(TORCH_PACKAGES)]
    requirements.write_text("\n".join(keep) + "\n", encoding="utf-8")
    subprocess.run([uv, "pip", "install", "--python", python, "-r", str(requirements)], check=True)
    return python


def choose_environment(args: argparse.Namespace) -> tuple[str, dict[str, str | None], str]:
    """(python to build with, its torch flavour, a note on what kind of bundle this makes)."""
    variant = "cuda" if args.cuda else "cpu"
    here = torch_flavour(sys.executable)
    if args.torch_index or args.torch_wheels:
        python = make_build_env(variant, args.torch_index, args.torch_wheels, here)
        flavour = torch_flavour(python)
    else:
        python, flavour = sys.executable, here
    if variant == "cuda" and not flavour["cuda"]:
        raise BuildError(f"--cuda needs a CUDA build of torch; this environment has torch {flavour['torch']} "
                         "(CPU). On Linux x86_64 the PyPI wheel is the CUDA build; elsewhere pass --torch-index "
                         "with a CUDA index of PyTorch (see installer/README.md)")
    if variant == "cuda":
        note = f"CUDA bundle: torch {flavour['torch']} with every CUDA {flavour['cuda']} library"
    elif flavour["cuda"]:
        note = (f"CPU bundle made from the CUDA build of torch ({flavour['torch']}): it holds the CUDA libraries "
                "torch needs to load (not those a GPU run needs) and hides GPUs, so it runs on the CPU only. "
                "For a smaller CPU-only bundle pass --torch-index https://download.pytorch.org/whl/cpu "
                "(or --torch-wheels DIR)")
    else:
        note = f"CPU-only bundle: torch {flavour['torch']} (CPU build), no CUDA library"
    return python, flavour, note


# -- building ---------------------------------------------------------------------------------------------------------
def free_gb(path: Path) -> float:
    return shutil.disk_usage(path).free / 1e9


def run_pyinstaller(python: str, variant: str, log: Path) -> float:
    """Run PyInstaller on the spec (output in ``log``); returns the seconds it took."""
    shutil.rmtree(BUNDLE, ignore_errors=True)
    env = dict(os.environ, **{bundle_rules.VARIANT_ENV: variant,
                              "VERTEBRA_REVIEW_BUNDLE_NOTES": str(WORK / "bundle-notes.txt")})
    command = [python, "-m", "PyInstaller", str(SPEC), "--noconfirm", "--clean", "--log-level", "WARN",
               "--distpath", str(DIST), "--workpath", str(WORK / f"pyinstaller-{variant}")]
    say(f"running PyInstaller ({variant}); log: {log}")
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0 or not executable().is_file():
        shutil.rmtree(BUNDLE, ignore_errors=True)  # never leave a half-built bundle behind
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise BuildError("PyInstaller failed (exit {}):\n{}".format(done.returncode, "\n".join(tail)))
    return time.monotonic() - started


def write_desktop_entry(bundle: Path = BUNDLE) -> Path:
    """The freedesktop entry with this bundle's absolute paths, beside the executable (see README for installing)."""
    template = (HERE / "vertebra-review.desktop").read_text(encoding="utf-8")
    icon = bundle / "_internal" / "resources" / "icons" / "vertebra-review-256.png"
    lines = []
    for line in template.splitlines():
        if line.startswith("Exec="):
            line = f'Exec="{executable(bundle)}" gui %f'
        elif line.startswith("TryExec="):
            line = f"TryExec={executable(bundle)}"
        elif line.startswith("Icon="):
            line = f"Icon={icon}"
        lines.append(line)
    target = bundle / "vertebra-review.desktop"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target.chmod(0o755)
    return target


# -- measuring --------------------------------------------------------------------------------------------------------
def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def size_breakdown(bundle: Path = BUNDLE) -> dict[str, int]:
    inside = bundle / "_internal"
    parts = {name: inside / name for name in ("torch", "nvidia", "PySide6", "resources", "torchvision.libs")}
    sizes = {name: folder_bytes(path) for name, path in parts.items() if path.is_dir()}
    sizes["total"] = folder_bytes(bundle)
    sizes["other"] = sizes["total"] - sum(v for k, v in sizes.items() if k != "total")
    return sizes


def _isolated_env(home: Path) -> dict[str, str]:
    """A bare environment: no virtual environment, no PYTHONPATH, an empty home and torch cache."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": os.environ.get("LANG", "C.UTF-8"),
           "TORCH_HOME": str(home / "torch"), "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(home)}
    if sys.platform == "win32":
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.update({k: v for k, v in os.environ.items() if k.startswith("VERTEBRA_REVIEW_SMOKE_")})
    return env


def _isolation(hide: list[Path]) -> tuple[list[str], str]:
    """A command prefix that runs the bundle with no network and with the build environments hidden (an empty
    folder mounted over each), so that it can use nothing but itself; Linux user namespaces, where they work."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return [], "none"
    hidden = [str(p) for p in hide if p.is_dir()]
    mounts = " && ".join(f'mount -t tmpfs none "${i + 1}"' for i in range(len(hidden))) or "true"
    script = f'{mounts} && shift {len(hidden)} && exec "$@"'
    prefix = [unshare, "-rmn", "sh", "-c", script, "sh", *hidden]
    if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
        return prefix, "no network; build environment hidden: " + ", ".join(hidden)
    if subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"], "no network"
    return [], "none"


def smoke_runs(runs: int, study: Path | None, timeout_s: float, hide: list[Path]) -> dict:
    """Run the bundle's ``--smoke-test`` ``runs`` times; times are from start to exit."""
    prefix, isolation = _isolation(hide)
    command = [*prefix, str(executable()), "--smoke-test", *([str(study)] if study else [])]
    seconds, summary = [], ""
    with tempfile.TemporaryDirectory(prefix="vertebra-review-bundle-home-") as home:
        for run in range(runs):
            started = time.monotonic()
            done = subprocess.run(command, env=_isolated_env(Path(home)), capture_output=True, text=True,
                                  timeout=timeout_s, cwd=home)
            seconds.append(round(time.monotonic() - started, 2))
            if done.returncode != 0:
                reason = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise BuildError(f"the bundle's smoke test failed (run {run + 1}, exit {done.returncode}): {reason}")
            summary = done.stdout.strip().splitlines()[-1]
            say(f"smoke test {run + 1}/{runs}: {seconds[-1]:.1f} s")
    return {"command": " ".join(command), "runs_s": seconds, "median_s": statistics.median(seconds),
            "isolation": isolation, "summary": summary}


# -- main -------------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuda", action="store_true", help="make the CUDA bundle (default: CPU)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--torch-index", metavar="URL", help="take torch/torchvision from this package index, in a "
                        "separate build environment (for example https://download.pytorch.org/whl/cpu)")
    source.add_argument("--torch-wheels", metavar="DIR", type=Path, help="the same, from a folder of wheels (offline)")
    parser.add_argument("--measure-only", action="store_true", help="do not build: smoke-test and measure the bundle")
    parser.add_argument("--smoke-runs", type=int, default=3, help="smoke test runs for the start-up time (default 3)")
    parser.add_argument("--study", type=Path, help="study for the smoke test (default: the bundled demo study)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per smoke test run")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> dict:
    variant = "cuda" if args.cuda else "cpu"
    WORK.mkdir(parents=True, exist_ok=True)
    DIST.mkdir(parents=True, exist_ok=True)
    if free_gb(DIST) < MIN_FREE_GB[variant]:
        raise BuildError(f"{DIST}: {free_gb(DIST):.1f} GB free; the {variant} build needs about "
                         f"{MIN_FREE_GB[variant]} GB")
    if not (ROOT / "resources" / "demo" / "study.json").is_file():
        say("warning: resources/demo is not a study yet; the bundle has no demo study (smoke-test it with --study)")
    python, flavour, note = choose_environment(args)
    say(note)
    seconds = run_pyinstaller(python, variant, WORK / f"pyinstaller-{variant}.log")
    notes = WORK / "bundle-notes.txt"
    return {"variant": variant, "torch": flavour, "note": note, "build_s": round(seconds),
            "bundle_notes": notes.read_text(encoding="utf-8").splitlines() if notes.is_file() else []}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = {} if args.measure_only else build(args)
        if not executable().is_file():
            raise BuildError(f"{executable()}: no bundle to measure; build it first")
        write_desktop_entry()
        report["size_bytes"] = size_breakdown()
        venv = [Path(sys.prefix)] if sys.prefix != sys.base_prefix else []  # never hide a system Python
        hide = [*venv, *WORK.glob("venv-*")]
        report["smoke_test"] = smoke_runs(max(1, args.smoke_runs), args.study, args.timeout, hide)
    except (BuildError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 1
    report.update(platform=platform.platform(), python=platform.python_version(),
                  built=time.strftime("%Y-%m-%d %H:%M:%S"))
    if REPORT.is_file() and args.measure_only:
        report = {**json.loads(REPORT.read_text(encoding="utf-8")), **report}
    REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    total = report["size_bytes"]["total"]
    say(f"bundle {BUNDLE}: {total / 1e9:.2f} GB ({total / 2**30:.2f} GiB)")
    say(f"start-up to smoke-test exit: median {report['smoke_test']['median_s']:.1f} s of "
        f"{report['smoke_test']['runs_s']}")
    say(report["smoke_test"]["summary"])
    say(f"report: {REPORT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
