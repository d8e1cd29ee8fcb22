"""Archive (confident-only appends, recent window, reservoir, retention), basis records and refits, without a broker."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from zstream.io import SpectrumBatch
from zstream.redshift.classes import trained_smoothness
from zstream.service.archive import Archive
from zstream.service.config import ServiceConfig
from zstream.service.metrics import ServiceMetrics
from zstream.service.refit import RefitWorker, refit_once
from zstream.service.versions import SERVING_KEY, BasisLog, basis_from_bytes, basis_to_bytes

from service_builders import results_at_truth, sources_only, train_small_basis


@pytest.fixture(scope="module")
def training() -> SpectrumBatch:
    return sources_only(160, seed=51)


def test_archive_keeps_confident_spectra_in_order(tmp_path, training):
    archive = Archive(tmp_path)
    first = training.take(range(6))
    flags = [True, False, True, True, True, True]
    warnings = [0, 0, 2, 32, 4, 0]  # SMALL_DELTA_CHI2 and Z_AT_EDGE doubt z; masked bad pixels do not
    assert archive.append(first, results_at_truth(first, is_source=flags, warnings=warnings)) == 3
    stored = archive.read_recent(10)
    assert stored.column("spectrum_id").to_pylist() == [first.spectrum_id[i] for i in (0, 3, 5)]
    assert stored.column("z").to_pylist() == [first.z[i] for i in (0, 3, 5)]
    assert archive.read_recent(2).column("spectrum_id").to_pylist() == [first.spectrum_id[i] for i in (3, 5)]


def test_reservoir_samples_only_older_rows_and_retention_bounds_the_archive(tmp_path, training):
    archive = Archive(tmp_path, max_spectra=25)
    for start in range(0, 40, 10):
        part = training.take(range(start, start + 10))
        archive.append(part, results_at_truth(part))
    recent = set(archive.read_recent(10).column("spectrum_id").to_pylist())
    older = archive.sample_older(10, 12, seed=3).column("spectrum_id").to_pylist()
    assert len(older) == len(set(older)) == 12 and not recent & set(older)
    assert archive.sample_older(10, 12, seed=3).column("spectrum_id").to_pylist() == older
    (archive.spectra_dir / "date=2000-01-01").mkdir()
    pq.write_table(archive.read_recent(1), archive.spectra_dir / "date=2000-01-01" / "part-0.parquet")
    archive.enforce_retention()
    assert not (archive.spectra_dir / "date=2000-01-01").exists()
    assert 15 < archive.count() <= 25
    assert set(archive.read_recent(10).column("spectrum_id").to_pylist()) == recent


def test_basis_records_round_trip_and_pointer_changes(tmp_path):
    basis = train_small_basis(seed=3, n=30, k=2, max_iter=5, version="v-a")
    again = basis_from_bytes(basis_to_bytes(basis))
    assert again.version == "v-a" and np.array_equal(again.templates, basis.templates)
    log = BasisLog()
    assert not log.apply(b"basis/v-a", basis_to_bytes(basis))
    assert log.apply(SERVING_KEY, orjson.dumps({"version": "v-a", "previous": None}))
    assert not log.apply(SERVING_KEY, orjson.dumps({"version": "v-a", "previous": None}))
    assert log.serving_version == "v-a" and log.basis("v-a").version == "v-a"


def test_refit_promotes_a_better_basis_rejects_by_margin_and_counts_failures(tmp_path, training):
    archive = Archive(tmp_path / "archive")
    archive.append(training, results_at_truth(training))
    weak = train_small_basis(seed=21, n=40, k=3, max_iter=3, version="weak")
    config = ServiceConfig(refit_recent=len(training), refit_reservoir=0, refit_margin=0.0, refit_max_iter=40)
    outcome = refit_once(weak, archive, config, device="cpu")
    assert outcome.outcome == "promoted"
    assert outcome.candidate_chi2 < outcome.serving_chi2
    assert outcome.candidate.meta["parent_version"] == "weak" and outcome.candidate.version != "weak"
    for name, fit in outcome.candidate.meta["fits"].items():  # each class refitted with its training smoothness
        assert fit["nmf"]["smoothness"] == trained_smoothness(weak, name)
    weak.meta["residual_nuisance"] = {"start": 5000, "n_spectra": 60, "shapes": [[0.0, 1.0], [1.0, 0.0]]}
    refitted = refit_once(weak, archive, config, device="cpu").candidate
    assert refitted.meta["residual_nuisance"] == weak.meta["residual_nuisance"]  # shapes of the reduction, kept
    weak.meta["fits"]["GALAXY"]["nmf"]["smoothness"] = 7.5
    assert refit_once(weak, archive, config, device="cpu").candidate.meta["fits"]["GALAXY"]["nmf"]["smoothness"] == 7.5
    strict = ServiceConfig(refit_recent=len(training), refit_reservoir=0, refit_margin=0.99, refit_max_iter=40)
    assert refit_once(weak, archive, strict, device="cpu").outcome == "rejected"

    metrics, promoted = ServiceMetrics(), []
    broken = train_small_basis(seed=21, n=40, k=3, max_iter=3, version="broken")
    broken.templates = broken.templates[:, :-5]  # no longer matches its grid: the refit must fail cleanly
    worker = RefitWorker(archive, config, "cpu", metrics, lambda: broken, promoted.append)
    assert worker.run_once().outcome == "failed"
    assert promoted == [] and metrics.refits.labels(outcome="failed")._value.get() == 1


def test_labelled_spectra_seed_the_archive(tmp_path, training):
    archive = Archive(tmp_path)
    assert archive.add_labelled(training) == len(training)
    stored = archive.read_recent(len(training))
    assert stored.column("spectrum_id").to_pylist() == training.spectrum_id
    assert np.array_equal(stored.column("z").to_numpy(), training.z)
