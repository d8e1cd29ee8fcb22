"""Spectra as a re-iterable sequence of row blocks, so fits can run on data larger than device memory.

The template update is a sum over spectra, so every pass of the fit visits the
blocks in order and accumulates; only one block at a time needs to be on the
device. In-memory arrays without ``chunk_size`` form a single block whose
device copy and invariants (V∘X) are kept for the whole fit.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from zstream.errors import UserError
from zstream.nmf.normalise import noise_unit
from zstream.nmf.validate import check_block

TILE_BYTES = 1 << 20
"""On CPU the passes that read a block tile by tile take about this much of each array per tile (an L2
cache), so a tile read from memory once serves the χ² residual and the template sums."""


@dataclass
class Chunk:
    """One block of spectra on the device, with the invariants the updates reuse.

    Attributes
    ----------
    rows : slice
        Rows of the full data this block holds.
    flux : Tensor (n_rows, n_pixels)
        X, clipped at 0 for ``method="clip"``; χ² is measured on its residual.
    ivar : Tensor (n_rows, n_pixels)
    weighted_flux : Tensor (n_rows, n_pixels)
        V∘X, the expensive invariant of every update rule.
    workspace : Tensor (tile_rows, n_pixels)
        Scratch space the χ² overwrites with the weighted squared residual;
        its number of rows is the height of the tiles of ``tiles``.
    """

    rows: slice
    flux: torch.Tensor
    ivar: torch.Tensor
    weighted_flux: torch.Tensor
    workspace: torch.Tensor

    def tiles(self) -> Iterator[tuple[slice, Chunk]]:
        """Yield ``(local rows, tile)`` for consecutive row tiles as high as the workspace (views, no copies)."""
        step, n_rows = self.workspace.shape[0], self.flux.shape[0]
        if step >= n_rows:
            yield slice(0, n_rows), self
            return
        for start in range(0, n_rows, step):
            local = slice(start, min(start + step, n_rows))
            yield local, Chunk(slice(self.rows.start + local.start, self.rows.start + local.stop), self.flux[local],
                               self.ivar[local], self.weighted_flux[local], self.workspace[: local.stop - local.start])


@dataclass
class Summary:
    """What one validating pass over the data learns.

    Attributes
    ----------
    n_spectra, n_pixels : int
    min_observed_flux : float
        Smallest flux with weight > 0 (0 when nothing is observed), in the caller's units.
    flux_unit : float
        Typical noise σ of the observed pixels as a power of two (``normalise.noise_unit``).
    """

    n_spectra: int
    n_pixels: int
    min_observed_flux: float
    flux_unit: float


class SpectraSource:
    """Re-iterable (flux, ivar) row blocks from arrays or Arrow record batches.

    Parameters
    ----------
    X : array-like (n_spectra, n_pixels), or Arrow record batches
        Arrays, or a list of ``pyarrow.RecordBatch``/``Table`` (or a callable
        returning a fresh iterator of them) with list columns ``flux`` and ``ivar``.
    V : array-like (n_spectra, n_pixels) or None
        Weights for array input; must be None for Arrow input.
    chunk_size : int or None
        Maximum rows per block; None keeps arrays whole and Arrow batches as given.
    """

    def __init__(self, X, V, chunk_size: int | None):
        self.chunk_size = chunk_size
        self._arrow = _arrow_batches(X)
        if self._arrow is not None:
            if V is not None:
                raise UserError("V must be None when X is Arrow record batches (ivar comes from the 'ivar' column)")
            self.in_memory = False
        else:
            if V is None:
                raise UserError("V (inverse-variance weights, 0 = missing) is required with array X")
            self._flux = _as_2d_array(X, "X")
            self._ivar = _as_2d_array(V, "V")
            self.in_memory = True

    def blocks(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield ``(label, flux, ivar)`` row blocks in a fixed order, each at most ``chunk_size`` rows."""
        if self._arrow is None:
            yield from _split("X", self._flux, self._ivar, self.chunk_size)
            return
        for index, batch in enumerate(self._arrow()):
            flux, ivar = _batch_to_arrays(batch, index)
            yield from _split(f"batch {index}", flux, ivar, self.chunk_size)

    def summarise(self) -> Summary:
        """Validate every block and count spectra; raises ``UserError`` on the first bad block."""
        n_spectra, n_pixels, min_flux, median_ivars = 0, None, np.inf, []
        for label, flux, ivar in self.blocks():
            check_block(flux, ivar, label)
            if n_pixels is None:
                n_pixels = flux.shape[1]
            elif flux.shape[1] != n_pixels:
                raise UserError(f"{label}: {flux.shape[1]} pixels, but earlier blocks have {n_pixels}; "
                                "resample all spectra to one grid")
            n_spectra += flux.shape[0]
            observed = ivar > 0
            if observed.any():
                min_flux = min(min_flux, float(flux[observed].min()))
                median_ivars.append(float(np.median(ivar[observed])))
        if not n_spectra:
            raise UserError("no spectra: X holds 0 rows")
        return Summary(n_spectra, n_pixels, 0.0 if min_flux == np.inf else min_flux,
                       noise_unit(float(np.median(median_ivars)) if median_ivars else 1.0))


