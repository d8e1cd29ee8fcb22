"""Score a results table against a truth table: the numbers behind ``zstream evaluate``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from zstream.errors import UserError
from zstream.evaluate.metrics import (
    GF_TOLERANCE,
    confusion,
    redshift_summary,
    relative_error,
    roc_auc,
    threshold_curve,
)

RESULT_COLUMNS = ("spectrum_id", "z", "delta_chi2", "is_source", "is_blend", "blend_score")
TRUTH_COLUMNS = ("spectrum_id", "z", "source_class", "is_source", "is_blend", "z2")
DEFAULT_Z_BINS = (0.0, 0.5, 1.0, 1.5, 2.9, 4.0, 5.0, 6.7)
DEFAULT_SNR_BINS = (0.0, 7.0, 10.0, 15.0, 25.0, np.inf)
N_WORST = 12


def read_truth(path: str | Path) -> pa.Table:
    """Read a truth table (Parquet, as written by ``zstream simulate``) and check its columns.

    Raises
    ------
    UserError
        Missing or unreadable file, or a required column missing.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"truth file {path}: no such file; give the truth.parquet written by zstream simulate")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise UserError(f"truth file {path}: cannot read as Parquet ({error})") from None
    _require(table, TRUTH_COLUMNS, f"truth file {path}")
    return table


def score(
    results: pa.Table,
    truth: pa.Table,
    *,
    source_threshold: float | None = None,
    blend_threshold: float | None = None,
    z_bins: tuple[float, ...] = DEFAULT_Z_BINS,
    tolerance: float = GF_TOLERANCE,
) -> dict:
    """All figures of merit of a run, as a JSON-ready dict with stable keys.

    Parameters
    ----------
    results : pyarrow.Table
        Scanner output; needs :data:`RESULT_COLUMNS`. Truth rows without a result count as
        failed, unselected and unflagged.
    truth : pyarrow.Table
        Needs :data:`TRUTH_COLUMNS` (``z`` null for false detections); ``line_snr`` is used
        when present.
    source_threshold : float, optional
        Call a spectrum a source when log10 Δχ² exceeds this; ``None`` uses the scanner's
        own ``is_source``.
    blend_threshold : float, optional
        Flag a blend when ``blend_score`` exceeds this; ``None`` uses the scanner's ``is_blend``.
    z_bins : tuple of float
        Edges of the true-redshift bins of the per-bin figures.
    tolerance : float
        GF tolerance (Bourahma et al. 2026: 0.005).

    Returns
    -------
    dict
        ``counts``, ``thresholds``, ``redshift`` (``overall``, ``selected``, ``by_class``,
        ``by_z_bin``, ``by_line_snr``, ``blends``), ``detection`` (at the threshold, per class,
        ``curve``), ``blend`` (at the threshold, ``auc``, ``roc``; scored by ``p_blend`` when the
        results carry it, else ``blend_score``), ``classification`` (spectral class right among
        true sources, when both tables have ``spectype``) and ``worst``.

    Raises
    ------
    UserError
        Missing columns or duplicated spectrum ids.
    """
    data = join_results(results, truth)
    is_source, is_blend = data["is_source"], data["is_blend"]
    source_score = log10_delta_chi2(data["delta_chi2"])
    selected = data["pred_is_source"] if source_threshold is None else source_score > source_threshold
    flagged = data["pred_is_blend"] if blend_threshold is None else data["blend_score"] > blend_threshold
    single = is_source & ~is_blend
    return {
        "counts": {
            "n_truth": int(is_source.size),
            "n_results_matched": int(data["matched"].sum()),
            "n_missing_results": int((~data["matched"]).sum()),
            "n_sources": int(is_source.sum()),
            "n_false": int((~is_source).sum()),
            "n_blends": int(is_blend.sum()),
        },
        "thresholds": {
            "source_log10_delta_chi2": source_threshold,
            "blend_delta_chi2": blend_threshold,
            "source_decision": "scanner is_source" if source_threshold is None else "log10 delta_chi2 > threshold",
            "blend_decision": "scanner is_blend" if blend_threshold is None else "blend_score > threshold",
            "gf_tolerance": tolerance,
        },
        "redshift": _redshift_section(data, single, selected, z_bins, tolerance),
        "detection": _detection_section(data, source_score, selected),
        "blend": _blend_section(data, flagged),
        "classification": _classification_section(data),
        "worst": _worst_cases(data, single, source_score),
    }


