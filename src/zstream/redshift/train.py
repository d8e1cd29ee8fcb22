"""Learning a rest-frame basis from spectra with known redshift (``zstream fit``).

Each spectrum has its sky residuals fitted out (when it carries its ``sky``
spectrum, :mod:`~zstream.redshift.skylines`), is de-redshifted onto the shared
log-λ grid (Bourahma et al. 2026, Sect. 3.2, ``zstream.grid.to_rest_frame``) and
put in noise units; the rest-frame matrix of each spectral class
(:mod:`~zstream.redshift.classes`) is factorised by Nearly-NMF with sequentially
built templates (Green & Bailey), as the MUSE paper does for its one class.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timezone

import numpy as np
from tqdm import tqdm

from zstream.errors import UserError
from zstream.grid import LogGrid, to_rest_frame
from zstream.io.records import Basis, SpectrumBatch
from zstream.nmf import fit
from zstream.redshift.classes import DEFAULT_CLASS, DEFAULT_K, DEFAULT_SMOOTHNESS, SPECTYPES, for_class
from zstream.redshift.observed import sky_column
from zstream.redshift.residual_nuisance import META_KEY as RESIDUAL_META_KEY
from zstream.redshift.residual_nuisance import learn_residual_shapes
from zstream.redshift.skylines import DEFAULT_VARIANCE_FRACTION, remove_sky_residuals

MAX_MIN_COVERAGE = 50
"""Ceiling of the automatic coverage floor (:func:`coverage_floor`)."""

EDGE_PIXELS = 50
"""Covered pixels next to each end of a template whose median continues it beyond the coverage."""


def rest_frame_rows(
    batch: SpectrumBatch, grid: LogGrid, sky_variance_fraction: float = DEFAULT_VARIANCE_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Rest-frame flux and inverse variance of the spectra of ``batch`` with a finite ``z``, in noise units.

    NaN/inf pixels get zero weight (flux 0); a ``sky`` column's residual shapes are fitted out
    and its lines inflate the variance. Each row is divided by its median noise σ (and its
    weights multiplied by σ²): the NMF objective is unchanged, but the rows no longer depend on
    the units of the input and fit in float32 (physical units have ivar ≈ 1e40).

    Returns
    -------
    X, V : ndarray (n_with_z, grid.n_pixels), float32
    """
    rows = labelled_rows(batch)
    skies = sky_column(batch)
    X = np.zeros((rows.size, grid.n_pixels), dtype=np.float32)
    V = np.zeros_like(X)
    for out, row in enumerate(rows):
        flux, ivar = np.asarray(batch.flux[row], np.float64), np.asarray(batch.ivar[row], np.float64)
        bad = ~(np.isfinite(flux) & np.isfinite(ivar))
        flux, ivar = remove_sky_residuals(
            batch.wavelength[row], np.where(bad, 0.0, flux), np.where(bad, 0.0, ivar), skies[row], sky_variance_fraction
        )
        flux_rest, ivar_rest = to_rest_frame(batch.wavelength[row], flux, ivar, float(batch.z[row]), grid)
        weighted = ivar_rest > 0
        if weighted.any():
            scale = float(np.median(1.0 / np.sqrt(ivar_rest[weighted])))
            X[out], V[out] = flux_rest / scale, ivar_rest * scale**2
    return X, V


def labelled_skies(batch: SpectrumBatch) -> list[np.ndarray | None]:
    """Each labelled spectrum's sky spectrum (:func:`labelled_rows` order), None where it has none."""
    skies = sky_column(batch)
    return [skies[row] for row in labelled_rows(batch)]


def labelled_rows(batch: SpectrumBatch) -> np.ndarray:
    """Indices of the spectra of ``batch`` with a known redshift (finite ``z`` > −1)."""
    z = _redshifts(batch)
    return np.flatnonzero(np.isfinite(z) & (z > -1))


def labelled_redshifts(batch: SpectrumBatch) -> np.ndarray:
    """The redshift of each labelled spectrum (:func:`labelled_rows` order)."""
    return _redshifts(batch)[labelled_rows(batch)]


def _redshifts(batch: SpectrumBatch) -> np.ndarray:
    """``batch.z`` as float64, all NaN when the batch has none."""
    return np.full(len(batch), np.nan) if batch.z is None else np.asarray(batch.z, dtype=np.float64)


def spectypes(batch: SpectrumBatch) -> list[str]:
    """Spectral class of each labelled spectrum (:func:`labelled_rows` order): its ``spectype``, or GALAXY.

    Raises
    ------
    UserError
        On a ``spectype`` outside GALAXY | QSO | STAR.
    """
    rows = labelled_rows(batch)
    if batch.extra is None or "spectype" not in batch.extra.column_names:
        return [DEFAULT_CLASS] * rows.size
    column = batch.extra.column("spectype").to_pylist()
    names = [DEFAULT_CLASS if column[row] is None else str(column[row]).upper() for row in rows]
    unknown = sorted(set(names) - set(SPECTYPES))
    if unknown:
        raise UserError(f"training spectra: spectype {unknown} not one of {SPECTYPES}; fix the spectype column")
    return names


