"""Hand-made result tables with answers known by construction (a uniquely named module: test
directories share one ``conftest`` module name, so helpers are not imported from conftest)."""

import numpy as np
import pyarrow as pa

from zstream.io import RESULT_SCHEMA


def make_results(spectrum_id, z, delta_chi2, blend_score, *, is_source=None, is_blend=None) -> pa.Table:
    """A RESULT_SCHEMA table with the scored columns given and the others filled plausibly."""
    n = len(spectrum_id)
    delta_chi2 = np.asarray(delta_chi2, dtype=float)
    blend_score = np.asarray(blend_score, dtype=float)
    columns = {
        "spectrum_id": list(spectrum_id),
        "z": list(z),
        "z_err": [1e-4] * n,
        "chi2_min": [1000.0] * n,
        "delta_chi2": list(delta_chi2),
        "robustness": [1.0] * n,
        "is_source": list(np.log10(np.clip(delta_chi2, 1e-300, None)) > -2) if is_source is None else list(is_source),
        "is_blend": list(blend_score > 0.011) if is_blend is None else list(is_blend),
        "blend_score": list(blend_score),
        "z_blend": [None] * n,
        "coefficients": [[1.0, 0.0]] * n,
        "basis_version": ["test"] * n,
        "warnings": [0] * n,
        "n_pixels_used": [3800] * n,
    }
    return pa.Table.from_pydict(columns, schema=RESULT_SCHEMA)
