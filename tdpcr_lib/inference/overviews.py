"""Overview levels of a product, built from its rows while the strips are written.

GDAL's COG driver builds a product's overviews after the whole raster exists: it reads the
full-resolution intermediate back and resamples it (half of the COG conversion's time for the
13-band reconstruction, measured on a 1024² scene). Here every finished strip also goes through
an :class:`OverviewPyramid`, which keeps only the few source rows a pending overview row still
needs and streams each level into its own GTiff. The levels are chained as GDAL *external
overviews* (``<intermediate>.ovr`` is level 1, ``<intermediate>.ovr.ovr`` level 2, ...), so the
COG driver finds them on the intermediate and copies them instead of computing them (its default
``OVERVIEWS=AUTO``).

The levels are those GDAL would make, value for value:

* sizes: halved (rounded down) until both sides fit in one ``blocksize`` block, as the COG
  driver does;
* each level is computed from the previous one (GDAL cascades too);
* ``average``: the mean of the valid source pixels weighted by how much of each lies inside the
  output pixel (exact 2 × 2 blocks for even sizes), rounded half up for integer types;
* ``mode``: the most frequent valid value among the source pixels the output pixel touches; on
  a tie the value whose count reached the maximum first, scanning rows then columns;
* nodata pixels (NaN for floats) are left out; an output pixel without valid source is nodata.

``tests/inference/test_overviews.py`` compares the levels with GDAL's own on even and odd sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: Output rows computed at a time (bounds the temporaries: 8 rows of a 10980 px wide 13-band
#: level take ~18 MB of float64 sources).
_ROWS_PER_CHUNK = 8


def overview_sizes(width: int, height: int, blocksize: int) -> list[tuple[int, int]]:
    """``(width, height)`` of each overview level GDAL's COG driver makes for ``blocksize``."""
    sizes = []
    while width > blocksize or height > blocksize:
        width, height = width // 2, height // 2
        sizes.append((width, height))
    return sizes


