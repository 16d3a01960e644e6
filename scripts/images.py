"""Build the CPU images ``docsum/gateway``, ``docsum/summarizer`` and ``docsum/ocr`` (make images).

``python3 scripts/images.py [--only NAME ...] [--base auto|registry|local] [--no-cache]``

The Dockerfiles' defaults pull ``python:3.11-slim`` and torch from PyTorch's CPU index. Where no
container registry is reachable (``--base local``, chosen by ``auto`` when Docker Hub does not
answer), the base is bootstrapped from Debian's packages with mmdebstrap and torch is the CPU
wheel pip finds with this machine's own configuration: nothing is downloaded but from Debian
and PyPI. Engine: podman (or docker when it answers and podman is absent; docker builds need
``--base registry``). Sizes and build times are printed; ``--results FILE`` also records them
(``--results bench/results/images.json`` for bench/RESULTS.md): a plain build changes no
tracked file.
Standard library only: it runs before any venv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ("gateway", "summarizer", "ocr")
TORCH = "2.13.0"
LOCAL_BASE = "localhost/docsum/base:bookworm"
#: The base's Debian packages: Python 3.11 (bookworm's, the CPU torch wheel's), venv for the
#: build stage, CA certificates, and useradd for the runtime stage.
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates", "passwd")
#: Left out of the base: documentation, manuals and translations nobody reads in a container.
BASE_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
RESULTS = ROOT / "bench" / "results" / "images.json"


def log(message: str) -> None:
    sys.stderr.write(f"[images] {message}\n")
    sys.stderr.flush()


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kwargs)  # type: ignore[call-overload]


def engine() -> str:
    """podman when installed, else a docker whose daemon answers."""
    if shutil.which("podman"):
        return "podman"
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True).returncode == 0:
        return "docker"
    sys.exit("images: no container engine: install podman (make container-engine) or Docker")


def registry_reachable(timeout_s: float = 4.0) -> bool:
    """Whether Docker Hub answers (any HTTP status counts: 401 is its answer without a token)."""
    try:
        urllib.request.urlopen("https://registry-1.docker.io/v2/", timeout=timeout_s)
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True


def version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def image_label(eng: str, image: str, label: str) -> str | None:
    proc = subprocess.run(
        [eng, "image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', image],
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def local_base(eng: str) -> str:
    """A Debian bookworm base from Debian's packages (mmdebstrap), made once and kept."""
    key = hashlib.sha256(" ".join(BASE_PACKAGES + BASE_EXCLUDES).encode()).hexdigest()[:16]
    if image_label(eng, LOCAL_BASE, "org.docsum.base") == key:
        log(f"base {LOCAL_BASE} is up to date")
        return LOCAL_BASE
    if not shutil.which("mmdebstrap"):
        sys.exit("images: mmdebstrap is needed for a local base (make container-engine)")
    log(f"bootstrapping {LOCAL_BASE} from Debian packages (mmdebstrap, ~30 s)")
    with tempfile.TemporaryDirectory(prefix="docsum-base-") as tmp:
        tar = Path(tmp) / "base.tar"
        excludes = [f"--dpkgopt=path-exclude={p}" for p in BASE_EXCLUDES]
        run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--quiet",
                f"--include={','.join(BASE_PACKAGES)}",
                *excludes,
                "bookworm",
                str(tar),
            ]
        )
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        run(
            [
                eng,
                "import",
                "--quiet",
                "--change",
                f"ENV PATH={path}",
                "--change",
                f"LABEL org.docsum.base={key}",
                str(tar),
                LOCAL_BASE,
            ],
            stdout=subprocess.DEVNULL,
        )
    return LOCAL_BASE


def torch_wheels() -> Path:
    """A folder with the CPU torch wheel for Python 3.11, found by this machine's pip."""
    wheels = ROOT / ".tools" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    if not list(wheels.glob(f"torch-{TORCH}+cpu-cp311-*.whl")):
        log(f"fetching the CPU torch {TORCH} wheel with pip's configuration into {wheels}")
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--platform",
                "manylinux_2_28_x86_64",
                "-d",
                str(wheels),
                f"torch=={TORCH}+cpu",
            ]
        )
    return wheels


