"""Worst-case gallery: spectra, best-fit models and χ²(z) curves of the worst redshifts.

Curves come from a scan's kept-curves table or are recomputed by rescanning just
these spectra with the basis; models are the basis combination at the predicted z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from zstream.io.records import Basis, SpectrumBatch
from zstream.redshift import Scanner
from zstream.redshift.classes import class_blocks


@dataclass
class GalleryItem:
    """One badly fitted spectrum: its χ²(z) curve and its best-fit model.

    Attributes
    ----------
    spectrum_id, source_class : str
    z_true, z_pred : float
    wavelength, flux, ivar, model : ndarray (n_pixels,)
        Observed spectrum and the best-fit model at ``z_pred`` (model may be None).
    z_grid, chi2 : ndarray (n_z,) or None
        The χ²(z) curve, when kept or recomputed.
    """

    spectrum_id: str
    source_class: str
    z_true: float
    z_pred: float | None
    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    model: np.ndarray | None = None
    z_grid: np.ndarray | None = None
    chi2: np.ndarray | None = None


def observed_model(basis: Basis, coefficients: np.ndarray, z: float, wavelength: np.ndarray) -> np.ndarray:
    """Best-fit model on the observed grid: inverse of the rest-frame transform of Bourahma et al. 2026 Eq. 4.

    Parameters
    ----------
    basis : Basis
        Templates ``(k, n_pixels)`` on ``basis.grid``.
    coefficients : ndarray (k,)
    z : float
    wavelength : ndarray (n,)
        Observed wavelengths in Å.

    Returns
    -------
    ndarray (n,)
        Model flux density per Å; 0 outside the basis coverage.
    """
    rest_model = np.asarray(coefficients, dtype=np.float64) @ basis.templates.astype(np.float64)
    loglam_rest = np.log10(wavelength) - math.log10(1.0 + z)
    per_loglam = np.interp(loglam_rest, basis.grid.loglam, rest_model, left=0.0, right=0.0)
    return per_loglam / (math.log(10.0) * wavelength)


def build_gallery(
    worst: list[dict],
    spectra: SpectrumBatch,
    *,
    basis: Basis | None = None,
    curves: pa.Table | None = None,
) -> list[GalleryItem]:
    """One :class:`GalleryItem` per worst case found in ``spectra``.

    Parameters
    ----------
    worst : list of dict
        ``report["worst"]`` from :func:`zstream.evaluate.score`.
    spectra : SpectrumBatch
        The scored spectra (others are ignored).
    basis : Basis, optional
        Rescan these spectra with it to get curves and best-fit models.
    curves : pyarrow.Table, optional
        Kept χ²(z) curves (``spectrum_id``, ``z``, ``chi2``) used when no basis is given.

    Returns
    -------
    list of GalleryItem
    """
    position = {spectrum_id: i for i, spectrum_id in enumerate(spectra.spectrum_id)}
    cases = [case for case in worst if case["spectrum_id"] in position]
    ids = [case["spectrum_id"] for case in cases]
    models: dict[str, np.ndarray] = {}
    if basis is not None and ids:
        rows = [position[i] for i in ids]
        output = Scanner(basis).run(spectra.take(rows), keep_chi2=ids)
        curves = output.curves
        blocks = class_blocks(basis)
        for row in output.results.to_pylist():
            if row["z"] is not None:
                wavelength = spectra.wavelength[position[row["spectrum_id"]]]
                coefficients = np.asarray(row["coefficients"], dtype=np.float64)
                own = Basis(basis.templates[blocks[row["spectype"]]], basis.grid, basis.version)
                models[row["spectrum_id"]] = observed_model(own, coefficients, row["z"], wavelength)
    curve_of = {row["spectrum_id"]: row for row in curves.to_pylist()} if curves is not None else {}
    items = []
    for case in cases:
        spectrum_id = case["spectrum_id"]
        row = position[spectrum_id]
        curve = curve_of.get(spectrum_id)
        items.append(
            GalleryItem(
                spectrum_id=spectrum_id,
                source_class=case["source_class"],
                z_true=case["z_true"],
                z_pred=case["z_pred"],
                wavelength=np.asarray(spectra.wavelength[row]),
                flux=np.asarray(spectra.flux[row]),
                ivar=np.asarray(spectra.ivar[row]),
                model=models.get(spectrum_id),
                z_grid=None if curve is None else np.asarray(curve["z"]),
                chi2=None if curve is None else np.asarray(curve["chi2"]),
            )
        )
    return items
