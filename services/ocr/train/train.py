"""Train the CRNN on synthetic lines (CPU): ``python -m docsum.ocr.train.train --out DIR``.

The learning-rate schedule runs on *training time*, not steps: linear warm-up over the first
3 % of ``--hours``, then cosine decay to 2 % of the peak, and the augmentation difficulty ramps
from 0.3 to 1 over the first 25 %. So a run sized in hours uses its whole budget well on any
CPU. ``OUT/last.pt`` (every ``--ckpt-min`` minutes, atomic) holds everything needed to resume
exactly: weights, optimizer, step, training seconds, RNG and generator states. ``--resume
--init CKPT`` (``make train-ocr``) continues ``OUT/last.pt`` where there is one, else starts from
CKPT's weights with a fresh optimizer and schedule. ``OUT/best.pt`` is the best by CER on a
held-out synthetic set (other seed, never trained on); the real dev lines (``--val-dir``) are
reported beside it as a check, never used to choose. Each new best is also exported as fp16 to
``--export`` when it beats the weights already there on the same held-out set.
``--snapshot-min`` keeps weight snapshots for ``--average`` (the mean of several checkpoints).
Logs are JSON lines on stdout and in ``OUT/train.log``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..model.charset import DEFAULT_CHARSET, to_ascii
from ..model.crnn import (
    CRNN,
    CRNNConfig,
    batch_lines,
    channels_last,
    load_checkpoint,
    output_lengths,
    preprocess_line,
    save_checkpoint,
)
from ..model.ctc import greedy_decode
from .fonts import find_fonts, summary
from .synth import LineSynth, SynthBatches

#: Seed offset of the held-out synthetic lines: a stream the training seeds never produce.
HELD_OUT_SEED = 1_000_003

log = logging.getLogger("docsum.ocr.train")
REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_VAL = REPO_ROOT.parent / "shared" / "data" / "ocr" / "uw3-lines"
DEFAULT_EXPORT = REPO_ROOT / "services" / "ocr" / "weights" / "crnn.pt"


#: Receivers of every event, and of a ``"step"`` event after each step that is not logged
#: (``step``, ``trained_s``, ``budget_s``, ``loss``): ``docsum train``'s progress display.
listeners: list[Callable[[str, dict[str, Any]], None]] = []


def emit(event: str, **fields: Any) -> None:
    """One JSON log line."""
    log.info(json.dumps({"event": event, "time": round(time.time(), 1), **fields}))
    for listener in listeners:
        listener(event, fields)


def normalize(text: str) -> str:
    """CER normalization of the project: NFKC, whitespace runs → one space, strip."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute: cost 1 each)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def load_lines(folder: Path, height: int) -> list[tuple[np.ndarray, str]]:
    """``<page>/<line>.bin.png`` + ``.gt.txt`` pairs → (normalized line, reference text)."""
    out = []
    for png in sorted(folder.glob("*/*.png")):
        gt = png.with_name(png.name.split(".")[0] + ".gt.txt")
        img = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
        if img is None or not gt.is_file():
            continue
        out.append((preprocess_line(img, height), gt.read_text(encoding="utf-8")))
    return out


@torch.inference_mode()
def evaluate(model: CRNN, lines: list, bf16: bool, batch_size: int = 32) -> dict[str, float]:
    """CER (%) on (line, reference) pairs; ``cer_ascii`` folds typographic marks in the output
    to ASCII first (the references are typed in ASCII)."""
    model.eval()
    order = sorted(range(len(lines)), key=lambda i: lines[i][0].shape[1])
    hyps: dict[int, str] = {}
    t0 = time.perf_counter()
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        x, widths = batch_lines([lines[i][0] for i in idx])
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            lp = model(x)
        for i, d in zip(
            idx, greedy_decode(lp, DEFAULT_CHARSET, output_lengths(widths)), strict=True
        ):
            hyps[i] = d.text
    dt = time.perf_counter() - t0
    model.train()
    refs = [normalize(t) for _, t in lines]
    chars = max(1, sum(len(r) for r in refs))
    edits = sum(levenshtein(normalize(hyps[i]), refs[i]) for i in range(len(lines)))
    edits_a = sum(levenshtein(normalize(to_ascii(hyps[i])), refs[i]) for i in range(len(lines)))
    return {
        "cer": 100.0 * edits / chars,
        "cer_ascii": 100.0 * edits_a / chars,
        "lines_per_s": len(lines) / max(dt, 1e-9),
        "lines": len(lines),
    }


def held_out_lines(fonts: list, n: int, seed: int, height: int) -> list[tuple[np.ndarray, str]]:
    """``n`` synthetic lines from their own seed, half lightly and half fully degraded."""
    synth = LineSynth(fonts, seed=seed + HELD_OUT_SEED, height=height)
    return [synth.sample(0.3 if i % 2 else 1.0) for i in range(n)]


