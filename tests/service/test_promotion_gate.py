"""The promotion gate refuses candidates that would make redshifts worse, whatever their χ²; the serving
basis stays untouched and the rejection is published with its reasons and figures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from zstream.io import Basis
from zstream.redshift import ScanConfig, train_basis
from zstream.service.archive import Archive
from zstream.service.config import ServiceConfig
from zstream.service.metrics import ServiceMetrics
from zstream.service.promotion import judge
from zstream.service.refit import RefitWorker, trusted

from service_builders import TEST_GRID, results_at_truth, sources_only, train_small_basis

SCAN = ScanConfig(z_min=0.0, z_max=1.6, z_step=0.002)
CPU = torch.device("cpu")
GATE = {"anchor_sigmas": 2.0, "max_flip_share": 0.02}


@pytest.fixture(scope="module")
def serving() -> Basis:
    return train_small_basis(seed=61, n=240, k=3, max_iter=80, version="serving-v1")


def _in_range(batch):
    """Sources the test scan range (z ≤ 1.6) can find."""
    return batch.take(np.flatnonzero(np.asarray(batch.z) < 1.5))


@pytest.fixture(scope="module")
def anchors():
    return _in_range(sources_only(70, seed=62))


@pytest.fixture(scope="module")
def answered(serving, anchors):
    """The anchors as live results: z is what the serving basis said."""
    from zstream.redshift import Scanner

    live = anchors.take(np.arange(len(anchors)))
    live.z = Scanner(serving, SCAN, device=CPU).scan(live).column("z").to_numpy(zero_copy_only=False)
    return live


def _mislabelled(batch, seed: int):
    """The same spectra with their redshifts shuffled: what a refit on its own wrong answers learns from."""
    wrong = batch.take(np.arange(len(batch)))
    wrong.z = np.random.default_rng(seed).permutation(np.asarray(batch.z))
    return wrong


def test_the_serving_basis_passes_its_own_gate(serving, anchors, answered):
    verdict = judge(serving, serving, anchors, answered, SCAN, CPU, **GATE)
    assert verdict.passed, verdict.reasons
    assert verdict.figures["live_flip_share"] == 0.0
    assert verdict.figures["anchor_gf_candidate"] == verdict.figures["anchor_gf_serving"] > 0.5


def test_a_candidate_that_learned_sky_structure_is_rejected(serving, anchors, answered):
    """Narrow, strong lines at fixed rest pixels: a basis that fits sky residuals as if they were features."""
    templates = serving.templates.copy()
    rng = np.random.default_rng(63)
    lines = rng.choice(templates.shape[1], size=25, replace=False)
    templates[:, lines] += 20.0 * templates.max()
    candidate = Basis(templates, serving.grid, "sky-v2", meta={"parent_version": serving.version})
    verdict = judge(candidate, serving, anchors, answered, SCAN, CPU, **GATE)
    assert not verdict.passed
    assert any("anchor GF" in reason for reason in verdict.reasons), verdict.reasons
    assert verdict.figures["anchor_gf_candidate"] < verdict.figures["anchor_gf_serving"]


def test_a_candidate_trained_on_mislabelled_data_is_rejected(serving, anchors, answered):
    wrong = _mislabelled(_in_range(sources_only(200, seed=64)), seed=65)
    candidate = train_basis(wrong, 3, TEST_GRID, max_iter=60, sequential_iter=15, seed=66, device="cpu",
                            progress=False, version="mislabelled-v2")
    verdict = judge(candidate, serving, anchors, answered, SCAN, CPU, **GATE)
    assert not verdict.passed
    assert any("anchor GF" in reason for reason in verdict.reasons), verdict.reasons
    assert any("would change z" in reason for reason in verdict.reasons), verdict.reasons


def test_a_refit_on_mislabelled_live_results_is_rejected_published_and_leaves_serving_untouched(tmp_path, serving,
                                                                                                 anchors):
    archive = Archive(tmp_path / "archive")
    archive.add_anchors(anchors)
    live = _mislabelled(_in_range(sources_only(160, seed=67)), seed=68)  # the service's own (wrong) confident answers
    archive.append(live, results_at_truth(live))
    config = ServiceConfig(refit_recent=160, refit_reservoir=0, refit_margin=0.0, refit_max_iter=40, z_min=0.0,
                           z_max=1.6, z_step=0.002, refit_live_window=40, refit_anchor_max=60)
    templates = serving.templates.copy()
    promoted, rejected = [], []
    worker = RefitWorker(archive, config, CPU, ServiceMetrics(), lambda: serving, promoted.append,
                         publish_rejection=lambda candidate, outcome: rejected.append((candidate, outcome)))
    outcome = worker.run_once()
    assert outcome.outcome == "rejected" and promoted == []
    np.testing.assert_array_equal(serving.templates, templates)
    [(candidate, published)] = rejected
    assert candidate.meta["parent_version"] == serving.version
    assert "anchor GF" in published.detail and published.gate.figures["anchor_gf_candidate"] < \
        published.gate.figures["anchor_gf_serving"]


def test_refits_train_only_on_results_the_reliability_model_trusts():
    import pyarrow as pa

    table = pa.table({"spectrum_id": ["a", "b", "c", "d"], "p_z_ok": [0.9, 0.2, None, 0.8],
                      "p_source": [0.95, 0.99, None, 0.1]})
    assert trusted(table, 0.5).column("spectrum_id").to_pylist() == ["a", "c"]


def test_rejections_on_the_basis_topic_are_read_back_and_do_not_move_the_pointer(serving):
    import orjson

    from zstream.service.versions import SERVING_KEY, BasisLog

    log = BasisLog()
    log.apply(SERVING_KEY, orjson.dumps({"version": serving.version, "previous": None}))
    record = {"version": "v-bad", "parent_version": serving.version, "reasons": "anchor GF 0.2 < serving 0.9",
              "figures": {"anchor_gf_candidate": 0.2}}
    assert not log.apply(b"rejected/v-bad", orjson.dumps(record))
    assert log.rejections == {"v-bad": record} and log.serving_version == serving.version and not log.versions


def test_operators_add_labelled_spectra_to_the_anchors_with_a_command(tmp_path, capsys):
    from zstream.cli import main
    from zstream.io import write_spectra

    labelled = sources_only(12, seed=69)
    write_spectra(tmp_path / "confirmed.parquet", labelled)
    assert main(["anchors", "add", str(tmp_path / "confirmed.parquet"), "--archive", str(tmp_path / "archive")]) == 0
    assert f"{len(labelled)} anchor spectra added" in capsys.readouterr().out
    assert main(["anchors", "count", "--archive", str(tmp_path / "archive")]) == 0
    assert capsys.readouterr().out.strip() == str(len(labelled))
    assert Archive(tmp_path / "archive").count() == 0, "anchors are a yardstick, not refit training data"
    assert main(["anchors", "count"]) == 2  # no archive: a one-line error
