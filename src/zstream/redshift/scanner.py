"""The batched redshift engine: one :class:`Scanner` per basis, many batches of spectra.

Per batch: prepare spectra on the log-λ grid (:mod:`~zstream.redshift.observed`),
build the normal equations at every pixel shift by FFT
(:mod:`~zstream.redshift.correlate`), solve the non-negative fits at the trial
redshifts all at once (:mod:`~zstream.redshift.zscan`), refine each minimum
exactly and score the curve (:mod:`~zstream.redshift.fitz`), then run the blend
rescan with the basis augmented by the best-fit model.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from zstream.device import resolve_device
from zstream.io.records import Basis, SpectrumBatch
from zstream.io.schema import RESULT_SCHEMA
from zstream.redshift.config import ScanConfig
from zstream.redshift.correlate import ShiftCorrelator, shift_range
from zstream.redshift.fitz import blend_score, refine_minimum, score_curve
from zstream.redshift.observed import PreparedSpectrum, group_by_window, prepare_batch
from zstream.redshift.zscan import ShiftTables, solve_at_shifts, solve_blend_at_shifts
from zstream.redshift.zwarning import ZWarning

CORRELATOR_CACHE_SIZE = 8
"""Distinct spectrum windows whose template transforms are kept (a survey usually has one)."""

CURVE_SCHEMA = pa.schema(
    [
        pa.field("spectrum_id", pa.string(), nullable=False),
        pa.field("z", pa.list_(pa.float64()), nullable=False),
        pa.field("chi2", pa.list_(pa.float32()), nullable=False),
        pa.field("chi2_blend", pa.list_(pa.float32())),
    ]
)
"""χ²(z) curves kept on request: the trial grid, the scan curve and the blend-rescan curve."""


@dataclass
class ScanOutput:
    """Results of one batch, plus the χ²(z) curves that were asked for."""

    results: pa.Table
    curves: pa.Table


class Scanner:
    """Redshift scanner for one basis: template transforms are computed once and reused.

    Parameters
    ----------
    basis : Basis
        Templates ``(k, n_pixels)`` on their log-λ grid.
    config : ScanConfig
        Trial redshifts, thresholds and batching.
    device : str or torch.device, optional
        Where the numerics run (``None``: CUDA when present).

    Raises
    ------
    UserError
        Via :class:`ScanConfig` for an invalid configuration.
    ValueError
        When the basis templates are not a finite ``(k, n_pixels)`` array on the basis grid.
    """

    def __init__(self, basis: Basis, config: ScanConfig | None = None, device=None) -> None:
        self.basis = basis
        self.config = config or ScanConfig()
        self.device = resolve_device(device)
        templates = np.asarray(basis.templates, dtype=np.float64)
        if templates.ndim != 2 or templates.shape[1] != basis.grid.n_pixels or not np.isfinite(templates).all():
            raise ValueError(
                f"basis {basis.version!r}: templates must be a finite (k, {basis.grid.n_pixels}) array, got shape "
                f"{templates.shape}; rebuild the basis on its grid"
            )
        self._templates64 = templates
        self._templates = torch.as_tensor(templates, dtype=torch.float64, device=self.device)
        grid = basis.grid
        self._shift_lo, self._shift_hi = shift_range(grid.step, self.config.z_min, self.config.z_max)
        # trial redshifts snap to whole pixel shifts (one per shift where the grid is finer)
        trial_shift = np.unique(np.rint(grid.shift_of(self.config.z_grid)).astype(np.int64))
        self.z_grid = np.asarray(grid.z_of(trial_shift), dtype=np.float64)
        """Trial redshifts of the curve: ``config.z_grid`` snapped to whole pixel shifts of the basis grid."""
        self._trial_shift = trial_shift
        self._trial_lag = torch.as_tensor(self._shift_hi - trial_shift, device=self.device)
        self._shift_bounds = (float(grid.shift_of(self.z_grid[0])), float(grid.shift_of(self.z_grid[-1])))
        self._correlators: OrderedDict[tuple[int, int], ShiftCorrelator] = OrderedDict()

    @property
    def k(self) -> int:
        """Number of templates."""
        return self.basis.k

    def scan(self, batch: SpectrumBatch) -> pa.Table:
        """Redshifts of every spectrum of ``batch``: a table in ``RESULT_SCHEMA``, one row per spectrum, in order."""
        return self.run(batch).results

    def run(self, batch: SpectrumBatch, keep_chi2: Collection[str] | None = None) -> ScanOutput:
        """Scan ``batch``; keep χ²(z) curves of ``keep_chi2`` ids (all when ``config.keep_chi2``).

        Parameters
        ----------
        batch : SpectrumBatch
        keep_chi2 : collection of str, optional
            Spectrum ids whose curves go into ``ScanOutput.curves``.

        Returns
        -------
        ScanOutput
        """
        with torch_threads(self.config.threads):
            return self._run(batch, keep_chi2)

    def _run(self, batch: SpectrumBatch, keep_chi2: Collection[str] | None) -> ScanOutput:
        prepared = prepare_batch(batch, self.basis.grid)
        rows: list[dict] = [self._empty_row(batch.spectrum_id[i], p) for i, p in enumerate(prepared)]
        wanted = set(keep_chi2 or ())
        curves: list[dict] = []
        for (start, length), members in group_by_window(prepared).items():
            for first in range(0, len(members), self.config.batch_size):
                chunk = members[first : first + self.config.batch_size]
                keep = [self.config.keep_chi2 or batch.spectrum_id[i] in wanted for i in chunk]
                for i, (row, curve) in zip(chunk, self._scan_group([prepared[i] for i in chunk], start, length, keep)):
                    rows[i].update(row)
                    if curve is not None:
                        curves.append({"spectrum_id": batch.spectrum_id[i], **curve})
        return ScanOutput(
            pa.Table.from_pylist(rows, schema=RESULT_SCHEMA), pa.Table.from_pylist(curves, schema=CURVE_SCHEMA)
        )

    def _correlator(self, start: int, length: int) -> ShiftCorrelator:
        key = (start, length)
        if key not in self._correlators:
            self._correlators[key] = ShiftCorrelator(self._templates, start, length, self._shift_lo, self._shift_hi)
            if len(self._correlators) > CORRELATOR_CACHE_SIZE:
                self._correlators.popitem(last=False)
        self._correlators.move_to_end(key)
        return self._correlators[key]

    def _scan_group(
        self, spectra: list[PreparedSpectrum], start: int, length: int, keep: list[bool]
    ) -> list[tuple[dict, dict | None]]:
        """Scan spectra that share one window; returns per spectrum its result fields and optional curve."""
        config, grid = self.config, self.basis.grid
        n, n_z = len(spectra), self.z_grid.size
        tables = ShiftTables.build(self._correlator(start, length), spectra)
        trial = self._trial_lag.expand(n, n_z)
        chi2, converged = solve_at_shifts(tables, trial, config.max_nnls_iter)
        chi2 = chi2.cpu().numpy()
        not_converged = ~converged.all(1).cpu().numpy()
        coarse = np.argmin(chi2, axis=1)
        best_shift, fine_converged = self._best_integer_shift(tables, coarse)
        not_converged |= ~fine_converged

        reference = tables.reference_norm2().cpu().numpy()
        refined = [
            refine_minimum(
                self._templates64, s.position, s.native_flux, s.native_weight, int(shift), self._shift_bounds, grid,
                reference[i],
            )
            for i, (s, shift) in enumerate(zip(spectra, best_shift))
        ]
        chi2_blend = None
        if config.blend:
            models = [result.fit.model for result in refined]
            blend_chi2, blend_converged = solve_blend_at_shifts(tables, models, trial, config.max_nnls_iter)
            chi2_blend = blend_chi2.cpu().numpy()
            not_converged |= ~blend_converged.all(1).cpu().numpy()

        out = []
        for i, (spectrum, result) in enumerate(zip(spectra, refined)):
            warnings = spectrum.warnings
            scores = score_curve(chi2[i], self.z_grid, result.fit.chi2, result.z, config.confusion_window)
            is_source = scores.delta_chi2 > 0 and math.log10(scores.delta_chi2) > config.source_log10_delta_chi2
            warnings |= ZWarning(0) if is_source else ZWarning.SMALL_DELTA_CHI2
            if coarse[i] in (0, n_z - 1):
                warnings |= ZWarning.Z_AT_EDGE
            if not_converged[i]:
                warnings |= ZWarning.NNLS_NOT_CONVERGED
            if math.isnan(result.z_err):
                warnings |= ZWarning.BAD_CURVATURE
            score, z_blend = (math.nan, None)
            if chi2_blend is not None:
                score, z_blend = blend_score(chi2_blend[i], self.z_grid, result.z, config.confusion_window)
            is_blend = bool(score > config.blend_delta_chi2)
            row = {
                "z": result.z,
                "z_err": _nullable(result.z_err),
                "chi2_min": result.fit.chi2,
                "delta_chi2": _nullable(scores.delta_chi2),
                "robustness": _nullable(scores.robustness),
                "is_source": bool(is_source),
                "is_blend": is_blend,
                "blend_score": _nullable(score),
                "z_blend": z_blend if is_blend else None,
                "coefficients": (result.fit.coefficients * spectrum.scale).astype(np.float32).tolist(),
                "warnings": int(warnings),
            }
            curve = None
            if keep[i]:
                curve = {
                    "z": self.z_grid.tolist(),
                    "chi2": chi2[i].astype(np.float32).tolist(),
                    "chi2_blend": None if chi2_blend is None else chi2_blend[i].astype(np.float32).tolist(),
                }
            out.append((row, curve))
        return out

    def _best_integer_shift(self, tables: ShiftTables, coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best integer shift between the trial redshifts either side of each coarse minimum.

        At low z one trial step spans ~10 pixel shifts; the tables already hold them all, so
        every one of them is solved (a few dozen small systems per spectrum).
        """
        n_z = self.z_grid.size
        lo = self._trial_shift[np.maximum(coarse - 1, 0)]
        hi = self._trial_shift[np.minimum(coarse + 1, n_z - 1)]
        width = int((hi - lo).max()) + 1
        candidates = np.minimum(lo[:, None] + np.arange(width)[None, :], hi[:, None])
        lags = torch.as_tensor(self._shift_hi - candidates, device=self.device)
        chi2, converged = solve_at_shifts(tables, lags, self.config.max_nnls_iter)
        best = candidates[np.arange(len(coarse)), chi2.argmin(1).cpu().numpy()]
        return best, converged.all(1).cpu().numpy()

    def _empty_row(self, spectrum_id: str, spectrum: PreparedSpectrum) -> dict:
        """Result of a spectrum with nothing to fit: null scores, not a source, not a blend."""
        return {
            "spectrum_id": spectrum_id,
            "z": None,
            "z_err": None,
            "chi2_min": None,
            "delta_chi2": None,
            "robustness": None,
            "is_source": False,
            "is_blend": False,
            "blend_score": None,
            "z_blend": None,
            "coefficients": [],
            "basis_version": self.basis.version,
            "warnings": int(spectrum.warnings | (ZWarning(0) if spectrum.usable else ZWarning.SMALL_DELTA_CHI2)),
            "n_pixels_used": spectrum.n_pixels_used,
        }


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads (``None``: unchanged), then restore."""
    previous = torch.get_num_threads()
    if threads is not None and threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def _nullable(value: float) -> float | None:
    """NaN → None for nullable result columns."""
    return None if value is None or math.isnan(value) else float(value)