def average_weights(paths: list[Path]) -> tuple[CRNN, dict[str, Any]]:
    """The element-wise mean of the checkpoints' weights (same architecture), BatchNorm
    statistics included; meta of the last one plus the steps averaged."""
    models = [load_checkpoint(p) for p in paths]
    model, _, ckpt = models[-1]
    states = [m.state_dict() for m, _, _ in models]
    mean = {
        k: (sum(st[k].double() for st in states) / len(states)).to(v.dtype)
        if v.is_floating_point()
        else v
        for k, v in states[-1].items()
    }
    model.load_state_dict(mean)
    steps = [c.get("meta", {}).get("step") for _, _, c in models]
    return model, {**ckpt.get("meta", {}), "averaged_steps": steps}


def lr_at(progress: float, peak: float) -> float:
    """Warm-up 3 %, then cosine to 2 % of ``peak``; ``progress`` in [0, 1] of the time budget."""
    if progress < 0.03:
        return peak * max(progress / 0.03, 0.01)
    p = min(1.0, (progress - 0.03) / 0.97)
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="docsum.ocr.train.train", description=__doc__.split("\n")[0])
    p.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / ".runs" / "ocr",
        help="folder for checkpoints and train.log",
    )
    p.add_argument("--hours", type=float, default=2.5, help="training-time budget (hours)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt when it exists")
    p.add_argument(
        "--init",
        type=Path,
        default=None,
        metavar="CKPT",
        help="start from CKPT's weights (fine-tune: fresh optimizer and schedule; "
        "--channels/--hidden come from CKPT); ignored when --resume finds OUT/last.pt",
    )
    p.add_argument("--max-steps", type=int, default=0, help="stop after N steps (0: no limit)")
    p.add_argument("--batch-size", type=int, default=32, help="lines per step")
    p.add_argument("--lr", type=float, default=1.5e-3, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the weights")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--channels", default="16,32,64,96,128", help="conv channels per block")
    p.add_argument("--hidden", type=int, default=128, help="LSTM units per direction")
    p.add_argument(
        "--no-bf16",
        dest="bf16",
        action="store_false",
        help="train in fp32 (bf16 autocast is ~1.6x faster on AVX512-BF16 CPUs)",
    )
    p.add_argument(
        "--val-dir",
        type=Path,
        default=DEFAULT_VAL,
        help="UW3-style real line images: CER reported as a check, not used to choose",
    )
    p.add_argument(
        "--val-synth",
        type=int,
        default=1500,
        help="held-out synthetic lines whose CER chooses best.pt and the export",
    )
    p.add_argument(
        "--snapshot-min",
        type=float,
        default=0.0,
        help="minutes between kept weight snapshots OUT/snap-STEP.pt (0: none)",
    )
    p.add_argument("--val-min", type=float, default=10.0, help="minutes between validations")
    p.add_argument("--ckpt-min", type=float, default=4.0, help="minutes between checkpoints")
    p.add_argument("--log-s", type=float, default=30.0, help="seconds between progress logs")
    p.add_argument(
        "--export",
        default=str(DEFAULT_EXPORT),
        help="fp16 copy of each new best model ('' to disable)",
    )
    p.add_argument(
        "--average",
        type=Path,
        nargs="+",
        default=None,
        metavar="CKPT",
        help="only export the mean of these checkpoints' weights to --export and exit",
    )
    p.add_argument(
        "--export-only",
        type=Path,
        default=None,
        metavar="CKPT",
        help="only export CKPT as fp16 to --export and exit",
    )
    return p.parse_args(argv)


def _export(src: CRNN, meta: dict[str, Any], dest: str) -> None:
    if dest:
        path = Path(dest)
        save_checkpoint(path, src, DEFAULT_CHARSET, meta, half=True)
        emit("export", path=str(path), bytes=path.stat().st_size)


def _shipped_cer(dest: str, lines: list, bf16: bool) -> float:
    """Held-out CER of the weights already at ``--export`` (inf if none): never ship worse."""
    if not dest or not lines or not Path(dest).is_file():
        return float("inf")
    return evaluate(load_checkpoint(Path(dest))[0], lines, bf16)["cer"]


