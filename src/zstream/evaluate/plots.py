"""PNG figures of an evaluation report (needs matplotlib, the optional ``plot`` extra).

Uses ``matplotlib.figure.Figure`` directly, so no GUI backend or global pyplot state.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from zstream.evaluate.metrics import GF_TOLERANCE

if TYPE_CHECKING:
    from zstream.evaluate.gallery import GalleryItem


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def z_scatter(z_true: np.ndarray, z_pred: np.ndarray, path: Path) -> Path:
    """Predicted vs true redshift with the GF tolerance band."""
    figure = Figure(figsize=(5.5, 5))
    axes = figure.add_subplot()
    top = float(np.nanmax(np.r_[z_true, z_pred, 0.1]))
    line = np.linspace(0, top, 200)
    axes.fill_between(line, line - GF_TOLERANCE * (1 + line), line + GF_TOLERANCE * (1 + line), color="0.85", lw=0)
    axes.plot(line, line, color="0.5", lw=0.8)
    axes.scatter(z_true, z_pred, s=4, alpha=0.6)
    axes.set(xlabel="z true", ylabel="z predicted", title="Predicted vs true redshift (single sources)")
    return _save(figure, path)


def dz_histogram(dz: np.ndarray, path: Path) -> Path:
    """Histogram of signed Δz / (1 + z) inside ±5 GF tolerances."""
    figure = Figure(figsize=(5.5, 4))
    axes = figure.add_subplot()
    limit = 5 * GF_TOLERANCE
    finite = dz[np.isfinite(dz)]
    axes.hist(np.clip(finite, -limit, limit), bins=101, range=(-limit, limit))
    for sign in (-1, 1):
        axes.axvline(sign * GF_TOLERANCE, color="C3", lw=0.8, ls="--")
    axes.set(xlabel="(z_pred − z_true) / (1 + z_true)  [clipped]", ylabel="spectra", title="Redshift errors")
    return _save(figure, path)


def detection_curves(curve: dict, threshold: float | None, path: Path) -> Path:
    """Completeness and purity of ``log10 Δχ² > t`` as functions of t."""
    figure = Figure(figsize=(5.5, 4))
    axes = figure.add_subplot()
    t = np.asarray(curve["threshold"], dtype=float)
    axes.plot(t, curve["completeness"], label="completeness")
    axes.plot(t, curve["purity"], label="purity")
    if threshold is not None:
        axes.axvline(threshold, color="0.3", ls="--", lw=0.8, label=f"threshold {threshold:.3g}")
    axes.set(xlabel="threshold on log10 Δχ²", ylabel="fraction", ylim=(0, 1.02), title="True vs false sources")
    axes.legend()
    return _save(figure, path)


def blend_roc(roc: dict, auc: float | None, point: tuple[float | None, float | None], path: Path, *,
              title: str = "Blend detection ROC") -> Path:
    """ROC curve of a blend score (``roc``: ``fpr``, ``tpr`` lists) with the operating point, if known."""
    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot()
    axes.plot(roc["fpr"], roc["tpr"], label=f"AUC = {auc:.3f}" if auc is not None else "AUC undefined")
    axes.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":")
    if None not in point:
        axes.plot(*point, "o", color="C2", label="threshold")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(loc="lower right")
    return _save(figure, path)


def reliability_diagram(figures: dict[str, dict], path: Path) -> Path:
    """Observed frequency against predicted probability, per probability column.

    Parameters
    ----------
    figures : dict of str to dict
        Per column name, :func:`zstream.evaluate.calibrate.calibration_figures` (its ``curve``
        and ``brier``).
    path : Path
    """
    figure = Figure(figsize=(5.5, 5))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":", label="perfect calibration")
    for name, entry in figures.items():
        curve = entry["curve"]
        sizes = 8 + 60 * np.sqrt(np.asarray(curve["count"], dtype=float) / max(entry["n"], 1))
        line, = axes.plot(curve["predicted"], curve["observed"], lw=1, label=f"{name} (Brier {entry['brier']:.3f})")
        axes.scatter(curve["predicted"], curve["observed"], s=sizes, color=line.get_color(), zorder=3)
    axes.set(xlabel="predicted probability (bin mean)", ylabel="observed fraction", xlim=(0, 1), ylim=(0, 1.02),
             title="Reliability diagram (larger markers: more spectra)")
    axes.legend(loc="upper left")
    return _save(figure, path)


def gallery_item(item: GalleryItem, path: Path) -> Path:
    """Spectrum with its best-fit model, and its χ²(z) curve with true and predicted z."""
    figure = Figure(figsize=(10, 5.5))
    spectrum_axes, chi2_axes = figure.subplots(2, 1)
    good = item.ivar > 0
    spectrum_axes.plot(item.wavelength[good], item.flux[good], lw=0.5, color="C0", label="flux")
    if item.model is not None:
        spectrum_axes.plot(item.wavelength, item.model, lw=0.8, color="k", label="best fit")
    z_pred = "none" if item.z_pred is None else f"{item.z_pred:.4f}"
    spectrum_axes.set(xlabel="observed λ [Å]", ylabel="flux",
                      title=f"{item.spectrum_id} ({item.source_class}): z true {item.z_true:.4f}, predicted {z_pred}")
    spectrum_axes.legend(loc="upper right")
    if item.chi2 is not None:
        chi2_axes.plot(item.z_grid, item.chi2, lw=0.6)
        chi2_axes.axvline(item.z_true, color="C3", ls="--", lw=0.8, label="true z")
        if item.z_pred is not None:
            chi2_axes.axvline(item.z_pred, color="C2", ls=":", lw=0.8, label="predicted z")
        chi2_axes.set(xlabel="trial z", ylabel="χ²")
        chi2_axes.legend(loc="upper right")
    else:
        chi2_axes.text(0.5, 0.5, "χ²(z) not available: run evaluate with --basis and --spectra",
                       ha="center", va="center", transform=chi2_axes.transAxes)
        chi2_axes.set_axis_off()
    return _save(figure, path)


def rank_selection(ks: np.ndarray, mean: np.ndarray, error: np.ndarray, recommended: int, path: Path) -> Path:
    """Held-out reduced χ² per rank with fold-to-fold standard errors."""
    figure = Figure(figsize=(5.5, 4))
    axes = figure.add_subplot()
    axes.errorbar(ks, mean, yerr=error, marker="o", capsize=3)
    axes.axvline(recommended, color="C2", ls="--", lw=0.8, label=f"recommended k = {recommended}")
    axes.set(xlabel="rank k", ylabel="held-out χ² / pixel", title="K-fold rank selection")
    axes.legend()
    return _save(figure, path)
