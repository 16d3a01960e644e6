"""Scan-like degradation of a rendered text line (grey uint8, dark ink on light paper).

Every step has a probability and a magnitude that grow with ``difficulty`` in [0, 1] (the
curriculum: clean lines first, then the full range of real scans). Sizes are in pixels of
the image as given (the renderer's resolution), angles in degrees.
"""

from __future__ import annotations

import cv2
import numpy as np


def _maybe(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def stroke(img: np.ndarray, rng: np.random.Generator, difficulty: float) -> np.ndarray:
    """Thicken (ink bleed) or thin (faded toner) strokes by one pixel."""
    if not _maybe(rng, 0.35 * difficulty):
        return img
    k = np.ones((2, 2), np.uint8)
    # Ink is dark: erode spreads dark pixels (bolder), dilate spreads paper (thinner).
    return cv2.erode(img, k) if rng.random() < 0.5 else cv2.dilate(img, k)


def dots(img: np.ndarray, rng: np.random.Generator, difficulty: float) -> np.ndarray:
    """Dot-matrix or thermal-head print: the glyphs resampled onto a grid of round dots
    (receipts, tickets). A dot is printed where the ink covers enough of its grid cell."""
    h, w = img.shape
    pitch_y = rng.uniform(0.06, 0.1) * h  # the crop is ~1.2 text heights: 7-12 dots per letter
    if not _maybe(rng, 0.06 * difficulty) or pitch_y < 2.5:
        return img
    pitch_x = pitch_y * rng.uniform(0.8, 1.2)
    ny, nx = max(2, round(h / pitch_y)), max(2, round(w / pitch_x))
    ink = (img < 128).astype(np.float32)
    cover = cv2.resize(ink, (nx, ny), interpolation=cv2.INTER_AREA)
    on = cover > rng.uniform(0.12, 0.3)
    seeds = np.zeros_like(img)
    ys = np.minimum(h - 1, ((np.arange(ny) + 0.5) * h / ny).astype(int))
    xs = np.minimum(w - 1, ((np.arange(nx) + 0.5) * w / nx).astype(int))
    seeds[np.ix_(ys, xs)] = np.where(on, 255, 0).astype(np.uint8)
    r = max(1, round(min(pitch_x, pitch_y) * rng.uniform(0.3, 0.55)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return np.asarray(255 - cv2.dilate(seeds, disc), dtype=np.uint8)


def wear(img: np.ndarray, rng: np.random.Generator, difficulty: float) -> np.ndarray:
    """Worn type and faded print: ink breaks up or lightens in smooth random patches."""
    if not _maybe(rng, 0.15 * difficulty):
        return img
    h, w = img.shape
    cell = max(2.0, rng.uniform(0.05, 0.2) * h)  # patch size: from pits in a stroke to streaks
    coarse = rng.random((max(2, int(h / cell)), max(2, int(w / cell)))).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    paper = 255.0 - img.astype(np.float32)  # ink strength, 0 on paper
    if rng.random() < 0.5:  # broken glyphs: ink gone where the field is high
        keep = field < np.quantile(field, 1.0 - rng.uniform(0.05, 0.25) * difficulty)
        paper *= keep
    else:  # faded thermal paper or dry ribbon: ink lighter, unevenly
        paper *= np.clip(1.0 - field * rng.uniform(0.3, 0.7) * difficulty, 0.35, 1.0)
    return np.asarray(255.0 - paper, dtype=np.uint8)


def aspect(img: np.ndarray, rng: np.random.Generator, difficulty: float) -> np.ndarray:
    """Condensed or expanded print (receipt printers, narrow type, fax scaling): the width
    scaled by 0.7-1.25, log-uniform. Below 0.7 a double narrow letter (``ll``) would have too
    few CTC frames to be spelled."""
    if not _maybe(rng, 0.3 * difficulty):
        return img
    h, w = img.shape
    f = float(np.exp(rng.uniform(np.log(0.7), np.log(1.25))))
    return cv2.resize(img, (max(4, round(w * f)), h), interpolation=cv2.INTER_AREA)


def geometry(img: np.ndarray, rng: np.random.Generator, difficulty: float) -> np.ndarray:
    """Small rotation (±3°), shear (italic-like slant, ±0.15) or perspective, paper-white fill."""
    h, w = img.shape
    if _maybe(rng, 0.4 * difficulty):
        angle = rng.uniform(-3, 3) * difficulty
        shear = rng.uniform(-0.15, 0.15) if rng.random() < 0.3 else 0.0
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        m[0, 1] += shear
        m[0, 2] -= shear * h / 2
        img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    if _maybe(rng, 0.1 * difficulty):
        d = 0.04 * h * difficulty
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
        dst = (src + rng.uniform(-d, d, src.shape)).astype(np.float32)
        img = cv2.warpPerspective(
            img, cv2.getPerspectiveTransform(src, dst), (w, h), borderValue=255
        )
    return img


def resolution(img: np.ndarray, rng: np.random.Generator, difficulty: float) -> np.ndarray:
    """Lower the sampling rate (a low-dpi scan): crop height down to 16–32 px."""
    h, w = img.shape
    if not _maybe(rng, 0.5 * difficulty) or h < 16:
        return img
    target = rng.uniform(16, 32)
    if target >= h:
        return img
    f = target / h
    return cv2.resize(
        img, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA
    )


def photometric(img: np.ndarray, rng: np.random.Generator, difficulty: float) -> np.ndarray:
    """Blur, ink/paper grey levels, uneven light, noise, speckle; optional binarization."""
    out: np.ndarray = img.astype(np.float32)
    h, w = out.shape
    if _maybe(rng, 0.5 * difficulty):
        # Sigma relative to a 32 px line: the same blur wipes out a 16 px line twice as much.
        s = rng.uniform(0.3, 0.9 * difficulty + 0.3) * min(1.5, max(0.5, h / 32))
        out = cv2.GaussianBlur(out, (0, 0), s)
    ink, paper = rng.uniform(0, 90 * difficulty), rng.uniform(255 - 90 * difficulty, 255)
    out = ink + (paper - ink) * out / 255.0
    if _maybe(rng, 0.2 * difficulty):  # uneven light: a linear gradient across the line
        g = np.linspace(rng.uniform(-40, 0), rng.uniform(-40, 0), w, dtype=np.float32)
        out += g[None, :]
    if _maybe(rng, 0.5 * difficulty):
        out += rng.normal(0, rng.uniform(2, 14 * difficulty + 2), out.shape).astype(np.float32)
    if _maybe(rng, 0.12 * difficulty):  # dust and toner speckle
        n = int(out.size * rng.uniform(0.0005, 0.004))
        ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
        out[ys, xs] = rng.choice([0.0, 255.0], n)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if _maybe(rng, 0.5):  # most evaluation scans are binarized: learn the jagged edges
        if rng.random() < 0.6:
            _, out = cv2.threshold(out, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        else:
            lo, hi = int(out.min()), int(out.max())
            t = lo + (hi - lo) * rng.uniform(0.35, 0.65)
            out = np.where(out > t, 255, 0).astype(np.uint8)
    return out


def jpeg(img: np.ndarray, rng: np.random.Generator, difficulty: float) -> np.ndarray:
    """JPEG block artefacts (phone photos, receipts), quality 25–90."""
    if not _maybe(rng, 0.2 * difficulty):
        return img
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.uniform(25, 90))])
    if not ok:
        return img
    out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    assert out is not None  # decoding the JPEG that imencode just wrote cannot fail
    return out


def degrade(img: np.ndarray, rng: np.random.Generator, difficulty: float = 1.0) -> np.ndarray:
    """Full chain: stroke → dots → wear → aspect → geometry → resolution → photometric → JPEG.
    Same shape semantics (grey uint8, dark on light); the size may shrink (resolution step)."""
    inverted = _maybe(rng, 0.05 * difficulty)
    img = stroke(img, rng, difficulty)
    img = dots(img, rng, difficulty)
    img = wear(img, rng, difficulty)
    img = aspect(img, rng, difficulty)
    img = geometry(img, rng, difficulty)
    img = resolution(img, rng, difficulty)
    if inverted:
        # A light-on-dark line that the page pipeline inverted back: the scan noise happened
        # on the inverted image.
        img = 255 - photometric(255 - img, rng, difficulty)
    else:
        img = photometric(img, rng, difficulty)
    return jpeg(img, rng, difficulty)
