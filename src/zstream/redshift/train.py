"""Learning a rest-frame basis from spectra with known redshift (``zstream fit``).

Each spectrum is de-redshifted onto the shared log-λ grid (seed 002, Sect. 3.2,
``zstream.grid.to_rest_frame``) and the rest-frame matrix is factorised by
Nearly-NMF with sequentially built templates (seed 001), as the MUSE paper does.
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


def rest_frame_rows(batch: SpectrumBatch, grid: LogGrid) -> tuple[np.ndarray, np.ndarray]:
    """Rest-frame flux and inverse variance of the spectra of ``batch`` with a finite ``z``, in noise units.

    NaN/inf pixels get zero weight (flux 0). Each row is divided by its median noise σ (and its
    weights multiplied by σ²): the NMF objective is unchanged, but the rows no longer depend on
    the units of the input and fit in float32 (physical units have ivar ≈ 1e40).

    Returns
    -------
    X, V : ndarray (n_with_z, grid.n_pixels), float32
    """
    z = np.full(len(batch), np.nan) if batch.z is None else np.asarray(batch.z, dtype=np.float64)
    rows = np.flatnonzero(np.isfinite(z) & (z > -1))
    X = np.zeros((rows.size, grid.n_pixels), dtype=np.float32)
    V = np.zeros_like(X)
    for out, row in enumerate(rows):
        flux, ivar = np.asarray(batch.flux[row], np.float64), np.asarray(batch.ivar[row], np.float64)
        bad = ~(np.isfinite(flux) & np.isfinite(ivar))
        flux_rest, ivar_rest = to_rest_frame(
            batch.wavelength[row], np.where(bad, 0.0, flux), np.where(bad, 0.0, ivar), z[row], grid
        )
        weighted = ivar_rest > 0
        if weighted.any():
            scale = float(np.median(1.0 / np.sqrt(ivar_rest[weighted])))
            X[out], V[out] = flux_rest / scale, ivar_rest * scale**2
    return X, V


def train_basis(
    batches_or_batch: SpectrumBatch | Iterable[SpectrumBatch],
    k: int,
    grid: LogGrid | None = None,
    *,
    method: str = "nearly",
    max_iter: int = 500,
    sequential_iter: int = 50,
    seed: int = 0,
    device=None,
    dtype: str = "float32",
    min_coverage: int = 0,
    progress: bool = True,
    version: str | None = None,
) -> Basis:
    """Fit a rank-``k`` basis to spectra with known redshift.

    Parameters
    ----------
    batches_or_batch : SpectrumBatch or iterable of SpectrumBatch
        Training spectra; ``z`` must hold their redshifts (rows with NaN z are skipped).
    k : int
        Number of templates (seed 002 selects 10).
    grid : LogGrid, optional
        Rest-frame grid (default: the MUSE grid of seed 002).
    method : {"nearly", "shift", "clip"}
        NMF variant (see :func:`zstream.nmf.fit`).
    max_iter, sequential_iter : int
        Iterations of the joint fit and of each sequential stage.
    seed : int
        Seed of the random start.
    device : str or torch.device, optional
    dtype : {"float32", "float64"}
        NMF precision.
    min_coverage : int
        Rest-frame pixels covered by fewer than this many training spectra get zero
        weight and a zero template value. Without a floor, NMF spends templates on
        single-pixel spikes where only a handful of spectra reach (e.g. the blue edge,
        seen only at z > 6.4), and a spike template fits any emission line at any z.
    progress : bool
        tqdm bar on stderr over the NMF iterations.
    version : str, optional
        Basis version id; default ``"nmf-k<k>-<content hash prefix>"``.

    Returns
    -------
    Basis
        Templates ``(k, grid.n_pixels)``, float32, with training provenance in ``meta``.

    Raises
    ------
    UserError
        When no spectrum has a known redshift, the NMF settings are invalid, or the fit diverged.
    """
    grid = grid or LogGrid()
    batches = [batches_or_batch] if isinstance(batches_or_batch, SpectrumBatch) else list(batches_or_batch)
    parts = [rest_frame_rows(batch, grid) for batch in batches]
    X = np.concatenate([x for x, _ in parts]) if parts else np.zeros((0, grid.n_pixels), np.float32)
    V = np.concatenate([v for _, v in parts]) if parts else np.zeros_like(X)
    if X.shape[0] == 0:
        raise UserError("training spectra: none has a known redshift (finite z); fit needs a labelled set")
    well_covered = np.count_nonzero(V, axis=0) >= min_coverage
    V[:, ~well_covered] = 0.0
    total = (k - 1) * sequential_iter + max_iter
    with tqdm(total=total, desc="fit: Nearly-NMF", unit="iter", disable=not progress) as bar:
        result = fit(
            X, V, k, method=method, sequential=k > 1, sequential_iter=sequential_iter, max_iter=max_iter,
            seed=seed, device=device, dtype=dtype, callback=lambda iteration, chi2: bar.update(1),
        )
    templates = np.where(well_covered, result.templates, 0.0).astype(np.float32)
    if not np.isfinite(templates).all():
        raise UserError(
            f"fit: the NMF diverged (non-finite templates after {result.n_iter} iterations on {X.shape[0]} spectra); "
            "retry with --dtype float64 or fewer --max-iter"
        )
    if version is None:
        version = f"nmf-k{k}-{hashlib.sha256(templates.tobytes()).hexdigest()[:12]}"
    meta = {
        "nmf": result.settings,
        "n_iter": result.n_iter,
        "converged": bool(result.converged),
        "final_chi2": float(result.chi2[-1]) if result.chi2 else None,
        "n_training_spectra": int(X.shape[0]),
        "min_coverage": int(min_coverage),
        "n_masked_pixels": int((~well_covered).sum()),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return Basis(templates, grid, version, meta)