def join_results(results: pa.Table, truth: pa.Table) -> dict[str, np.ndarray]:
    """Truth rows in order, each with its result (NaN / False where the result is missing).

    Returns
    -------
    dict of ndarray (n_truth,)
        ``spectrum_id``, ``z_true``, ``z2_true``, ``source_class``, ``is_source``, ``is_blend``,
        ``z_pred``, ``delta_chi2``, ``blend_score``, ``pred_is_source``, ``pred_is_blend``,
        ``matched`` and, when the truth has it, ``line_snr``.

    Raises
    ------
    UserError
        Missing columns or duplicated spectrum ids.
    """
    _require(results, RESULT_COLUMNS, "results table")
    _require(truth, TRUTH_COLUMNS, "truth table")
    result_ids = results.column("spectrum_id").to_pylist()
    truth_ids = truth.column("spectrum_id").to_pylist()
    for name, ids in (("results", result_ids), ("truth", truth_ids)):
        if len(set(ids)) != len(ids):
            raise UserError(
                f"{name} table has {len(ids) - len(set(ids))} duplicated spectrum_id values; keep one row per spectrum"
            )
    row_of = {spectrum_id: row for row, spectrum_id in enumerate(result_ids)}
    index = np.array([row_of.get(spectrum_id, -1) for spectrum_id in truth_ids], dtype=np.int64)
    matched = index >= 0

    def from_results(name: str, missing: float | bool) -> np.ndarray:
        values = _numpy(results.column(name), missing)
        out = np.full(index.size, missing, dtype=values.dtype)
        out[matched] = values[index[matched]]
        return out

    data = {
        "spectrum_id": np.array(truth_ids, dtype=object),
        "z_true": _numpy(truth.column("z"), np.nan),
        "z2_true": _numpy(truth.column("z2"), np.nan),
        "source_class": np.array(truth.column("source_class").to_pylist(), dtype=object),
        "is_source": _numpy(truth.column("is_source"), False),
        "is_blend": _numpy(truth.column("is_blend"), False),
        "z_pred": from_results("z", np.nan),
        "delta_chi2": from_results("delta_chi2", np.nan),
        "blend_score": from_results("blend_score", np.nan),
        "pred_is_source": from_results("is_source", False),
        "pred_is_blend": from_results("is_blend", False),
        "matched": matched,
    }
    if "line_snr" in truth.column_names:
        data["line_snr"] = _numpy(truth.column("line_snr"), np.nan)
    if "p_blend" in results.column_names and results.column("p_blend").null_count < results.num_rows:
        data["blend_score"] = from_results("p_blend", np.nan)
    if "spectype" in results.column_names and "spectype" in truth.column_names:
        predicted = np.array(results.column("spectype").to_pylist() + [None], dtype=object)
        data["spectype_pred"] = predicted[index]  # index −1 (no result) picks the trailing None
        data["spectype_true"] = np.array(truth.column("spectype").to_pylist(), dtype=object)
    return data


def _redshift_section(data: dict, single: np.ndarray, selected: np.ndarray, z_bins, tolerance: float) -> dict:
    z_pred, z_true = data["z_pred"], data["z_true"]

    def summary(mask: np.ndarray) -> dict:
        return redshift_summary(z_pred[mask], z_true[mask], tolerance)

    classes = sorted(set(data["source_class"][single]))
    by_class = {name: summary(single & (data["source_class"] == name)) for name in classes}
    by_z_bin = {
        f"{low:g}-{high:g}": summary(single & (z_true >= low) & (z_true < high))
        for low, high in zip(z_bins[:-1], z_bins[1:])
    }
    section = {
        "overall": summary(single),
        "selected": summary(single & selected),
        "by_class": by_class,
        "by_z_bin": by_z_bin,
        "blends": _blend_redshifts(data, tolerance),
    }
    if "line_snr" in data:
        snr = data["line_snr"]
        section["by_line_snr"] = {
            f"{low:g}-{high:g}": summary(single & (snr >= low) & (snr < high))
            for low, high in zip(DEFAULT_SNR_BINS[:-1], DEFAULT_SNR_BINS[1:])
        }
    return section


