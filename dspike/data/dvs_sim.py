"""A small DVS event simulator and AEDAT4 writer, to make CIFAR10-DVS-like recordings offline.

The real CIFAR10-DVS [45] was recorded by moving upsampled CIFAR-10 images on a screen in front of
a 128x128 DVS camera along a repeated closed-loop path. ``simulate_saccade`` does this in software:
it shows an image on a 128x128 sensor, moves it along a short closed loop with sub-pixel
(bilinear) motion, and emits an ON (OFF) event each time a pixel's log intensity rises (falls) by a
contrast threshold from that pixel's own reference level, which then moves by one threshold (the
standard DVS pixel model). Timestamps are in microseconds, placed where the linearly interpolated
log intensity crosses each level. There is no noise: a static image gives no events.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .errors import CorruptDataError

EVENT_DTYPE = np.dtype([("t", np.uint64), ("x", np.uint16), ("y", np.uint16), ("p", bool)])


def saccade_path(amplitude: float = 2.0, n_steps: int = 24) -> np.ndarray:
    """A closed triangular loop of (dx, dy) offsets in pixels, starting and ending at (0, 0)."""
    corners = np.array([[0.0, 0.0], [amplitude, 0.0], [amplitude / 2, amplitude], [0.0, 0.0]])
    s = np.linspace(0.0, 3.0, n_steps + 1)
    i = np.minimum(s.astype(int), 2)
    f = (s - i)[:, None]
    return corners[i] * (1 - f) + corners[i + 1] * f


def _render(
    image: np.ndarray, resolution: tuple[int, int], display_size: int | None, background: float
) -> np.ndarray:
    """Grey-level canvas (float, 0..255) of the image centred on the sensor."""
    grey = Image.fromarray(image).convert("L") if image.ndim == 3 else Image.fromarray(image)
    if display_size is not None:
        grey = grey.resize((display_size, display_size), Image.BILINEAR)
    w, h = resolution
    img = np.asarray(grey, dtype=np.float32)
    if img.shape[0] > h or img.shape[1] > w:
        raise ValueError(f"image {img.shape} does not fit the {w}x{h} sensor")
    canvas = np.full((h, w), background, dtype=np.float32)
    y0, x0 = (h - img.shape[0]) // 2, (w - img.shape[1]) // 2
    canvas[y0 : y0 + img.shape[0], x0 : x0 + img.shape[1]] = img
    return canvas


def _shifted(canvas: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Canvas translated by each (dx, dy) of ``path``: bilinear, border pixels replicated."""
    h, w = canvas.shape
    out = np.empty((len(path), h, w), dtype=np.float32)
    for k, (dx, dy) in enumerate(path):
        xs, ys = np.clip(np.arange(w) - dx, 0, w - 1), np.clip(np.arange(h) - dy, 0, h - 1)
        x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
        x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
        fx, fy = (xs - x0).astype(np.float32), (ys - y0).astype(np.float32)[:, None]
        top = canvas[y0][:, x0] * (1 - fx) + canvas[y0][:, x1] * fx
        bottom = canvas[y1][:, x0] * (1 - fx) + canvas[y1][:, x1] * fx
        out[k] = top * (1 - fy) + bottom * fy
    return out


def simulate_saccade(
    image: np.ndarray,
    *,
    resolution: tuple[int, int] = (128, 128),
    display_size: int | None = 112,
    path: np.ndarray | None = None,
    duration_us: int = 100_000,
    threshold: float = 0.25,
    log_eps: float = 0.03,
    background: float = 128.0,
) -> np.ndarray:
    """Events of ``image`` (uint8 HxWx3 or HxW) moved along ``path`` on a DVS sensor.

    ``resolution`` is (width, height); the image is scaled to ``display_size`` pixels (None: as is)
    and centred on a ``background`` grey. ``path`` holds (dx, dy) offsets in pixels, one per frame,
    equally spaced over ``duration_us`` (default: ``saccade_path()``, a 2-pixel triangle). Log
    intensity is ``log(I/255 + log_eps)``; ``threshold`` is the contrast threshold.
    Returns a structured array with fields t (µs, uint64), x, y (uint16), p (bool, True = ON),
    sorted by time, the layout tonic uses for CIFAR10-DVS.
    """
    path = saccade_path() if path is None else np.asarray(path, dtype=np.float64)
    frames = _shifted(_render(image, resolution, display_size, background), path)
    log_i = np.log(frames.astype(np.float64) / 255.0 + log_eps)
    times = np.linspace(0.0, float(duration_us), len(path))
    ref = log_i[0].copy()
    chunks = []
    for k in range(1, len(path)):
        prev, cur = log_i[k - 1], log_i[k]
        n = np.floor(np.abs(cur - ref) / threshold).astype(np.int64)
        ys, xs = np.nonzero(n)
        if len(ys) == 0:
            continue
        counts = n[ys, xs]
        sign = np.sign(cur - ref)[ys, xs]
        # j-th crossing (j = 1..count) of level ref + j*sign*threshold along prev -> cur
        j = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1
        ys_r, xs_r, sign_r = np.repeat(ys, counts), np.repeat(xs, counts), np.repeat(sign, counts)
        level = ref[ys_r, xs_r] + j * sign_r * threshold
        p0, p1 = prev[ys_r, xs_r], cur[ys_r, xs_r]
        frac = np.clip((level - p0) / np.where(p1 != p0, p1 - p0, 1.0), 0.0, 1.0)
        t = np.round(times[k - 1] + frac * (times[k] - times[k - 1]))
        ev = np.empty(len(t), EVENT_DTYPE)
        ev["t"], ev["x"], ev["y"], ev["p"] = t, xs_r, ys_r, sign_r > 0
        chunks.append(ev)
        ref[ys, xs] += sign * counts * threshold
    events = np.concatenate(chunks) if chunks else np.empty(0, EVENT_DTYPE)
    return events[np.argsort(events["t"], kind="stable")]


def write_aedat4(
    path: str | Path, events: np.ndarray, resolution: tuple[int, int] = (128, 128)
) -> Path:
    """Write events (fields t, x, y, p) as an AEDAT4 file with one event stream, via dv-processing.

    ``resolution`` is (width, height). Timestamps must be non-decreasing (the writer requires it).
    """
    import dv_processing as dv

    path = Path(path)
    store = dv.EventStore()
    push = store.push_back
    for t, x, y, p in zip(
        events["t"].tolist(),
        events["x"].tolist(),
        events["y"].tolist(),
        events["p"].tolist(),
        strict=True,
    ):
        push(t, x, y, p)
    config = dv.io.MonoCameraWriter.EventOnlyConfig("DVS128-simulated", tuple(resolution))
    writer = dv.io.MonoCameraWriter(str(path), config)
    if store.size() > 0:
        writer.writeEvents(store)
    del writer  # closes the file
    return path


def read_aedat4(path: str | Path) -> np.ndarray:
    """Events of an AEDAT4 file through tonic's reader, fields renamed to t, x, y, p.

    A truncated or unreadable file raises ``CorruptDataError`` naming it.
    """
    from tonic.io import read_aedat4 as tonic_read

    try:
        events = tonic_read(str(path))
    except Exception as err:  # aedat raises bare Exceptions / OSErrors without the path
        raise CorruptDataError(path, f"{type(err).__name__}: {err}") from None
    events.dtype.names = ["t", "x", "y", "p"]
    return events
