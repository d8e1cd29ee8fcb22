"""Background refits: warm-started Nearly-NMF on the archive, shadow evaluation, promotion.

A refit trains a candidate basis from the serving one on recent archived spectra
plus a reservoir sample of older ones (each de-redshifted at its accepted z),
then compares candidate and serving basis on a held-out slice of the most recent
spectra: held-out χ² of the non-negative projection onto each basis (the same
criterion as rank selection). A candidate better by ``refit_margin`` then faces the
redshift criteria of :mod:`~zstream.service.promotion` (anchor-set GF, live flips);
only one that passes all is promoted, and a rejected one is published with its
reasons. Training uses only results the reliability model trusts (:func:`trusted`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from zstream import nmf
from zstream.grid import LogGrid
from zstream.io import Basis, table_to_spectra
from zstream.redshift.classes import class_blocks, trained_smoothness
from zstream.redshift.residual_nuisance import META_KEY as RESIDUAL_META_KEY
from zstream.redshift.train import continue_edges, coverage_floor, rest_frame_rows, spectypes
from zstream.service.archive import TRUST_COLUMNS, Archive
from zstream.service.config import ServiceConfig
from zstream.service.metrics import ServiceMetrics
from zstream.service.promotion import Verdict, judge, live_window
from zstream.service.versions import new_version_id

log = logging.getLogger("zstream.service")
_CHECK_INTERVAL_S = 2.0


@dataclass(frozen=True)
class RefitOutcome:
    """What one refit did.

    Attributes
    ----------
    outcome : str
        ``promoted``, ``rejected`` or ``failed``.
    candidate : Basis or None
        The candidate basis: to promote (``promoted``), or rejected (``rejected`` after training; None
        when too few spectra, or ``failed``).
    serving_chi2, candidate_chi2 : float
        Held-out χ² per weighted pixel of each basis (NaN when not evaluated).
    detail : str
        One line for the log.
    gate : Verdict or None
        The promotion gate's figures and reasons, when it judged the candidate.
    """

    outcome: str
    candidate: Basis | None
    serving_chi2: float
    candidate_chi2: float
    detail: str
    gate: Verdict | None = None


def rest_frame_matrix(table: pa.Table, grid: LogGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """De-redshift archived spectra (at their ``z``) onto ``grid``, with their spectral class.

    Parameters
    ----------
    table : pyarrow.Table
        Archive rows: spectrum columns plus ``z`` (and ``spectype``).
    grid : LogGrid

    Returns
    -------
    X, V : ndarray, shape (n_spectra, grid.n_pixels), float32
        Rest-frame flux and inverse variance (0 where a spectrum does not cover the grid).
    labels : ndarray (n_spectra,) of str
    """
    batch, _ = table_to_spectra(table)
    return (*rest_frame_rows(batch, grid), np.asarray(spectypes(batch), dtype=object))


def heldout_chi2_by_class(
    templates: np.ndarray, blocks: dict[str, slice], X: np.ndarray, V: np.ndarray, labels: np.ndarray,
    device: torch.device,
) -> float:
    """:func:`heldout_chi2` of each class's rows against its own template block, pooled per weighted pixel.

    A class with fewer held-out rows than templates is left out (the projection needs k rows).
    """
    total, pixels = 0.0, 0
    for name, rows in blocks.items():
        mine = labels == name
        if mine.sum() >= rows.stop - rows.start:
            n_pixels = max(1, int(np.count_nonzero(V[mine])))
            total += heldout_chi2(templates[rows], X[mine], V[mine], device) * n_pixels
            pixels += n_pixels
    return total / max(1, pixels)


def heldout_chi2(templates: np.ndarray, X: np.ndarray, V: np.ndarray, device: torch.device) -> float:
    """χ² per weighted pixel of the best non-negative fit of ``templates`` to each row of ``X``.

    Parameters
    ----------
    templates : ndarray, shape (k, n_pixels)
    X, V : ndarray, shape (n_spectra, n_pixels)
    device : torch.device

    Returns
    -------
    float
    """
    projection = nmf.project(X, V, templates, device=device)
    residual = X - projection.coefficients @ projection.templates
    return float(np.sum(V * residual**2) / max(1, np.count_nonzero(V)))


def trusted(table: pa.Table, min_probability: float) -> pa.Table:
    """Rows the reliability model trusts: ``p_z_ok`` and ``p_source`` at least ``min_probability`` where known.

    Labelled rows and results scanned without a calibration have no probabilities; they passed the
    archive's confidence cut (source, no doubtful warning) and stay.
    """
    keep = pa.array([True] * table.num_rows)
    for name in TRUST_COLUMNS:
        if name in table.column_names:
            keep = pc.and_(keep, pc.fill_null(pc.greater_equal(table.column(name), min_probability), True))
    return table.filter(keep)


def refit_once(serving: Basis, archive: Archive, config: ServiceConfig, device: torch.device, seed: int = 0) -> RefitOutcome:
    """Train, shadow-evaluate and judge one candidate basis (does not publish it).

    Parameters
    ----------
    serving : Basis
        The basis in service; the warm start and the yardstick.
    archive : Archive
    config : ServiceConfig
        ``refit_*`` settings.
    device : torch.device
    seed : int

    Returns
    -------
    RefitOutcome
        ``promoted`` (held-out χ² better by ``refit_margin``) or ``rejected``; exceptions propagate (non-finite
        templates or held-out χ² raise ``FloatingPointError``).
    """
    recent = trusted(archive.read_recent(config.refit_recent), config.refit_min_p_z_ok)
    n_holdout = max(serving.k, int(round(config.refit_holdout_fraction * recent.num_rows)))
    n_train_recent = recent.num_rows - n_holdout
    if n_train_recent < serving.k:
        return RefitOutcome("rejected", None, math.nan, math.nan,
                            f"only {recent.num_rows} archived spectra; need at least {serving.k + n_holdout}")
    older = archive.sample_older(recent.num_rows, config.refit_reservoir, seed)
    training = pa.concat_tables([recent.slice(0, n_train_recent), older], promote_options="permissive") if older.num_rows \
        else recent.slice(0, n_train_recent)
    X, V, labels = rest_frame_matrix(training, serving.grid)
    blocks = class_blocks(serving)
    templates = serving.templates.astype(np.float64)
    fits = {}
    for name, rows in blocks.items():  # each class's block warm-started on its own spectra
        mine = labels == name
        if mine.sum() < rows.stop - rows.start:
            continue
        # as in training: sparsely covered pixels get no weight, and each template continues its edge there
        covered = np.count_nonzero(V[mine], axis=0) >= coverage_floor(int(mine.sum()), rows.stop - rows.start)
        weights = np.where(covered, V[mine], 0.0).astype(np.float32)
        start = nmf.project(X[mine], weights, serving.templates[rows], max_iter=config.refit_max_iter, device=device)
        fitted = nmf.fit(X[mine], weights, rows.stop - rows.start, templates=serving.templates[rows],
                         coefficients=start.coefficients, max_iter=config.refit_max_iter, seed=seed, device=device,
                         smoothness=trained_smoothness(serving, name))
        templates[rows] = continue_edges(fitted.templates, covered)
        fits[name] = {"method": fitted.method, "nmf": fitted.settings, "n_iter": fitted.n_iter,
                      "n_training_spectra": int(mine.sum())}
    if not np.all(np.isfinite(templates)):
        raise FloatingPointError("candidate templates are not finite")
    X_hold, V_hold, labels_hold = rest_frame_matrix(recent.slice(n_train_recent), serving.grid)
    serving_chi2 = heldout_chi2_by_class(serving.templates, blocks, X_hold, V_hold, labels_hold, device)
    candidate_chi2 = heldout_chi2_by_class(templates, blocks, X_hold, V_hold, labels_hold, device)
    if not (math.isfinite(serving_chi2) and math.isfinite(candidate_chi2)):
        raise FloatingPointError(f"held-out χ² is not finite (candidate {candidate_chi2}, serving {serving_chi2})")
    summary = (f"held-out χ²/pixel {candidate_chi2:.5g} vs serving {serving_chi2:.5g} on {n_holdout} spectra, "
               f"trained on {training.num_rows}")
    meta = {
        "parent_version": serving.version,
        "classes": {name: [rows.start, rows.stop] for name, rows in blocks.items()},
        "fits": fits,
        "n_training_spectra": training.num_rows,
        "heldout_chi2_per_pixel": candidate_chi2,
        "parent_heldout_chi2_per_pixel": serving_chi2,
    }
    if RESIDUAL_META_KEY in serving.meta:  # the reduction's residual shapes do not depend on the templates
        meta[RESIDUAL_META_KEY] = serving.meta[RESIDUAL_META_KEY]
    candidate = Basis(templates.astype(np.float32), serving.grid, "", meta=meta)
    candidate.version = new_version_id(candidate)
    better = candidate_chi2 < serving_chi2 * (1.0 - config.refit_margin)
    return RefitOutcome("promoted" if better else "rejected", candidate, serving_chi2, candidate_chi2, summary)


class RefitWorker:
    """Runs :func:`refit_once` in a background thread when enough new spectra or time accumulate.

    Parameters
    ----------
    archive : Archive
    config : ServiceConfig
    device : torch.device
    metrics : ServiceMetrics
    current_basis : callable returning Basis
        The basis serving right now (read at the start of each refit).
    promote : callable taking Basis
        Publishes a promoted basis (archive copy, basis topic).
    is_leader : callable returning bool
        Whether this replica holds the refit lease (:class:`~zstream.service.leadership.RefitLease`);
        only the leader refits, and it asks again just before promoting. Always, by default.
    publish_rejection : callable taking (Basis, RefitOutcome), optional
        Makes a rejected candidate and its reasons visible to operators (the basis topic).
    """

    def __init__(self, archive: Archive, config: ServiceConfig, device: torch.device, metrics: ServiceMetrics,
                 current_basis: Callable[[], Basis], promote: Callable[[Basis], None],
                 is_leader: Callable[[], bool] = lambda: True,
                 publish_rejection: Callable[[Basis, RefitOutcome], None] | None = None):
        self.archive = archive
        self.config = config
        self.device = device
        self.metrics = metrics
        self.current_basis = current_basis
        self.promote = promote
        self.is_leader = is_leader
        self.publish_rejection = publish_rejection
        self._last_refit = time.monotonic()
        self._last_refit_ns = time.time_ns()
        self._attempts = 0
        self._running = False
        self._wake = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="zstream-refit", daemon=True)

    def start(self) -> None:
        """Start the background thread."""
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the refit in progress, if any."""
        with self._wake:
            self._stop = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)

    @property
    def busy(self) -> bool:
        """A refit is running or due: until neither, the serving basis may still change by a promotion."""
        return self._running or self._due()

    def _due(self) -> bool:
        """Leader only: enough spectra archived by all replicas since the last refit, or enough time."""
        if not self.is_leader():
            return False
        new_spectra = self.archive.count_since(self._last_refit_ns)
        minutes = (time.monotonic() - self._last_refit) / 60.0
        return new_spectra >= self.config.refit_every_spectra or (
            new_spectra > 0 and minutes >= self.config.refit_every_minutes
        )

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stop and not self._due():
                    self._wake.wait(timeout=_CHECK_INTERVAL_S)
                if self._stop:
                    return
                self._last_refit = time.monotonic()
                self._last_refit_ns = time.time_ns()
                self._running = True
            try:
                self.run_once()
            finally:
                self._running = False

    def _gate(self, serving: Basis, outcome: RefitOutcome) -> RefitOutcome:
        """The redshift criteria of :mod:`~zstream.service.promotion` on a candidate that passed the χ² one."""
        anchors = self.archive.read_anchors(self.config.refit_anchor_max)
        recent = self.archive.read_recent(self.config.refit_live_window) if self.config.refit_live_window else None
        live = live_window(recent) if recent is not None and recent.num_rows else None
        verdict = judge(outcome.candidate, serving, anchors, live, self.config.scan_config(), self.device,
                        anchor_sigmas=self.config.refit_anchor_sigmas, max_flip_share=self.config.refit_max_flip_share)
        figures = ", ".join(f"{name} {value:.4g}" for name, value in verdict.figures.items())
        detail = f"{outcome.detail}; gate: {figures}"
        if verdict.passed:
            return dataclasses.replace(outcome, detail=detail, gate=verdict)
        return dataclasses.replace(outcome, outcome="rejected", detail=f"{'; '.join(verdict.reasons)}; {detail}",
                                   gate=verdict)

    def _await_serving(self, version: str, timeout_s: float = 60.0) -> None:
        """Wait until the promoted version serves, so the next refit starts from it."""
        deadline = time.monotonic() + timeout_s
        while self.current_basis().version != version and time.monotonic() < deadline and not self._stop:
            time.sleep(0.1)

    def run_once(self) -> RefitOutcome:
        """One refit with metrics and a single log line; never raises."""
        started = time.monotonic()
        serving = self.current_basis()
        self._attempts += 1
        try:
            outcome = refit_once(serving, self.archive, self.config, self.device, seed=self._attempts)
            if outcome.outcome == "promoted":
                outcome = self._gate(serving, outcome)
            if outcome.outcome == "promoted" and not self.is_leader():
                outcome = dataclasses.replace(outcome, outcome="rejected",
                                              detail=f"refit leadership lost before promoting; {outcome.detail}")
            if outcome.outcome == "promoted":
                self.promote(outcome.candidate)
                self._await_serving(outcome.candidate.version)
            elif outcome.candidate is not None and self.publish_rejection is not None:
                self.publish_rejection(outcome.candidate, outcome)
        except Exception as error:  # any failure leaves the serving basis untouched
            outcome = RefitOutcome("failed", None, math.nan, math.nan, f"{type(error).__name__}: {error}")
        self.metrics.refits.labels(outcome=outcome.outcome).inc()
        self.metrics.refit_duration.observe(time.monotonic() - started)
        version = f" → {outcome.candidate.version}" if outcome.outcome == "promoted" else ""
        log.info("refit from %s %s%s: %s", serving.version, outcome.outcome, version, outcome.detail)
        return outcome
