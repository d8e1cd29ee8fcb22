"""Nearly-NMF, Shift-NMF and clipped weighted NMF with smoothness, warm starts and chunked data.

Public API: ``fit``, ``project`` and the ``NMFResult`` they return. See docs/nmf.md.
"""

from zstream.nmf.result import NMFResult
from zstream.nmf.solver import fit, project

__all__ = ["NMFResult", "fit", "project"]
