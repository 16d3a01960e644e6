"""bench/gpu.sh, the GPU run, kept from rotting: its whole path on the CPU with tiny sizes."""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from bench import gpu_inputs
from bench.gpu_bench import BATCHES, multipart
from docsum.ocr.train.train import levenshtein
from tests.support.commands import run


def test_the_training_edit_distance_agrees_with_rapidfuzz() -> None:
    rng = random.Random(0)
    for _ in range(200):
        a = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 12)))
        assert levenshtein(a, b) == Levenshtein.distance(a, b), (a, b)


def test_inputs_are_the_same_on_every_run() -> None:
    first, again = gpu_inputs.text_lines(3), gpu_inputs.text_lines(3)
    assert [t for _, t in first] == [t for _, t in again]
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(first, again, strict=True))
    assert gpu_inputs.articles(2)[1].text == gpu_inputs.articles(2)[1].text
    words = [len(a.text.split()) for a in gpu_inputs.articles(20)]
    assert min(words) > 400 and max(words) < 900  # news-article length


def test_multipart_body_carries_the_file() -> None:
    body, kind = multipart(b"\x89PNG-bytes")
    boundary = kind.split("boundary=")[1]
    assert body.startswith(f"--{boundary}\r\n".encode())
    assert b'name="file"; filename="page.png"' in body
    assert body.endswith(f"\r\n--{boundary}--\r\n".encode())
    assert b"\r\n\r\n\x89PNG-bytes\r\n" in body


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(1200)
def test_gpu_sh_quick_on_cpu_writes_every_figure(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OUT": str(tmp_path),
        "DOCSUM_GPU_SH_VENV": sys.prefix,  # this venv: nothing to install
        # The script is checked here, not the speed: with one thread per process, a machine
        # busy with other work slows it in proportion instead of stalling every parallel
        # region of torch's small batch-1 passes on a thread that is not running.
        "OMP_NUM_THREADS": "1",
    }
    done = run(["bash", "bench/gpu.sh", "--device", "cpu", "--quick"], timeout_s=1140, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["complete"] and report["machine"]["device"] == "cpu"
    match = report["match"]
    assert match["passed"], match
    for name in ("lines", "pages"):
        assert match[name]["items"] >= 1
        assert match[name]["cer_device_vs_cpu"] <= match[name]["max_cer"]
        # The readings are text, not empty strings that would match trivially.
        assert match[name]["cer_vs_truth"]["cpu_fp32"] < 10
    assert match["summaries"]["identical_picks"] >= 1
    for section, unit in (
        ("ocr_lines", "lines"),
        ("ocr_pages", "pages"),
        ("summarizer", "articles"),
    ):
        assert sorted(report[section], key=int) == [str(b) for b in BATCHES]
        for figure in report[section].values():
            assert figure[unit] >= 1 and figure[f"{unit}_per_s"] > 0
    for service, unit in (("ocr", "pages"), ("summarizer", "articles")):
        http = report["http"][service]
        assert http["1"]["concurrency"] == 1 and http["16"]["concurrency"] == 16
        assert http["1"][f"{unit}_per_s"] > 0 and http["16"][f"{unit}_per_s"] > 0
        assert http["speedup"] > 0
        assert http["1"]["failed"] == 0 and http["16"]["failed"] == 0
