"""The promotion gate: a refitted basis serves only if it does not make redshifts worse.

Held-out reconstruction χ² (in :func:`~zstream.service.refit.refit_once`) says a candidate
fits spectra better; that alone would promote a basis that fits sky residuals or the
service's own mistakes (the z ≈ 5.94 attractor in BENCHMARKS.md). So a candidate must also:

1. not lower the good fraction (|Δz| < 0.005 (1+z)) on the labelled **anchor set** beyond
   its binomial noise: ``GF_candidate ≥ GF_serving − refit_anchor_sigmas · √(GF(1−GF)/n)``
   (with GF = 1 on the serving basis, any loss is a loss). Anchors are the training
   spectra with known z and spectra an operator labels (``zstream anchors add``), kept
   under ``<archive>/anchors/`` apart from the live archive, so retention never removes them;
2. not move the redshift of more than ``refit_max_flip_share`` of the recent confident live
   results by more than 0.005 (1+z).

Every verdict carries its figures, so a rejected candidate can be published with the reasons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from zstream.io import Basis, SpectrumBatch, table_to_spectra
from zstream.redshift import ScanConfig, Scanner

GOOD_DZ = 0.005
"""|Δz| / (1+z) below which two redshifts agree (the good-fraction criterion)."""


@dataclass(frozen=True)
class Verdict:
    """The gate's decision on one candidate: ``reasons`` is empty when it may be promoted."""

    reasons: tuple[str, ...]
    figures: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.reasons


def good_fraction(z: np.ndarray, z_true: np.ndarray) -> float:
    """Share of finite ``z`` within GOOD_DZ (1+z_true) of ``z_true`` (a missing z counts as wrong)."""
    right = np.abs(np.nan_to_num(z, nan=np.inf) - z_true) < GOOD_DZ * (1.0 + z_true)
    return float(np.mean(right)) if len(z_true) else math.nan


def judge(candidate: Basis, serving: Basis, anchors: SpectrumBatch | None, live: SpectrumBatch | None,
          scan_config: ScanConfig,
          device: torch.device, *, anchor_sigmas: float, max_flip_share: float) -> Verdict:
    """Compare ``candidate`` with ``serving`` on the anchors (known z) and on recent live spectra.

    Parameters
    ----------
    candidate, serving : Basis
    anchors : SpectrumBatch or None
        Labelled spectra (``z`` known); None or empty: the anchor criterion is not applied.
    live : SpectrumBatch or None
        Recent confident live spectra, ``z`` = the redshift the serving basis gave them (None: not applied).
    scan_config : ScanConfig
    device : torch.device
    anchor_sigmas : float
        Allowed GF loss on the anchors, in binomial standard errors.
    max_flip_share : float
        Largest allowed share of live results whose z would move by more than GOOD_DZ (1+z).

    Returns
    -------
    Verdict
    """
    reasons: list[str] = []
    anchors = anchors if anchors is not None and len(anchors) else None
    live = live if live is not None and len(live) else None
    figures: dict = {"n_anchors": 0 if anchors is None else len(anchors), "n_live": 0 if live is None else len(live)}
    if anchors is not None:
        z_true = np.asarray(anchors.z, dtype=np.float64)
        gf_serving = good_fraction(_redshifts(serving, anchors, scan_config, device), z_true)
        gf_candidate = good_fraction(_redshifts(candidate, anchors, scan_config, device), z_true)
        noise = math.sqrt(gf_serving * (1.0 - gf_serving) / len(anchors))
        figures |= {"anchor_gf_serving": gf_serving, "anchor_gf_candidate": gf_candidate, "anchor_gf_noise": noise}
        if gf_candidate < gf_serving - anchor_sigmas * noise - 1e-12:
            reasons.append(f"anchor GF {gf_candidate:.3f} < serving {gf_serving:.3f} − {anchor_sigmas:g}·{noise:.3f} "
                           f"on {len(anchors)} labelled spectra")
    if live is not None:
        z_live = np.asarray(live.z, dtype=np.float64)
        share = 1.0 - good_fraction(_redshifts(candidate, live, scan_config, device), z_live)
        figures["live_flip_share"] = share
        if share > max_flip_share:
            reasons.append(f"{share:.1%} of {len(live)} recent confident results would change z "
                           f"(> {max_flip_share:.1%} allowed)")
    return Verdict(tuple(reasons), figures)


def _redshifts(basis: Basis, batch: SpectrumBatch, scan_config: ScanConfig, device: torch.device) -> np.ndarray:
    return Scanner(basis, scan_config, device=device).scan(batch).column("z").to_numpy(zero_copy_only=False)


def live_window(table: pa.Table) -> SpectrumBatch:
    """Archived live rows as spectra whose ``z`` is the serving basis's answer.

    Labelled rows (:meth:`Archive.add_labelled`, under any label) have no ``delta_chi2``: their z was
    known, not measured, and they are the anchors' business.
    """
    return table_to_spectra(table.filter(pc.is_valid(table.column("delta_chi2"))))[0]
