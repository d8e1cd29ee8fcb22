"""Building blocks of ``zstream demo``: starter basis, simulated stream, settings, final report.

The demo simulates MUSE-range spectra with 5 Å pixels on a matching rest grid
(about a quarter of the real pixel count) so that training, streaming and a refit
fit in about two minutes on a laptop CPU; the code path is the production one.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from zstream.evaluate import headline, score, write_report
from zstream.grid import LogGrid
from zstream.io import RESULT_SCHEMA, SpectrumBatch, conform_results, load_basis, save_basis, write_results
from zstream.redshift import ScanConfig, Scanner, train_basis
from zstream.service.archive import Archive
from zstream.service.config import ServiceConfig
from zstream.service.metrics import BASIS_SWAPS, REFIT_OUTCOMES, REFITS
from zstream.sim import SimConfig, simulate
from zstream.testing.broker import EmbeddedBroker
from zstream.testing.harness import StreamHarness

DEMO_SIM = SimConfig(pixel_size=5.0)
DEMO_GRID = LogGrid(2.77, 3.97, 3e-4)
DEMO_Z_STEP = 0.001
_STARTER_ITER = 40


def starter_basis(out: Path, n_train: int, k: int, seed: int, device: str) -> tuple[SpectrumBatch, Path]:
    """Simulate a training set and fit a starter basis with a short Nearly-NMF run.

    Returns
    -------
    training : SpectrumBatch
        The training spectra (with ``z``).
    path : Path
        The saved starter basis.
    """
    print(f"simulating {n_train} training spectra…", flush=True)
    training, _ = simulate(n_train, seed=seed, config=DEMO_SIM, progress=True)
    print(f"fitting a k={k} starter basis (Nearly-NMF)…", flush=True)
    basis = train_basis(training, k, DEMO_GRID, max_iter=_STARTER_ITER, sequential_iter=10, seed=seed,
                        device=device, progress=True, version="demo-starter")
    path = out / "starter-basis.parquet"
    save_basis(basis, path)
    return training, path


def calibrated_model(out: Path, basis_path: Path, n: int, seed: int, device: str) -> Path:
    """Fit the reliability model (p_source, p_z_ok, p_blend) on a labelled simulated tuning set, as
    ``zstream calibrate`` does, so the service's decisions are calibrated probabilities."""
    from zstream.evaluate.calibrate import fit_reliability

    print(f"calibrating p_source, p_z_ok and p_blend on {n} labelled spectra…", flush=True)
    tuning, truth = simulate(n, seed=seed, config=DEMO_SIM, progress=True)
    results = Scanner(load_basis(basis_path), ScanConfig(z_step=DEMO_Z_STEP), device=device).scan(tuning)
    model = fit_reliability(results, truth, provenance={"tuning": f"zstream demo: seed {seed}, {n} spectra"})
    return model.save(out / "calibration.json")


def stream_spectra(n: int, seed: int) -> tuple[SpectrumBatch, pa.Table]:
    """The spectra to stream and their truth table."""
    print(f"simulating {n} spectra to stream…", flush=True)
    return simulate(n, seed=seed, config=DEMO_SIM, progress=True)


def embedded_broker(log_path: Path) -> EmbeddedBroker:
    """An embedded broker (started on entering the returned context manager)."""
    return EmbeddedBroker(log_path=log_path)


def service_config(
    args: argparse.Namespace, bootstrap: str, basis: Path, calibration: Path, n_stream: int, prefix: str
) -> ServiceConfig:
    """Service settings for the demo: its own topics, the starter basis and its calibration, frequent refits."""
    return ServiceConfig(
        bootstrap_servers=bootstrap,
        input_topic=f"{prefix}.spectra",
        output_topic=f"{prefix}.results",
        dlq_topic=f"{prefix}.dlq",
        basis_topic=f"{prefix}.basis",
        group_id=prefix,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        basis=basis,
        calibration=calibration,
        archive=args.out / "archive",
        batch_size=16,
        max_wait_ms=500,
        device=args.device,
        z_step=DEMO_Z_STEP,
        refit_every_spectra=max(10, n_stream // 6),
        refit_every_minutes=0.5,
        refit_recent=400,
        refit_reservoir=400,
        refit_margin=0.0,
        refit_max_iter=60,
        refit_anchor_max=60,  # the promotion gate's scans stay short on a laptop CPU
        refit_live_window=60,
        metrics_host="127.0.0.1",
        metrics_port=args.metrics_port,
    )


def seed_archive(path: Path, training: SpectrumBatch, n_more: int, seed: int) -> None:
    """Archive the training set, then an independent labelled set, before streaming starts.

    Refits then learn from more than the starter saw, and the most recent rows (the
    shadow evaluation's held-out slice) are spectra the starter was not fitted to.
    """
    archive = Archive(path)
    archive.add_labelled(training, label="demo-training")
    labelled, _ = simulate(n_more, seed=seed, config=DEMO_SIM)
    archive.add_labelled(labelled, label="demo-labelled")


def results_table(rows: list[dict]) -> pa.Table:
    """Result records read from the output topic, as a ``RESULT_SCHEMA`` table."""
    return conform_results(pa.Table.from_pylist(rows)) if rows else RESULT_SCHEMA.empty_table()


def report(results: pa.Table, truth: pa.Table, out: Path, harness: StreamHarness, say: Callable[[str], None]) -> int:
    """Score the streamed results against the truth, write the report and say where everything is."""
    scored_truth = truth.filter(pc.is_in(truth.column("spectrum_id"), results.column("spectrum_id")))
    summary = score(results, scored_truth)
    written = write_report(summary, out / "report", results=results, truth=scored_truth)
    results_path = out / "results.parquet"
    write_results(results_path, results)
    latencies = harness.latencies()
    replica = harness.replica
    outcome = {
        "sent": harness.sent,
        "results": results.num_rows,
        "dead_letters": len(harness.dead_letters),
        "serving_version": replica.serving_version(),
        "hot_swaps": int(replica.metric(BASIS_SWAPS)),
        "refits": {name: int(replica.metric(REFITS, outcome=name)) for name in REFIT_OUTCOMES},
        "headline": headline(summary),
    }
    (out / "outcome.json").write_bytes(orjson.dumps(outcome, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))  # for scripts and CI
    say("")
    say(f"streamed {outcome['sent']} spectra: {outcome['results']} results, {outcome['dead_letters']} dead letters")
    if latencies.size:
        p50, p99 = np.percentile(latencies, [50, 99])
        say(f"end-to-end latency (send → result) p50 {p50:.2f} s, p99 {p99:.2f} s")
    refits = outcome["refits"]
    say(f"basis: started on demo-starter, now {outcome['serving_version']} ({outcome['hot_swaps']} hot swaps, "
        f"refits promoted {refits['promoted']}, rejected {refits['rejected']}, failed {refits['failed']})")
    say("evaluation against the simulation truth:")
    for name, value in outcome["headline"].items():
        say(f"  {name:18s} {'–' if value is None else f'{value:.4f}'}")
    say(f"outcome  {out / 'outcome.json'}")
    say(f"results  {results_path}")
    say(f"report   {written['html']}")
    say(f"archive  {out / 'archive'} (spectra/ and bases/)")
    say(f"logs     {out / 'service.log'}; metrics were served on http://127.0.0.1:{replica.metrics_port}/metrics")
    return 0