def _blend_redshifts(data: dict, tolerance: float) -> dict:
    """For blends: does z match the brighter component, or either one?"""
    blend = data["is_blend"]
    primary = relative_error(data["z_pred"][blend], data["z_true"][blend]) < tolerance
    secondary = relative_error(data["z_pred"][blend], data["z2_true"][blend]) < tolerance
    n = int(blend.sum())
    return {
        "n": n,
        "good_fraction_primary": float(primary.mean()) if n else None,
        "good_fraction_either": float((primary | secondary).mean()) if n else None,
    }


def _detection_section(data: dict, source_score: np.ndarray, selected: np.ndarray) -> dict:
    is_source = data["is_source"]
    curve = threshold_curve(source_score, is_source)
    by_class = {}
    for name in sorted(set(data["source_class"])):
        members = data["source_class"] == name
        by_class[name] = {"n": int(members.sum()), "selected_fraction": float(selected[members].mean())}
    return {
        **confusion(selected, is_source),
        "by_class": by_class,
        "curve": {key: curve[key].tolist() for key in ("threshold", "completeness", "purity", "f1")},
    }


def _blend_section(data: dict, flagged: np.ndarray) -> dict:
    """Blend detection among true sources, as in Bourahma et al. 2026 Sect. 4.4 (false detections excluded)."""
    sources = data["is_source"]
    positive = data["is_blend"][sources]
    scores = data["blend_score"][sources]
    at_threshold = confusion(flagged[sources], positive)
    roc = threshold_curve(scores, positive)
    return {
        "n_blends": int(positive.sum()),
        "n_single": int((~positive).sum()),
        "tpr": at_threshold["completeness"],
        "fpr": at_threshold["fpr"],
        "purity": at_threshold["purity"],
        "tp": at_threshold["tp"],
        "fp": at_threshold["fp"],
        "auc": roc_auc(scores, positive),
        "roc": {"threshold": roc["threshold"].tolist(), "tpr": roc["completeness"].tolist(), "fpr": roc["fpr"].tolist()},
    }


def _classification_section(data: dict) -> dict:
    """Share of true sources whose spectral class (GALAXY, QSO, STAR) is right, overall and per true class."""
    if "spectype_true" not in data:
        return {"accuracy": None, "n": 0, "by_spectype": {}}
    sources = data["is_source"]
    right = data["spectype_pred"][sources] == data["spectype_true"][sources]
    truth = data["spectype_true"][sources]
    return {
        "accuracy": float(right.mean()) if right.size else None,
        "n": int(right.size),
        "by_spectype": {str(c): float(right[truth == c].mean()) for c in sorted(set(truth) - {None})},
    }


def _worst_cases(data: dict, single: np.ndarray, source_score: np.ndarray) -> list[dict]:
    """The single sources with the largest δz (missing predictions first)."""
    dz = relative_error(data["z_pred"], data["z_true"])
    candidates = np.flatnonzero(single)
    order = candidates[np.argsort(-np.nan_to_num(dz[candidates], nan=np.inf), kind="stable")][:N_WORST]
    return [
        {
            "spectrum_id": str(data["spectrum_id"][i]),
            "source_class": str(data["source_class"][i]),
            "z_true": float(data["z_true"][i]),
            "z_pred": _finite_or_none(data["z_pred"][i]),
            "dz": _finite_or_none(dz[i]),
            "log10_delta_chi2": _finite_or_none(source_score[i]),
        }
        for i in order
    ]


def _require(table: pa.Table, columns: tuple[str, ...], name: str) -> None:
    missing = [column for column in columns if column not in table.column_names]
    if missing:
        raise UserError(
            f"{name} lacks column(s) {missing} (has {table.column_names}); it needs {list(columns)}"
        )


def _numpy(column: pa.ChunkedArray, fill: float | bool) -> np.ndarray:
    """Column as numpy with nulls replaced by ``fill``."""
    values = column.fill_null(fill) if column.null_count else column
    dtype = bool if isinstance(fill, bool) else np.float64
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=dtype)


def log10_delta_chi2(values: np.ndarray) -> np.ndarray:
    """log10 of Δχ², shape kept; −∞ for Δχ² ≤ 0 (no minimum), NaN stays NaN (no result)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        no_minimum = np.where(np.isnan(values), np.nan, -np.inf)
        return np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), no_minimum)


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