def _windows(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices ``(n_dst, K)``, their weights (0 where padded) and each window's start."""
    ratio = n_src / n_dst
    lo = np.arange(n_dst) * ratio
    hi = np.arange(1, n_dst + 1) * ratio
    start = np.floor(lo).astype(np.int64)
    stop = np.minimum(np.ceil(hi).astype(np.int64), n_src)
    k = int((stop - start).max())
    idx = start[:, None] + np.arange(k)[None, :]
    inside = idx < stop[:, None]
    # the part of source pixel [j, j + 1) inside the output pixel [lo, hi)
    weight = np.minimum(hi[:, None], idx + 1) - np.maximum(lo[:, None], idx)
    weight = np.where(inside, np.clip(weight, 0.0, None), 0.0)
    return np.where(inside, idx, start[:, None]), weight, start


class _Level:
    """One overview level fed with its source level's rows in order."""

    def __init__(self, src_size: tuple[int, int], dst_size: tuple[int, int], resampling: str, dtype: Any, nodata):
        (self.src_w, self.src_h), (self.dst_w, self.dst_h) = src_size, dst_size
        self.resampling, self.dtype, self.nodata = resampling, np.dtype(dtype), nodata
        self.ix, self.wx, _ = _windows(self.src_w, self.dst_w)
        self.iy, self.wy, self.y_start = _windows(self.src_h, self.dst_h)
        self.y_stop = self.iy.max(axis=1) + 1
        self.buffer: np.ndarray | None = None  # source rows [self.buffer_y0, ...)
        self.buffer_y0 = 0
        self.next_row = 0

    def _valid(self, values: np.ndarray) -> np.ndarray:
        if self.nodata is None:
            return np.ones(values.shape, dtype=bool)
        if isinstance(self.nodata, float) and np.isnan(self.nodata):
            return ~np.isnan(values)
        return values != self.nodata

    def feed(self, rows: np.ndarray) -> np.ndarray:
        """Take the next source rows ``(bands, n, src_w)``; return the output rows now complete."""
        self.buffer = rows if self.buffer is None else np.concatenate([self.buffer, rows], axis=1)
        have = self.buffer_y0 + self.buffer.shape[1]
        last = self.next_row
        while last < self.dst_h and self.y_stop[last] <= have:
            last += 1
        out = [self._rows(i, min(i + _ROWS_PER_CHUNK, last)) for i in range(self.next_row, last, _ROWS_PER_CHUNK)]
        self.next_row = last
        keep = self.y_start[last] if last < self.dst_h else have
        self.buffer = self.buffer[:, keep - self.buffer_y0 :]
        self.buffer_y0 = keep
        if not out:
            return np.empty((rows.shape[0], 0, self.dst_w), dtype=self.dtype)
        return np.concatenate(out, axis=1)

    def _rows(self, i0: int, i1: int) -> np.ndarray:
        assert self.buffer is not None
        iy = self.iy[i0:i1] - self.buffer_y0
        if self.resampling == "mode":
            return self._mode(iy, self.wy[i0:i1] > 0)
        if self.src_w == 2 * self.dst_w and self.src_h == 2 * self.dst_h:
            return self._average_2x2(int(iy[0, 0]), int(iy[-1, -1]) + 1)
        return self._average(iy, self.wy[i0:i1])

    def _average_2x2(self, y0: int, y1: int) -> np.ndarray:
        """:meth:`_average` for exact halving (every window 2 x 2, weights 1), on strided views.

        Integer sources of up to 16 bits are summed in float32: four of them stay below 2**18,
        so sums and means (divisions by 1-4) round exactly as in float64.
        """
        assert self.buffer is not None
        src = self.buffer[:, y0:y1]
        small_int = np.issubdtype(src.dtype, np.integer) and src.dtype.itemsize <= 2
        valid = self._valid(src)
        values = np.where(valid, src, 0).astype(np.float32 if small_int else np.float64)
        total = values[:, 0::2, 0::2] + values[:, 0::2, 1::2] + values[:, 1::2, 0::2] + values[:, 1::2, 1::2]
        del values
        n = valid[:, 0::2, 0::2].astype(np.uint8) + valid[:, 0::2, 1::2] + valid[:, 1::2, 0::2] + valid[:, 1::2, 1::2]
        return self._finish(total, n)

    def _average(self, iy: np.ndarray, wy: np.ndarray) -> np.ndarray:
        assert self.buffer is not None
        src = self.buffer[:, iy.min() : iy.max() + 1].astype(np.float64)
        iy = iy - iy.min()
        valid = self._valid(src)
        src = np.where(valid, src, 0.0)
        valid = valid.astype(np.float64)
        # horizontal then vertical weighted sums of the values and of the valid weights
        h_sum = sum(src[:, :, self.ix[:, k]] * self.wx[:, k] for k in range(self.ix.shape[1]))
        h_n = sum(valid[:, :, self.ix[:, k]] * self.wx[:, k] for k in range(self.ix.shape[1]))
        total = sum(h_sum[:, iy[:, k], :] * wy[:, k, None] for k in range(iy.shape[1]))
        n = sum(h_n[:, iy[:, k], :] * wy[:, k, None] for k in range(iy.shape[1]))
        return self._finish(total, n)

    def _finish(self, total: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Mean of the valid weights, rounded half up for integer types; nodata where none."""
        mean = total / np.where(n > 0, n, 1).astype(total.dtype)
        if np.issubdtype(self.dtype, np.integer):
            info = np.iinfo(self.dtype)
            mean = np.clip(np.floor(mean + 0.5), info.min, info.max)
        fill = np.nan if self.nodata is None else self.nodata
        return np.where(n > 0, mean, fill).astype(self.dtype)

    def _mode(self, iy: np.ndarray, inside_y: np.ndarray) -> np.ndarray:
        assert self.buffer is not None
        inside_x = self.wx > 0
        values, valid = [], []
        for ky in range(iy.shape[1]):  # scan order of GDAL: rows, then columns
            for kx in range(self.ix.shape[1]):
                v = self.buffer[:, iy[:, ky]][:, :, self.ix[:, kx]]
                values.append(v)
                valid.append(inside_y[:, ky, None] & inside_x[None, :, kx] & self._valid(v))
        # running count of each position's value; the winner reached the maximum count first
        running = []
        for k, (v, ok) in enumerate(zip(values, valid, strict=True)):
            count = sum(((values[j] == v) & valid[j]).astype(np.int32) for j in range(k + 1))
            running.append(np.where(ok, count, 0))
        counts = np.stack(running)
        best = counts.max(axis=0)
        first = np.argmax(counts == best[None], axis=0)
        winner = np.take_along_axis(np.stack(values), first[None], axis=0)[0]
        return np.where(best > 0, winner, self.nodata).astype(self.dtype)


class OverviewPyramid:
    """The overview levels of one product, fed with its full-resolution rows in order.

    Parameters
    ----------
    width, height
        Size of the full-resolution product.
    dtype, nodata
        Its data type and nodata value (``None``: every pixel is valid).
    resampling
        ``"average"`` or ``"mode"`` (see the module docstring).
    blocksize
        The COG block size: levels are made until one block holds the smallest.
    open_level
        ``open_level(level, width, height)`` returns a writable dataset for level ``level`` (1 = half
        size); each is written row by row and closed by :meth:`close`.
    """

    def __init__(
        self,
        width: int,
        height: int,
        dtype: Any,
        nodata: float | None,
        resampling: str,
        blocksize: int,
        open_level: Callable[[int, int, int], Any],
    ) -> None:
        if resampling not in ("average", "mode"):
            raise ValueError(f"resampling must be 'average' or 'mode', got {resampling!r}")
        sizes = [(width, height), *overview_sizes(width, height, blocksize)]
        self.levels = [_Level(a, b, resampling, dtype, nodata) for a, b in zip(sizes, sizes[1:], strict=False)]
        self.writers = [open_level(i + 1, w, h) for i, (w, h) in enumerate(sizes[1:])]

    def add_rows(self, rows: np.ndarray) -> None:
        """Feed the next full-resolution rows ``(bands, n, width)``; write what each level completes."""
        for level, writer in zip(self.levels, self.writers, strict=True):
            rows = level.feed(rows)
            if rows.shape[1] == 0:
                return
            y0 = level.next_row - rows.shape[1]
            writer.write(rows, window=((y0, level.next_row), (0, level.dst_w)))

    @property
    def complete(self) -> bool:
        """Whether every level has all its rows."""
        return all(level.next_row == level.dst_h for level in self.levels)

    def close(self) -> None:
        """Close the level datasets (idempotent)."""
        for writer in self.writers:
            if not writer.closed:
                writer.close()