def _state(model, opt, stream, step, trained_s, best, args) -> dict[str, Any]:
    return {
        "optimizer": opt.state_dict(),
        "stream": stream.state_dict(),
        "step": step,
        "trained_s": trained_s,
        "best_cer": best,
        "torch_rng": torch.get_rng_state(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }


def main(argv: list[str] | None = None, log_to_stdout: bool = True) -> int:
    """Entry point (also called by ``docsum train ocr``); returns a process exit code.

    The JSON log goes to ``OUT/train.log``, and to stdout unless ``log_to_stdout`` is false.
    """
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not log.handlers:
        handlers: list[logging.Handler] = [logging.FileHandler(args.out / "train.log")]
        if log_to_stdout:
            handlers.append(logging.StreamHandler(sys.stdout))
        for h in handlers:
            h.setFormatter(logging.Formatter("%(message)s"))
            log.addHandler(h)
        log.setLevel(logging.INFO)
        log.propagate = False
    torch.set_num_threads(args.threads)
    if args.export_only:
        model, _, ckpt = load_checkpoint(args.export_only)
        _export(model, ckpt["meta"], args.export)
        return 0
    if args.average:
        model, avg_meta = average_weights(args.average)
        _export(model, avg_meta, args.export)
        return 0

    torch.manual_seed(args.seed)
    cfg = CRNNConfig(channels=tuple(int(c) for c in args.channels.split(",")), hidden=args.hidden)
    last = args.out / "last.pt"
    resuming = args.resume and last.is_file()
    if args.init and not resuming:
        model, _, init_ck = load_checkpoint(args.init)  # fp32 whatever it was stored as
        cfg = model.config
        init_meta = init_ck.get("meta", {})
        emit("init", path=str(args.init), step=init_meta.get("step"), cer=init_meta.get("cer"))
    model = channels_last(model if args.init and not resuming else CRNN(cfg))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    fonts = find_fonts()
    stream = SynthBatches(
        LineSynth(fonts, seed=args.seed, height=cfg.height), args.batch_size, difficulty=0.3
    )
    step, trained_s, best = 0, 0.0, float("inf")
    if resuming:
        ck = torch.load(last, map_location="cpu", weights_only=False)
        model = CRNN(CRNNConfig.from_dict(ck["config"]))
        cfg = model.config
        model.load_state_dict(ck["state_dict"])
        model = channels_last(model)
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        opt.load_state_dict(ck["optimizer"])
        stream.load_state_dict(ck["stream"])
        step, trained_s, best = ck["step"], ck["trained_s"], ck["best_cer"]
        torch.set_rng_state(ck["torch_rng"])
        emit("resume", step=step, trained_s=round(trained_s), best_cer=best)
    model.train()
    held_out = held_out_lines(fonts, args.val_synth, args.seed, cfg.height)
    best = min(best, _shipped_cer(args.export, held_out, args.bf16))
    dev = load_lines(args.val_dir, cfg.height) if args.val_dir.is_dir() else []
    budget = args.hours * 3600.0
    emit(
        "start",
        params=sum(p.numel() for p in model.parameters()),
        config=cfg.to_dict(),
        fonts=len(fonts),
        font_styles=summary(fonts),
        held_out_lines=len(held_out),
        dev_lines=len(dev),
        bf16=args.bf16,
        threads=args.threads,
        budget_s=budget,
    )
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    t_log = t_ckpt = t_val = t_snap = time.monotonic()
    win_loss, win_steps, win_lines, win_t = 0.0, 0, 0, time.monotonic()

    def meta() -> dict[str, Any]:
        return {
            "step": step,
            "trained_s": round(trained_s),
            "best_val_cer": best,
            "lines_seen": step * args.batch_size,
        }

    def validate() -> None:
        nonlocal best
        if not held_out:
            return
        r = evaluate(model, held_out, args.bf16)
        if dev:
            r |= {f"dev_{k}": v for k, v in evaluate(model, dev, args.bf16).items()}
        emit("val", step=step, **{k: round(v, 3) for k, v in r.items()})
        if r["cer"] < best:
            best = r["cer"]
            save_checkpoint(args.out / "best.pt", model, DEFAULT_CHARSET, {**meta(), **r})
            _export(model, {**meta(), **r}, args.export)

    def checkpoint() -> None:
        save_checkpoint(
            last,
            model,
            DEFAULT_CHARSET,
            meta(),
            extra=_state(model, opt, stream, step, trained_s, best, args),
        )
        emit("checkpoint", step=step, path=str(last))

    while trained_s < budget and (args.max_steps <= 0 or step < args.max_steps):
        t0 = time.monotonic()
        progress = trained_s / budget
        stream.difficulty = 0.3 + 0.7 * min(1.0, progress / 0.25)
        lr = lr_at(progress, args.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        x, widths, targets, tlens, _ = next(stream)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            lp = model(x)
        loss = ctc(lp, targets, output_lengths(widths), tlens)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        trained_s += time.monotonic() - t0
        loss_value = loss.item()
        win_loss, win_steps, win_lines = win_loss + loss_value, win_steps + 1, win_lines + len(x)
        for listener in listeners:
            listener(
                "step",
                {"step": step, "trained_s": trained_s, "budget_s": budget, "loss": loss_value},
            )
        now = time.monotonic()
        if now - t_log >= args.log_s:
            dt = now - win_t
            emit(
                "progress",
                step=step,
                loss=round(win_loss / win_steps, 4),
                lr=round(lr, 6),
                steps_per_s=round(win_steps / dt, 3),
                lines_per_s=round(win_lines / dt, 1),
                difficulty=round(stream.difficulty, 3),
                trained_s=round(trained_s),
            )
            t_log, win_loss, win_steps, win_lines, win_t = now, 0.0, 0, 0, now
        if now - t_val >= args.val_min * 60:
            validate()
            t_val = time.monotonic()
        if now - t_ckpt >= args.ckpt_min * 60:
            checkpoint()
            t_ckpt = time.monotonic()
        if args.snapshot_min > 0 and now - t_snap >= args.snapshot_min * 60:
            save_checkpoint(args.out / f"snap-{step:06d}.pt", model, DEFAULT_CHARSET, meta())
            t_snap = time.monotonic()
    validate()
    checkpoint()
    emit("done", step=step, trained_s=round(trained_s), best_cer=best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