def build_args(base_mode: str, base: str | None) -> tuple[list[str], dict[str, list[str]]]:
    """(options for every build, per-image build args) for the chosen base."""
    common: list[str] = []
    per_image: dict[str, list[str]] = {name: [] for name in IMAGES}
    # The OCR image's default base is CUDA's; `make images` builds its CPU variant.
    per_image["ocr"] += [
        "--build-arg",
        "TORCH_PIP_OPTIONS=--index-url https://download.pytorch.org/whl/cpu",
    ]
    if base_mode == "registry":
        per_image["ocr"] += ["--build-arg", "BASE_IMAGE=python:3.11.14-slim-bookworm"]
        return common, per_image
    assert base is not None
    wheels = torch_wheels()
    # The host's CA bundle is mounted for the build only: it lets pip through a TLS-inspecting
    # proxy and is never part of an image.
    common += [
        "--network",
        "host",
        "-v",
        f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
        "-v",
        f"{wheels}:/wheels:ro",
    ]
    for name in IMAGES:
        per_image[name] = [
            "--build-arg",
            f"PYTHON_IMAGE={base}",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--build-arg",
            "TORCH_PIP_OPTIONS=--find-links /wheels",
            "--build-arg",
            f"TORCH_REQUIREMENT=torch=={TORCH}+cpu",
        ]
    return common, per_image


def image_size(eng: str, ref: str) -> int:
    out = run([eng, "image", "inspect", "--format", "{{.Size}}", ref], capture_output=True).stdout
    return int(out.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=IMAGES, default=list(IMAGES))
    parser.add_argument("--base", choices=("auto", "registry", "local"), default="auto")
    parser.add_argument("--no-cache", action="store_true", help="rebuild every layer")
    parser.add_argument(
        "--results", type=Path, help=f"record the figures there (e.g. {RESULTS.relative_to(ROOT)})"
    )
    args = parser.parse_args(argv)

    eng = engine()
    mode = args.base
    if mode == "auto":
        mode = "registry" if registry_reachable() else "local"
        log(f"container registry {'answers' if mode == 'registry' else 'unreachable'}: {mode} base")
    if eng == "docker" and mode == "local":
        sys.exit(
            "images: a local base needs podman (docker cannot mount the wheel folder in a build)"
        )
    started = time.monotonic()
    base_id = image_label(eng, LOCAL_BASE, "org.docsum.base")
    base = local_base(eng) if mode == "local" else None
    base_s = time.monotonic() - started
    # A new base means no layer of any image could come from the cache: a cold build.
    cold = args.no_cache or (
        mode == "local" and base_id != image_label(eng, LOCAL_BASE, "org.docsum.base")
    )
    common, per_image = build_args(mode, base)
    tag = version()
    figures = []
    for name in args.only:
        ref = f"docsum/{name}:{tag}"
        log(f"building {ref}")
        started = time.monotonic()
        # podman: docker's image format keeps the Dockerfiles' HEALTHCHECK (OCI's has none).
        engine_opts = ["--layers", "--format", "docker"] if eng == "podman" else []
        cmd = [eng, "build", *engine_opts, *common]
        cmd += per_image[name] + ["-f", f"services/{name}/Dockerfile", "-t", ref]
        if args.no_cache:
            cmd.append("--no-cache")
        run([*cmd, "."], cwd=ROOT)
        seconds = time.monotonic() - started
        size = image_size(eng, ref)
        figures.append({"image": ref, "size_bytes": size, "build_s": round(seconds, 1)})
        log(f"{ref}: {size / 1e6:,.0f} MB, built in {seconds:.0f} s")

    rows = [f"{'image':<28} {'size':>10} {'build':>8}"]
    rows += [
        f"{f['image']:<28} {f['size_bytes'] / 1e6:>7,.0f} MB {f['build_s']:>6.0f} s"
        for f in figures
    ]
    sys.stdout.write("\n".join(rows) + "\n")
    if args.results is not None and set(args.only) == set(IMAGES):
        args.results.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "what": "make images: the three CPU images, sizes and build times",
            "command": "make images IMAGES_ARGS='--results bench/results/images.json"
            + (" --no-cache'" if args.no_cache else "'"),
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "engine": eng,
            "base": mode,
            "cache": not cold,
            "base_s": round(base_s, 1),
            "cpus": os.cpu_count(),
            "images": figures,
        }
        args.results.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
