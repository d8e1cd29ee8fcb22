"""The benchmark's two runners agree on χ² from the same start, in memory and streamed from Arrow."""

import numpy as np

from zstream.bench.nmf import Case, run_engine, run_reference, write_arrow_file


def test_engine_and_reference_agree_in_memory():
    case = Case("paper", 40, 60, "float64", streamed=False, chunk_size=None)
    engine = run_engine(case, 0, None, 5, "cpu")
    reference = run_reference(case, 0, None, 5)
    np.testing.assert_allclose(engine["chi2"], reference["chi2"], rtol=1e-10)
    assert engine["seconds_per_iter"] > 0 and engine["peak_rss_mb"] > 0
    assert engine["cpu_seconds_per_iter"] > 0 and reference["cpu_seconds_per_iter"] > 0


def test_engine_streams_the_arrow_file_to_the_same_chi2(tmp_path):
    case = Case("large", 50, 30, "float64", streamed=True, chunk_size=16)
    path = tmp_path / "spectra.arrow"
    write_arrow_file(path, 0, case.n_spectra, case.n_pixels, case.chunk_size)
    engine = run_engine(case, 0, path, 4, "cpu")
    reference = run_reference(case, 0, path, 4)
    np.testing.assert_allclose(engine["chi2"], reference["chi2"], rtol=1e-10)
