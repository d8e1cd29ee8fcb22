"""The batched redshift engine: one :class:`Scanner` per basis, many batches of spectra.

Per batch: prepare spectra on the log-λ grid (:mod:`~zstream.redshift.observed`),
and for every spectral class of the basis (:mod:`~zstream.redshift.classes`)
build the normal equations at every pixel shift of its trial-z range by FFT
(:mod:`~zstream.redshift.correlate`), solve the non-negative fits at its trial
redshifts all at once (:mod:`~zstream.redshift.zscan`), and refine its best few
minima exactly (:mod:`~zstream.redshift.fitz`). The candidates of all classes
are ranked by exact χ² (:mod:`~zstream.redshift.candidates`); the blend rescan
then augments the galaxy templates with the best-fit model. A calibration file
(``ScanConfig.reliability``, :mod:`~zstream.redshift.reliability`), when given,
turns the features of each result into ``p_source``, ``p_z_ok`` and ``p_blend``
and the decisions follow them.
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
from zstream.redshift.candidates import (
    Candidate,
    best_rival,
    curve_minima,
    edge_score,
    fit_gain,
    rank_candidates,
    spike_score,
)
from zstream.redshift.classes import DEFAULT_CLASS, class_blocks
from zstream.redshift.config import ScanConfig
from zstream.redshift.correlate import ShiftCorrelator, shift_range
from zstream.redshift.fitz import blend_score, outside_window, refine_minimum, score_curve
from zstream.redshift.observed import PreparedSpectrum, group_by_window, prepare_batch
from zstream.redshift.residual_nuisance import ResidualShapes
from zstream.redshift.zscan import ShiftTables, solve_at_shifts, solve_blend_at_shifts
from zstream.redshift.zwarning import ZWarning

CORRELATOR_CACHE_SIZE = 8
"""Distinct spectrum windows whose template transforms are kept per class (a survey usually has one)."""

CURVE_SCHEMA = pa.schema(
    [
        pa.field("spectrum_id", pa.string(), nullable=False),
        pa.field("spectype", pa.string(), nullable=False),
        pa.field("z", pa.list_(pa.float64()), nullable=False),
        pa.field("chi2", pa.list_(pa.float32()), nullable=False),
        pa.field("chi2_blend", pa.list_(pa.float32())),
    ]
)
"""χ²(z) curves kept on request: the winning class's trial grid and curve, and the blend-rescan curve
(on the galaxy grid; null when it is not the winning class's)."""


@dataclass
class ScanOutput:
    """Results of one batch, plus the χ²(z) curves that were asked for."""

    results: pa.Table
    curves: pa.Table


class ClassScan:
    """One spectral class of a basis: its templates, trial shifts and cached template transforms.

    Parameters
    ----------
    name : str
        Spectral class (``GALAXY``, ``QSO``, ``STAR``).
    templates : ndarray (k, n_pixels), float64
    basis : Basis
        The basis the templates come from (its grid).
    config : ScanConfig
    device : torch.device
    """

    def __init__(self, name: str, templates: np.ndarray, basis: Basis, config: ScanConfig, device: torch.device):
        self.name = name
        self.templates = templates
        self._tensor = torch.as_tensor(templates, dtype=torch.float64, device=device)
        grid = basis.grid
        z_lo, z_hi = config.z_range(name)
        self.shift_lo, self.shift_hi = shift_range(grid.step, z_lo, z_hi)
        self.trial_shift = config.trial_shifts(grid, name)
        self.z_grid = np.asarray(grid.z_of(self.trial_shift), dtype=np.float64)
        self.trial_lag = torch.as_tensor(self.shift_hi - self.trial_shift, device=device)
        self.shift_bounds = (float(self.trial_shift[0]), float(self.trial_shift[-1]))
        self._correlators: OrderedDict[tuple[int, int], ShiftCorrelator] = OrderedDict()

    def correlator(self, start: int, length: int) -> ShiftCorrelator:
        """Template transforms for the window ``(start, length)``, cached."""
        key = (start, length)
        if key not in self._correlators:
            self._correlators[key] = ShiftCorrelator(self._tensor, start, length, self.shift_lo, self.shift_hi)
            if len(self._correlators) > CORRELATOR_CACHE_SIZE:
                self._correlators.popitem(last=False)
        self._correlators.move_to_end(key)
        return self._correlators[key]


@dataclass
class ClassCurves:
    """One class's scan of a group of spectra: tables, χ² curves (n, n_z) and refined candidates."""

    scan: ClassScan
    tables: ShiftTables
    chi2: np.ndarray
    not_converged: np.ndarray
    candidates: list[list[Candidate]]


class Scanner:
    """Redshift scanner for one basis: template transforms are computed once and reused.

    Parameters
    ----------
    basis : Basis
        Templates ``(k, n_pixels)`` on their log-λ grid, with their class blocks in ``meta``.
    config : ScanConfig
        Trial redshifts, thresholds or calibration, and batching.
    device : str or torch.device, optional
        Where the numerics run (``None``: CUDA when present). Tables, solves and χ² are
        float64 on every device (:mod:`~zstream.redshift.zscan` says why).

    Raises
    ------
    UserError
        Via :class:`ScanConfig` for an invalid configuration, or for invalid class blocks.
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
        self.classes = {
            name: ClassScan(name, templates[rows], basis, self.config, self.device)
            for name, rows in class_blocks(basis).items()
        }
        self._blend_class = self.classes.get(DEFAULT_CLASS) or next(iter(self.classes.values()))
        self._learned_shapes = ResidualShapes.of_basis(basis)

    @property
    def k(self) -> int:
        """Number of templates, all classes together."""
        return self.basis.k

    @property
    def z_grid(self) -> np.ndarray:
        """Trial redshifts of the blend rescan's class (galaxies when the basis has them)."""
        return self._blend_class.z_grid

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
        prepared = prepare_batch(batch, self.basis.grid, self.config.sky_variance_fraction, self._learned_shapes)
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
        results = pa.Table.from_pylist(rows, schema=RESULT_SCHEMA)
        if self.config.reliability is not None:
            results = self.config.reliability.apply(results)
        return ScanOutput(results, pa.Table.from_pylist(curves, schema=CURVE_SCHEMA))

    def _scan_class(self, scan: ClassScan, spectra: list[PreparedSpectrum], start: int, length: int) -> ClassCurves:
        """χ²(z) of one class for spectra sharing a window, and its best minima refined exactly."""
        config = self.config
        n, n_z = len(spectra), scan.z_grid.size
        tables = ShiftTables.build(scan.correlator(start, length), spectra)
        chi2, converged = solve_at_shifts(tables, scan.trial_lag.expand(n, n_z), config.max_nnls_iter)
        chi2 = chi2.cpu().numpy()
        not_converged = ~converged.all(1).cpu().numpy()
        minima = [curve_minima(curve, scan.z_grid, config.n_candidates, config.confusion_window) for curve in chi2]
        best_shift, fine_converged = self._best_integer_shifts(scan, tables, minima)
        not_converged |= ~fine_converged
        reference = tables.reference_norm2.cpu().numpy()
        candidates = [
            [
                Candidate(
                    scan.name,
                    refine_minimum(scan.templates, spectrum, int(shift), scan.shift_bounds, self.basis.grid, reference[i]),
                    int(index) in (0, n_z - 1),
                )
                for index, shift in zip(minima[i], best_shift[i])
            ]
            for i, spectrum in enumerate(spectra)
        ]
        return ClassCurves(scan, tables, chi2, not_converged, candidates)

    def _scan_group(
        self, spectra: list[PreparedSpectrum], start: int, length: int, keep: list[bool]
    ) -> list[tuple[dict, dict | None]]:
        """Scan spectra that share one window; returns per spectrum its result fields and optional curve."""
        config = self.config
        by_class = {name: self._scan_class(scan, spectra, start, length) for name, scan in self.classes.items()}
        penalty = {name: config.look_elsewhere * math.log(scan.z_grid.size) for name, scan in self.classes.items()}
        blend = by_class[self._blend_class.name]
        energy = blend.tables.energy.cpu().numpy()
        ranked = [
            rank_candidates([c for curves in by_class.values() for c in curves.candidates[i]], float(energy[i]), penalty)
            for i in range(len(spectra))
        ]
        chi2_blend = None
        if config.blend:
            models = [candidates[0].refined.fit.model for candidates in ranked]
            lags = self._blend_class.trial_lag.expand(len(spectra), self._blend_class.z_grid.size)
            blend_chi2, blend_converged = solve_blend_at_shifts(blend.tables, models, lags, config.max_nnls_iter)
            chi2_blend = blend_chi2.cpu().numpy()
            # within z1's confusion window the fixed model is a combination of the shifted templates (a
            # singular system, where the solver may stop short); those shifts are never blend candidates
            z1 = np.array([candidates[0].z for candidates in ranked])
            counted = outside_window(self._blend_class.z_grid[None, :], z1[:, None], config.confusion_window)
            blend.not_converged |= (~blend_converged.cpu().numpy() & counted).any(1)

        out = []
        for i, (spectrum, candidates) in enumerate(zip(spectra, ranked)):
            best = candidates[0]
            own = by_class[best.spectype]
            rival = best_rival(candidates, config.confusion_window)
            scores = score_curve(
                np.concatenate([curves.chi2[i] for curves in by_class.values()]), best.refined.fit.chi2,
                None if rival is None else rival.refined.fit.chi2,
            )
            is_source = scores.delta_chi2 > 0 and math.log10(scores.delta_chi2) > config.source_log10_delta_chi2
            warnings = spectrum.warnings | (ZWarning(0) if is_source else ZWarning.SMALL_DELTA_CHI2)
            if best.at_edge:
                warnings |= ZWarning.Z_AT_EDGE
            if any(curves.not_converged[i] for curves in by_class.values()):
                warnings |= ZWarning.NNLS_NOT_CONVERGED
            if math.isnan(best.refined.z_err):
                warnings |= ZWarning.BAD_CURVATURE
            score, z_blend = (math.nan, None)
            if chi2_blend is not None:
                score, z_blend = self._blend(blend, spectrum, chi2_blend[i], best, i)
            is_blend = bool(score > config.blend_delta_chi2)
            gain = fit_gain(spectrum, best.refined.fit.model)
            row = {
                "z": best.z,
                "z_err": _nullable(best.refined.z_err),
                "chi2_min": best.refined.fit.chi2,
                "delta_chi2": _nullable(scores.delta_chi2),
                "robustness": _nullable(scores.robustness),
                "is_source": bool(is_source),
                "is_blend": is_blend,
                "blend_score": _nullable(score),
                "z_blend": z_blend if is_blend else None,
                "coefficients": (best.refined.fit.coefficients * spectrum.scale).astype(np.float32).tolist(),
                "warnings": int(warnings),
                "spectype": best.spectype,
                "z_alt": None if rival is None else rival.z,
                "spectype_alt": None if rival is None else rival.spectype,
                "chi2_alt": None if rival is None else rival.refined.fit.chi2,
                "spike_score": _nullable(spike_score(gain)),
                "edge_score": _nullable(edge_score(gain)),
            }
            curve = None
            if keep[i]:
                curve = {
                    "spectype": best.spectype,
                    "z": own.scan.z_grid.tolist(),
                    "chi2": own.chi2[i].astype(np.float32).tolist(),
                    "chi2_blend": None if chi2_blend is None or own is not blend
                    else chi2_blend[i].astype(np.float32).tolist(),
                }
            out.append((row, curve))
        return out

    def _blend(
        self, blend: ClassCurves, spectrum: PreparedSpectrum, chi2_blend: np.ndarray, best: Candidate, index: int
    ) -> tuple[float, float | None]:
        """Blend score of the rescan curve and the second component's redshift, refined exactly."""
        scan = blend.scan
        score, z_coarse = blend_score(chi2_blend, scan.z_grid, best.z, self.config.confusion_window)
        if z_coarse is None:
            return score, None
        shift = int(scan.trial_shift[np.argmin(np.abs(scan.z_grid - z_coarse))])
        reference = blend.tables.reference_norm2[index].cpu().numpy()
        refined = refine_minimum(
            scan.templates, spectrum, shift, scan.shift_bounds, self.basis.grid, reference, best.refined.fit.model
        )
        return score, refined.z

    def _best_integer_shifts(
        self, scan: ClassScan, tables: ShiftTables, minima: list[np.ndarray]
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Best integer shift between the trial redshifts either side of each minimum of each spectrum.

        At low z one trial step spans several pixel shifts; the tables already hold them all, so
        every one of them is solved (a few dozen small systems per candidate).
        """
        n_z = scan.z_grid.size
        counts = [m.size for m in minima]
        padded = np.stack([np.resize(m, max(counts)) for m in minima])  # (n, c): repeat to a common count
        lo = scan.trial_shift[np.maximum(padded - 1, 0)]
        hi = scan.trial_shift[np.minimum(padded + 1, n_z - 1)]
        width = int((hi - lo).max()) + 1
        candidates = np.minimum(lo[..., None] + np.arange(width), hi[..., None])  # (n, c, width)
        n, c = padded.shape
        lags = torch.as_tensor(scan.shift_hi - candidates.reshape(n, c * width), device=self.device)
        chi2, converged = solve_at_shifts(tables, lags, self.config.max_nnls_iter)
        pick = chi2.reshape(n, c, width).argmin(2).cpu().numpy()
        best = np.take_along_axis(candidates, pick[..., None], 2)[..., 0]
        return [best[i, : counts[i]] for i in range(n)], converged.all(1).cpu().numpy()

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
