"""Batched χ²(z) redshift scan with non-negative template fits (Bourahma et al. 2026, Sects. 3.3–4.4).

Public API: :class:`ScanConfig`, :class:`Scanner` (one per basis), :class:`ZWarning`,
:func:`train_basis`; :mod:`zstream.redshift.reference` holds the exhaustive
per-redshift reference used for validation and benchmarks.
"""

from zstream.redshift.config import ScanConfig
from zstream.redshift.scanner import CURVE_SCHEMA, ScanOutput, Scanner
from zstream.redshift.train import train_basis
from zstream.redshift.zwarning import ZWarning

__all__ = ["CURVE_SCHEMA", "ScanConfig", "ScanOutput", "Scanner", "ZWarning", "train_basis"]
