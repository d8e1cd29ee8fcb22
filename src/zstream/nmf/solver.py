"""``fit`` and ``project``: the public entry points of the NMF engine.

One iteration is a template step (from sums accumulated over all spectra)
followed by one pass over the blocks of spectra that updates their
coefficients, measures χ² of the new state and accumulates the sums the next
template step needs. Each block is visited once per iteration, so data larger
than device memory cost one transfer per block per iteration.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from zstream.device import resolve_device, resolve_dtype
from zstream.errors import UserError
from zstream.nmf.chunks import DeviceChunks, SpectraSource
from zstream.nmf.normalise import normalise
from zstream.nmf.result import NMFResult
from zstream.nmf.smoothness import penalty
from zstream.nmf.start import random_start, scale_to_data
from zstream.nmf.updates import (TemplateSums, chi2_rows, coefficient_terms, template_products, update_coefficients,
                                 update_templates)
from zstream.nmf.validate import check_initial, check_rank, check_settings, check_shift

Callback = Callable[[int, float], None]


def fit(X, V, k: int, *, method: str = "nearly", shift: float | None = None, smoothness: float = 0.0,
        templates=None, coefficients=None, update_templates: bool = True,
        sequential: bool = False, sequential_iter: int = 50,
        max_iter: int = 500, tol: float = 1e-6, callback: Callback | None = None, seed: int = 0,
        device=None, dtype="float32", chunk_size: int | None = None) -> NMFResult:
    """Fit k non-negative templates and coefficients to weighted, possibly negative data.

    Minimises χ² = ‖V^½ ∘ (X − C T)‖² (+ λ‖T Dᵀ‖²) over C, T ≥ 0 with
    multiplicative updates that never increase the objective.

    The result does not depend on the flux units: ``fit(a X, V / a², ...)``
    gives the same templates, χ² history and convergence, and coefficients
    (and ``shift``, warm-start coefficients) scaled by ``a``. Internally the
    data are put in units of their typical noise σ, a power of two, in
    float64 before the cast to ``dtype`` (``zstream.nmf.normalise``), so ivar
    in physical units (~1e40) works in float32 too.

    Parameters
    ----------
    X : array-like (n_spectra, n_pixels), or Arrow record batches
        Data, negative values allowed. Alternatively a list of
        ``pyarrow.RecordBatch``/``Table`` with list columns ``flux`` and
        ``ivar``, or a callable returning a fresh iterator of them.
    V : array-like (n_spectra, n_pixels) or None
        Inverse-variance weights, 0 = missing; None for Arrow input.
    k : int
        Number of templates, 1 <= k <= min(n_spectra, n_pixels).
    method : {"nearly", "shift", "clip"}
        Nearly-NMF (Eqs. 18/19 of Green & Bailey), Shift-NMF (Eqs. 7/8) or
        weighted NMF of the data clipped at 0 (the biased baseline; its χ² is
        measured against the clipped data).
    shift : float or None
        Shift-NMF's scalar y; None uses the minimum, −min of the observed flux.
    smoothness : float
        λ of the penalty λ‖T Dᵀ‖² with first differences D (de Souza et al. 2026, "SpectralUnmix").
    templates : array-like (k, n_pixels) or None
        Warm-start templates.
    coefficients : array-like (n_spectra, k) or None
        Warm-start coefficients; otherwise seeded random ones scaled to the data.
    update_templates : bool
        False keeps ``templates`` fixed and fits coefficients only (projection).
    sequential : bool
        Build templates one at a time (Green & Bailey 2023): stage j fits j templates for
        ``sequential_iter`` iterations, the last stage fits all k jointly.
    sequential_iter : int
        Iterations per sequential stage before the joint one.
    max_iter : int
        Iteration cap of the (joint) fit.
    tol : float
        Stop when |Δχ²| / χ² between iterations falls below ``tol``; 0 runs
        exactly ``max_iter`` iterations.
    callback : callable or None
        ``callback(iteration, chi2)`` after every iteration (1-based, counting
        sequential stages).
    seed : int
        Seed of the random start.
    device : str, torch.device or None
        None/"auto" picks CUDA when available.
    dtype : {"float32", "float64"}
    chunk_size : int or None
        Spectra per block on the device; None keeps array input whole (and
        caches V∘X on the device). Results do not depend on it.

    Returns
    -------
    NMFResult
        Templates normalised to unit RMS when fitted (``zstream.nmf.normalise``),
        coefficients in the units of ``X``, χ² (dimensionless, the same in any
        units) after every iteration.

    Raises
    ------
    UserError (a ValueError)
        For NaN/inf, negative weights, shape mismatches, k out of range,
        unknown methods or inconsistent settings, naming the counts.
    """
    check_settings(method, smoothness, max_iter, tol, chunk_size, sequential_iter)
    source = SpectraSource(X, V, chunk_size)
    summary = source.summarise()
    n_spectra, n_pixels = summary.n_spectra, summary.n_pixels
    check_rank(k, n_spectra, n_pixels)
    given_templates = check_initial("templates", templates, (k, n_pixels))
    given_coefficients = check_initial("coefficients", coefficients, (n_spectra, k))
    if not update_templates and given_templates is None:
        raise UserError("update_templates=False needs the fixed templates; pass templates=")
    if sequential and (given_templates is not None or given_coefficients is not None or not update_templates):
        raise UserError("sequential=True builds templates from a random start; drop templates=/coefficients= "
                        "or set sequential=False")
    y = check_shift(shift, max(0.0, -summary.min_observed_flux)) if method == "shift" else 0.0
    unit = summary.flux_unit

    torch_device, torch_dtype = resolve_device(device), resolve_dtype(dtype)
    random_templates, random_coefficients = random_start(n_spectra, n_pixels, k, seed)
    start_templates = random_templates if given_templates is None else given_templates
    start_coefficients = random_coefficients if given_coefficients is None else given_coefficients / unit
    T = torch.as_tensor(start_templates).to(torch_device, torch_dtype)
    C = torch.as_tensor(start_coefficients).to(torch_device, torch_dtype)
    if update_templates:
        T, C = normalise(T, C)

    loop = _Iterations(DeviceChunks(source, method == "clip", torch_device, torch_dtype, unit),
                       method, y / unit, smoothness, update_templates, callback)
    stages = range(1, k) if sequential else ()
    for n_templates in stages:
        C_stage, T_stage = loop.run(C[:, :n_templates].clone(), T[:n_templates].clone(), sequential_iter, tol=None,
                                    scale=n_templates == 1)
        C[:, :n_templates], T[:n_templates] = C_stage, T_stage
        C[:, n_templates] *= C_stage.mean(dim=1)
    C, T = loop.run(C, T, max_iter, tol, scale=given_coefficients is None and not stages)
    if update_templates:
        T, C = normalise(T, C)

    settings = {
        "method": method, "k": int(k), "shift": y if method == "shift" else None, "smoothness": float(smoothness),
        "update_templates": bool(update_templates), "warm_templates": given_templates is not None,
        "warm_coefficients": given_coefficients is not None, "sequential": bool(sequential),
        "sequential_iter": int(sequential_iter), "max_iter": int(max_iter), "tol": float(tol), "seed": int(seed),
        "device": str(torch_device), "dtype": str(torch_dtype).removeprefix("torch."),
        "chunk_size": chunk_size, "n_spectra": n_spectra, "n_pixels": n_pixels, "normalisation": "unit_rms",
    }
    return NMFResult(templates=T.cpu().numpy(), coefficients=(C * unit).cpu().numpy(), chi2=loop.chi2,
                     n_iter=len(loop.chi2), converged=loop.converged, method=method, settings=settings)


def project(X, V, templates, *, max_iter: int = 200, tol: float = 1e-6, device=None,
            dtype="float32") -> NMFResult:
    """Fit non-negative coefficients of fixed templates to each spectrum (Nearly-NMF coefficient rule).

    Parameters
    ----------
    X, V : array-like (n_spectra, n_pixels)
        Data (negative values allowed) and inverse-variance weights (0 = missing).
    templates : array-like (k, n_pixels)
        The fixed basis; returned unchanged.
    max_iter, tol, device, dtype
        As in ``fit``.

    Returns
    -------
    NMFResult
        ``coefficients`` (n_spectra, k) for the given ``templates``.
    """
    basis = np.asarray(templates)
    if basis.ndim != 2:
        raise UserError(f"templates must be 2-D (k, n_pixels); got shape {basis.shape}")
    return fit(X, V, basis.shape[0], templates=basis, update_templates=False, max_iter=max_iter, tol=tol,
               device=device, dtype=dtype)


class _Iterations:
    """Runs iterations over device chunks and keeps the χ² history across sequential stages."""

    def __init__(self, chunks: DeviceChunks, method: str, shift: float, smoothness: float,
                 update_templates: bool, callback: Callback | None):
        self.chunks, self.method, self.shift = chunks, method, shift
        self.smoothness, self.update_templates, self.callback = smoothness, update_templates, callback
        self.chi2: list[float] = []
        self.converged = False
        self._stage_start = 0

    def run(self, C: torch.Tensor, T: torch.Tensor, n_iter: int, tol: float | None,
            scale: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Run up to ``n_iter`` iterations; stop early on relative χ² change < ``tol`` (None: never)."""
        sums = self._first_pass(C, T, scale)
        self.converged = False
        self._stage_start = len(self.chi2)
        for _ in range(n_iter):
            if self.update_templates:
                T = update_templates(T, sums, self.method, self.shift, self.smoothness)
            chi2, sums = self._coefficient_pass(C, T)
            self._record(chi2 + penalty(T, self.smoothness))
            if tol is not None and self._change_below(tol):
                self.converged = True
                break
        return C, T

    def _first_pass(self, C: torch.Tensor, T: torch.Tensor, scale: bool) -> TemplateSums | None:
        """Optionally scale random coefficients to the data, and accumulate the first template sums."""
        sums = self._new_sums(T)
        products = template_products(T, with_weights=False) if scale else None
        for chunk in self.chunks:
            if scale:
                C[chunk.rows] = scale_to_data(C[chunk.rows], coefficient_terms(T, products, chunk, with_weights=False))
            if sums is not None:
                sums.add(C[chunk.rows], sums.factors(C[chunk.rows]), chunk)
        return sums

    def _coefficient_pass(self, C: torch.Tensor, T: torch.Tensor) -> tuple[float, TemplateSums | None]:
        """Update every block's coefficients in place; return χ² of the new state and the next template sums.

        χ² and the template sums read the block tile by tile (``Chunk.tiles``): on CPU each tile of V
        then comes from memory once for both, and the residual never leaves the cache. χ² is
        accumulated per spectrum, then over spectra in float64.
        """
        sums = self._new_sums(T)
        with_weights = self.method == "shift"
        products = template_products(T, with_weights)
        chi2 = 0.0
        for chunk in self.chunks:
            terms = coefficient_terms(T, products, chunk, with_weights)
            c = update_coefficients(C[chunk.rows], terms, self.method, self.shift)
            C[chunk.rows] = c
            factors = sums.factors(c) if sums is not None else None
            rows_chi2 = c.new_empty(c.shape[0])
            for local, tile in chunk.tiles():
                chi2_rows(c[local], T, tile, out=rows_chi2[local])
                if sums is not None:
                    sums.add(c[local], factors[:, local], tile)
            chi2 += float(rows_chi2.sum(dtype=torch.float64))
        return chi2, sums

    def _new_sums(self, T: torch.Tensor) -> TemplateSums | None:
        if not self.update_templates:
            return None
        return TemplateSums(T.shape[0], T.shape[1], self.method == "shift", T)

    def _record(self, chi2: float) -> None:
        self.chi2.append(chi2)
        if self.callback is not None:
            self.callback(len(self.chi2), chi2)

    def _change_below(self, tol: float) -> bool:
        """Whether |Δχ²| < tol · χ² between the last two iterations of this stage; never for tol = 0."""
        if tol == 0 or len(self.chi2) - self._stage_start < 2:
            return False
        previous, current = self.chi2[-2], self.chi2[-1]
        return previous == 0 or abs(previous - current) < tol * abs(previous)
