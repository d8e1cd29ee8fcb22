"""A failed refit (worse on the shadow evaluation, diverging to non-finite templates, too little data)
leaves the serving basis untouched, is counted in metrics and logged once with its reason."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from zstream.io import SpectrumBatch, load_basis
from zstream.redshift import Scanner
from zstream.service.archive import Archive
from zstream.service.metrics import ServiceMetrics
from zstream.service.refit import RefitWorker
from zstream.sim import simulate

from reliability_helpers import make_config


@pytest.fixture(scope="module")
def scanned(basis_files):
    """Simulated sources and scan results marked confident at their true z (what the archive keeps)."""
    basis = load_basis(basis_files[0])
    config = make_config("127.0.0.1:1", basis_files[0], Path("."), refit_recent=400, refit_reservoir=0,
                         refit_max_iter=20)
    spectra, _ = simulate(160, seed=41)
    rows = [i for i, z in enumerate(spectra.z) if 0.0 < z < config.z_max]
    spectra = spectra.take(rows)
    results = Scanner(basis, config.scan_config(), device="cpu").scan(spectra)
    for name, values in {"z": spectra.z, "is_source": [True] * len(rows), "is_blend": [False] * len(rows),
                         "warnings": [0] * len(rows)}.items():
        index = results.schema.get_field_index(name)
        results = results.set_column(index, results.schema.field(index), pa.array(values, results.schema.field(index).type))
    return basis, config, spectra, results


def _scaled(spectra: SpectrumBatch, factor: float) -> SpectrumBatch:
    return dataclasses.replace(spectra, flux=[flux * np.float32(factor) for flux in spectra.flux])


def _refit(tmp_path, basis, config, spectra, results, caplog):
    archive = Archive(tmp_path / "archive")
    archive.append(spectra, results)
    metrics = ServiceMetrics()
    promoted = []
    worker = RefitWorker(archive, config, torch.device("cpu"), metrics, lambda: basis, promoted.append)
    with caplog.at_level(logging.INFO, logger="zstream.service"):
        outcome = worker.run_once()
    lines = [record.getMessage() for record in caplog.records if "refit" in record.getMessage()]
    counts = {name: metrics.refits.labels(outcome=name)._value.get() for name in ("promoted", "rejected", "failed")}
    return outcome, promoted, lines, counts


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")  # the injected divergence
@pytest.mark.parametrize("case, expected_outcome, reason_words", [
    ("worse_on_shadow", "rejected", "held-out"),
    ("diverging", "failed", "not finite"),
    ("too_little_data", "rejected", "archived spectra"),
])
def test_failed_refit_leaves_serving_basis_untouched(case, expected_outcome, reason_words, scanned, tmp_path, caplog):
    basis, config, spectra, results = scanned
    serving_templates = basis.templates.copy()
    if case == "worse_on_shadow":
        config = dataclasses.replace(config, refit_margin=0.999)  # a candidate must be 1000× better
    elif case == "diverging":
        spectra = _scaled(spectra, 1e20)  # a calibration glitch: finite float32 flux whose products overflow
    else:
        spectra, results = spectra.take(range(4)), results.slice(0, 4)

    outcome, promoted, lines, counts = _refit(tmp_path, basis, config, spectra, results, caplog)

    assert outcome.outcome == expected_outcome and reason_words in outcome.detail, outcome.detail
    assert promoted == [] and (outcome.candidate is None) == (case != "worse_on_shadow")
    np.testing.assert_array_equal(basis.templates, serving_templates)
    assert counts == {name: float(name == expected_outcome) for name in counts}
    assert len(lines) == 1 and expected_outcome in lines[0] and reason_words in lines[0], lines