def coverage_floor(n_spectra: int, k: int) -> int:
    """Default ``min_coverage``: a 25th of the class's training spectra, at least ``k``, at most ``MAX_MIN_COVERAGE``."""
    return max(1, min(MAX_MIN_COVERAGE, max(k, n_spectra // 25)))


def train_basis(
    batches_or_batch: SpectrumBatch | Iterable[SpectrumBatch],
    k: int | dict[str, int] | None = None,
    grid: LogGrid | None = None,
    *,
    method: str = "nearly",
    max_iter: int = 500,
    sequential_iter: int = 50,
    seed: int = 0,
    device=None,
    dtype: str = "float32",
    min_coverage: int | None = None,
    smoothness: float | dict[str, float] | None = None,
    sky_variance_fraction: float = DEFAULT_VARIANCE_FRACTION,
    progress: bool = True,
    version: str | None = None,
) -> Basis:
    """Fit one small basis per spectral class to spectra with known redshift, stored as one basis.

    Parameters
    ----------
    batches_or_batch : SpectrumBatch or iterable of SpectrumBatch
        Training spectra; ``z`` must hold their redshifts (rows with NaN z are skipped). An
        optional ``spectype`` column (GALAXY | QSO | STAR) sorts them into classes; without one
        every spectrum is a GALAXY. An optional ``sky`` column is used as in the scan; from the
        fits of spectra without one, observed-frame residual shapes are learned for the scan
        (:mod:`~zstream.redshift.residual_nuisance`, ``meta["residual_nuisance"]``).
    k : int or dict, optional
        Templates per class: one integer for every class, or ``{"GALAXY": 10, "QSO": 4}``
        (classes not named get :data:`~zstream.redshift.classes.DEFAULT_K`, as does ``None``).
    grid : LogGrid, optional
        Rest-frame grid (default: :class:`~zstream.grid.LogGrid`).
    method : {"nearly", "shift", "clip"}
        NMF variant (see :func:`zstream.nmf.fit`).
    max_iter, sequential_iter : int
        Iterations of the joint fit and of each sequential stage.
    seed : int
        Seed of the random start.
    device : str or torch.device, optional
    dtype : {"float32", "float64"}
        NMF precision.
    min_coverage : int, optional
        Rest-frame pixels covered by fewer than this many training spectra of a class get zero
        weight, and each template continues its edge level there (:func:`continue_edges`).
        Without a floor, NMF spends templates on single-pixel spikes where only a handful of
        spectra reach (e.g. the blue edge, seen only at z > 6.4), and a spike template fits any
        emission line at any z. Default :func:`coverage_floor`.
    smoothness : float or dict, optional
        First-difference smoothness weight of the NMF (see :func:`zstream.nmf.fit`): one value
        for every class or per class; classes not named, and ``None``, get
        :data:`~zstream.redshift.classes.DEFAULT_SMOOTHNESS` (stars only are smoothed).
    sky_variance_fraction : float
        Sky-line residual RMS assumed for spectra with a ``sky`` column (fraction of the line flux).
    progress : bool
        tqdm bar on stderr over the NMF iterations.
    version : str, optional
        Basis version id; default ``"nmf-<classes and k>-<content hash prefix>"``.

    Returns
    -------
    Basis
        Templates ``(Σk, grid.n_pixels)``, float32, class blocks in ``meta["classes"]`` and
        training provenance per class in ``meta["fits"]``.

    Raises
    ------
    UserError
        When no spectrum has a known redshift, no class has as many spectra as templates (a class
        with fewer is left out and named in ``meta["skipped_classes"]``), the NMF settings are
        invalid, or the fit diverged.
    """
    grid = grid or LogGrid()
    batches = [batches_or_batch] if isinstance(batches_or_batch, SpectrumBatch) else list(batches_or_batch)
    parts = [rest_frame_rows(batch, grid, sky_variance_fraction) for batch in batches]
    X = np.concatenate([x for x, _ in parts]) if parts else np.zeros((0, grid.n_pixels), np.float32)
    V = np.concatenate([v for _, v in parts]) if parts else np.zeros_like(X)
    labels = np.asarray([name for batch in batches for name in spectypes(batch)], dtype=object)
    if X.shape[0] == 0:
        raise UserError("training spectra: none has a known redshift (finite z); fit needs a labelled set")
    blocks, classes, fits, skipped = [], {}, {}, {}
    model = np.zeros_like(X)
    for name in (c for c in SPECTYPES if np.any(labels == c)):
        k_class = for_class(k, name, DEFAULT_K)
        rows = labels == name
        if rows.sum() < k_class:  # too few to learn k templates: the class is left out, and says so
            skipped[name] = int(rows.sum())
            continue
        smooth = for_class(smoothness, name, DEFAULT_SMOOTHNESS)
        floor = coverage_floor(int(rows.sum()), k_class) if min_coverage is None else min_coverage
        templates, fits[name], model[rows] = _fit_class(
            name, X[rows], V[rows], k_class, floor, progress,
            dict(method=method, sequential_iter=sequential_iter, max_iter=max_iter, seed=seed, device=device,
                 dtype=dtype, smoothness=float(smooth)),
        )
        classes[name] = [sum(b.shape[0] for b in blocks), sum(b.shape[0] for b in blocks) + k_class]
        blocks.append(templates)
    if not blocks:
        raise UserError(f"training spectra: every class has fewer spectra with known z than templates {skipped}")
    templates = np.concatenate(blocks)
    if version is None:
        sizes = "-".join(f"{name[0]}{stop - start}" for name, (start, stop) in classes.items())
        version = f"nmf-{sizes}-{hashlib.sha256(templates.tobytes()).hexdigest()[:12]}"
    fitted = np.isin(labels, list(classes))
    without_sky = np.concatenate([[sky is None for sky in labelled_skies(batch)] for batch in batches]) & fitted
    redshifts = np.concatenate([labelled_redshifts(batch) for batch in batches])
    shapes = learn_residual_shapes(X[without_sky], V[without_sky], model[without_sky], redshifts[without_sky], grid)
    meta = {
        "classes": classes,
        "fits": fits,
        "skipped_classes": skipped,
        "n_training_spectra": int(X.shape[0]),
        "sky_variance_fraction": float(sky_variance_fraction),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if shapes is not None:
        meta[RESIDUAL_META_KEY] = shapes.to_meta()
    return Basis(templates, grid, version, meta)


def continue_edges(templates: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Templates with every pixel outside the covered range set to the median of the covered edge.

    The NMF says nothing where no training spectrum reaches. A zero there would leave the data
    of a spectrum whose trial redshift puts it beyond the coverage unmodelled, so its χ² would
    carry that continuum and lose to a wrong redshift that keeps the spectrum inside (low-z
    galaxies beyond the red end of the galaxy coverage taken for [OII] emitters at z ≈ 0.9).
    The local continuum level, robust to the spikes that sparse coverage breeds, continues it.

    Parameters
    ----------
    templates : ndarray (k, n_pixels)
    covered : ndarray (n_pixels,) of bool
        Pixels seen by enough training spectra.

    Returns
    -------
    ndarray (k, n_pixels), float64
    """
    out = np.where(covered, templates, 0.0).astype(np.float64)
    inside = np.flatnonzero(covered)
    if inside.size == 0:
        return out
    first, last = int(inside[0]), int(inside[-1])
    out[:, :first] = np.median(out[:, first : first + EDGE_PIXELS], axis=1, keepdims=True)
    out[:, last + 1 :] = np.median(out[:, max(first, last + 1 - EDGE_PIXELS) : last + 1], axis=1, keepdims=True)
    return out


def _fit_class(
    name: str, X: np.ndarray, V: np.ndarray, k: int, min_coverage: int, progress: bool, settings: dict
) -> tuple[np.ndarray, dict, np.ndarray]:
    """Sequential Nearly-NMF of one class's rest-frame rows: float32 templates, provenance, and the
    fitted rows (NaN on pixels too few training spectra cover, where the templates were not learned)."""
    well_covered = np.count_nonzero(V, axis=0) >= min_coverage
    V = np.where(well_covered, V, 0.0).astype(np.float32)
    total = (k - 1) * settings["sequential_iter"] + settings["max_iter"]
    with tqdm(total=total, desc=f"fit {name}: Nearly-NMF", unit="iter", disable=not progress) as bar:
        result = fit(X, V, k, sequential=k > 1, callback=lambda iteration, chi2: bar.update(1), **settings)
    templates = continue_edges(result.templates, well_covered).astype(np.float32)
    if not np.isfinite(templates).all():
        raise UserError(
            f"fit {name}: the NMF diverged (non-finite templates after {result.n_iter} iterations on {X.shape[0]} "
            "spectra); retry with --dtype float64 or fewer --max-iter"
        )
    return templates, {
        "nmf": result.settings,
        "n_iter": result.n_iter,
        "converged": bool(result.converged),
        "final_chi2": float(result.chi2[-1]) if result.chi2 else None,
        "n_training_spectra": int(X.shape[0]),
        "min_coverage": int(min_coverage),
        "n_masked_pixels": int((~well_covered).sum()),
    }, np.where(well_covered, result.coefficients @ result.templates, np.nan).astype(np.float32)
