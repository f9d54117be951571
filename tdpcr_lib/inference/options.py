"""The rules for prediction's precision, tiling and block-size options, apart from the modules that use them
(the sliding window imports torch, the COG writer rasterio), so ``tdpcr predict`` can show and
check its options before loading either."""

from __future__ import annotations

#: ``precision`` values of :func:`~tdpcr_lib.inference.predictor.predict_tile_batch` / ``predict_scene``:
#: ``auto`` is bf16 autocast on CUDA, fp32 on the CPU.
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp32")

#: COG block sizes GDAL accepts: TIFF tiles are multiples of 16; larger blocks than this only
#: cost memory (a 0 or huge block size aborted GDAL with std::bad_alloc).
BLOCKSIZE_MULTIPLE, MAX_BLOCKSIZE = 16, 4096


def check_blocksize(blocksize: int) -> int:
    """``blocksize`` if GDAL's COG driver can use it; ``ValueError`` saying what is allowed."""
    if (
        not isinstance(blocksize, int)
        or isinstance(blocksize, bool)
        or not BLOCKSIZE_MULTIPLE <= blocksize <= MAX_BLOCKSIZE
        or blocksize % BLOCKSIZE_MULTIPLE
    ):
        raise ValueError(
            f"blocksize must be a multiple of {BLOCKSIZE_MULTIPLE} between "
            f"{BLOCKSIZE_MULTIPLE} and {MAX_BLOCKSIZE}, got {blocksize!r}"
        )
    return blocksize


def check_tiling(tile: int, overlap: int | None) -> int:
    """The overlap to use (default ``tile // 4``); ``ValueError`` unless ``0 <= overlap < tile``."""
    overlap = tile // 4 if overlap is None else int(overlap)
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(
            f"need tile >= 1 and 0 <= overlap < tile (overlap must be in [0, tile)), got tile={tile}, overlap={overlap}"
        )
    return overlap
