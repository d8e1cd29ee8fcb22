"""Hand-made truth/result tables with answers known by construction."""

import pyarrow as pa
import pytest


@pytest.fixture
def small_truth() -> pa.Table:
    """4 single sources, 2 blends, 2 false detections."""
    return pa.table(
        {
            "spectrum_id": [f"s{i}" for i in range(8)],
            "z": [0.5, 1.0, 3.0, 5.0, 0.8, 4.0, None, None],
            "source_class": ["oii", "oii", "lae", "lae", "oii", "lae", "false_noise", "false_sky"],
            "is_source": [True] * 6 + [False] * 2,
            "is_blend": [False] * 4 + [True, True] + [False] * 2,
            "z2": [None] * 4 + [1.2, 0.3] + [None] * 2,
        }
    )