class DeviceChunks:
    """The blocks of a source as device-resident ``Chunk`` objects in flux units of ``unit``, cached when they fit.

    Flux is divided by ``unit`` and ivar multiplied by ``unit²`` before the
    values are cast to ``dtype`` (from float64 input in float64, so that ivar
    ≈ 1e40 never reaches float32); with a power of two this is exact and
    leaves V X², hence χ², unchanged. When streaming, each yielded chunk
    reuses the previous chunk's device buffers, so a chunk is valid only until
    the next one is requested.

    Parameters
    ----------
    source : SpectraSource
    clip : bool
        Replace negative flux by 0 (the biased baseline ``method="clip"``).
    device : torch.device
    dtype : torch.dtype
    unit : float
        Flux unit, a power of two (``Summary.flux_unit``).
    """

    def __init__(self, source: SpectraSource, clip: bool, device: torch.device, dtype: torch.dtype, unit: float):
        self._source, self._clip, self._device, self._dtype = source, clip, device, dtype
        self._factors = {"flux": 1 / unit, "ivar": unit**2}
        self._buffers: dict[str, torch.Tensor] = {}
        keep = source.in_memory and source.chunk_size is None
        self._cached = list(self._stream(reuse=False)) if keep else None

    def __iter__(self) -> Iterator[Chunk]:
        return iter(self._cached) if self._cached is not None else self._stream(reuse=True)

    def _stream(self, reuse: bool) -> Iterator[Chunk]:
        start = 0
        for _, flux, ivar in self._source.blocks():
            flux_t = self._on_device(flux, "flux", reuse)
            ivar_t = self._on_device(ivar, "ivar", reuse)
            if self._clip:
                flux_t = flux_t.clamp(min=0)
            weighted = self._buffer("weighted", flux_t.shape) if reuse else torch.empty_like(flux_t)
            torch.mul(flux_t, ivar_t, out=weighted)
            n_rows, n_pixels = flux_t.shape
            rows = slice(start, start + n_rows)
            start = rows.stop
            yield Chunk(rows, flux_t, ivar_t, weighted, self._buffer("workspace", (self._tile_rows(n_rows, n_pixels),
                                                                                  n_pixels)))

    def _tile_rows(self, n_rows: int, n_pixels: int) -> int:
        """Whole blocks on accelerators; on CPU tiles of about ``TILE_BYTES`` per array."""
        if self._device.type != "cpu":
            return max(n_rows, 1)
        return max(1, min(n_rows, TILE_BYTES // max(1, n_pixels * self._dtype.itemsize)))

    def _on_device(self, values: np.ndarray, slot: str, reuse: bool) -> torch.Tensor:
        """Return ``values`` times the slot's unit factor as a device tensor of the working dtype.

        No copy when nothing changes; float64 input is scaled before it is cast; with ``reuse`` the result
        lands in the slot's persistent buffer. The caller's array is never written to.
        """
        tensor, factor = _read_only_tensor(values), self._factors[slot]
        if tensor.dtype == torch.float64 and factor != 1:
            tensor, factor = tensor * factor, 1.0
        if factor == 1 and tensor.device == self._device and tensor.dtype == self._dtype:
            return tensor
        if not reuse:
            return tensor.to(self._device, self._dtype) * factor
        return self._buffer(slot, tensor.shape).copy_(tensor).mul_(factor)

    def _buffer(self, slot: str, shape: torch.Size) -> torch.Tensor:
        """A (rows, n_pixels) view of a persistent device buffer, grown when a larger block arrives."""
        buffer = self._buffers.get(slot)
        if buffer is None or buffer.shape[0] < shape[0] or buffer.shape[1] != shape[1]:
            buffer = torch.empty(shape, dtype=self._dtype, device=self._device)
            self._buffers[slot] = buffer
        return buffer[: shape[0]]


def _read_only_tensor(values: np.ndarray) -> torch.Tensor:
    """Wrap an array without copying, even when read-only (Arrow buffers); the engine never writes to it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(values)


def _arrow_batches(X) -> Callable[[], Iterable] | None:
    """Return a callable giving a fresh iterator of Arrow batches, or None if X is not Arrow input."""
    if callable(X):
        return X
    if isinstance(X, (pa.RecordBatch, pa.Table)):
        return lambda: iter([X])
    if isinstance(X, (list, tuple)) and X and all(isinstance(b, (pa.RecordBatch, pa.Table)) for b in X):
        return lambda: iter(X)
    return None


def _as_2d_array(values, name: str) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.ndim != 2:
        raise UserError(f"{name} must be 2-D (n_spectra, n_pixels); got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise UserError(f"{name} must hold real numbers; got dtype {array.dtype}")
    return array


def _split(label: str, flux: np.ndarray, ivar: np.ndarray, chunk_size: int | None):
    if chunk_size is None or flux.shape[0] <= chunk_size or flux.shape != ivar.shape:
        yield label, flux, ivar
        return
    for start in range(0, flux.shape[0], chunk_size):
        stop = start + chunk_size
        yield f"{label} rows {start}:{min(stop, flux.shape[0])}", flux[start:stop], ivar[start:stop]


def _batch_to_arrays(batch, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn list columns ``flux`` and ``ivar`` of one Arrow batch into (n_rows, n_pixels) arrays."""
    if not isinstance(batch, (pa.RecordBatch, pa.Table)):
        raise UserError(f"batch {index}: expected a pyarrow RecordBatch or Table, got {type(batch).__name__}")
    arrays = []
    for name in ("flux", "ivar"):
        if name not in batch.schema.names:
            raise UserError(f"batch {index}: missing list column {name!r}; columns are {batch.schema.names}")
        column = batch.column(name)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type):
            raise UserError(f"batch {index}: column {name!r} has type {column.type}, expected a list of floats")
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if column.null_count or (len(lengths) and (lengths != lengths[0]).any()):
            raise UserError(f"batch {index}: column {name!r} has {column.null_count} null rows and lengths "
                            f"{sorted(set(lengths.tolist()))[:5]}; every spectrum needs the same number of pixels")
        n_pixels = int(lengths[0]) if len(lengths) else 0
        values = column.flatten().to_numpy(zero_copy_only=False)
        arrays.append(values.astype(np.float64 if values.dtype == np.float64 else np.float32, copy=False)
                      .reshape(len(column), n_pixels))
    return arrays[0], arrays[1]
