"""The basis a replica is serving with, together with its ready-to-use scanner."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from zstream.io import Basis
from zstream.redshift import ScanConfig, Scanner


@dataclass(frozen=True)
class ServingBasis:
    """A basis and the :class:`Scanner` built for it; swapped as one object between batches.

    Attributes
    ----------
    basis : Basis
    scanner : Scanner
    observed_coverage : tuple of float
        Observed-frame wavelengths (Å) the basis can explain over the scanned z range;
        a spectrum entirely outside cannot be fitted.
    """

    basis: Basis
    scanner: Scanner
    observed_coverage: tuple[float, float] = field(default=(0.0, 0.0))

    @property
    def version(self) -> str:
        """Version id of the basis."""
        return self.basis.version


def build_serving(basis: Basis, scan_config: ScanConfig, device: torch.device) -> ServingBasis:
    """Prepare ``basis`` for serving: precompute its scanner on ``device``.

    Parameters
    ----------
    basis : Basis
    scan_config : ScanConfig
    device : torch.device

    Returns
    -------
    ServingBasis
    """
    rest = basis.grid.wavelength
    coverage = (float(rest[0] * (1.0 + scan_config.z_min)), float(rest[-1] * (1.0 + scan_config.z_max)))
    return ServingBasis(basis, Scanner(basis, scan_config, device=device), coverage)
