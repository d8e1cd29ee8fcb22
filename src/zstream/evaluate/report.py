"""Write an evaluation report: ``report.json`` (stable keys) and ``report.html`` with PNG plots.

When the scored results carry calibrated probabilities (``p_source``, ``p_z_ok``,
``p_blend``, from a reliability model), the report adds their calibration: a
``reliability`` section in the JSON and a reliability diagram; the blend ROC is then
that of ``p_blend`` (``score`` ranks blends by it).
Plots need matplotlib (``pip install 'zstream[plot]'``); without it the JSON and an
HTML page of tables are still written.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import orjson
import pyarrow as pa

from zstream.evaluate.calibrate import reliability_figures
from zstream.evaluate.scoring import join_results

PAPER_FIGURES = {"good_fraction": 0.937, "completeness": 0.959, "purity": 0.960, "blend_auc": 0.87}
"""Headline figures of Bourahma et al. 2026, "MUSE NMF redshifts" (MUSE data), shown next to ours."""

PAPER_COLUMN = "Bourahma et al. 2026 (MUSE)"
"""Header of the paper's column in the report's headline table."""


def headline(report: dict) -> dict:
    """The few numbers quoted everywhere: GF, MAE, completeness, purity, blend AUC/TPR/FPR."""
    overall = report["redshift"]["overall"]
    return {
        "good_fraction": overall["good_fraction"],
        "mae": overall["mae"],
        "catastrophic_rate": overall["catastrophic_rate"],
        "completeness": report["detection"]["completeness"],
        "purity": report["detection"]["purity"],
        "blend_auc": report["blend"]["auc"],
        "blend_tpr": report["blend"]["tpr"],
        "blend_fpr": report["blend"]["fpr"],
    }


def write_report(
    report: dict,
    out_dir: str | Path,
    *,
    results: pa.Table | None = None,
    truth: pa.Table | None = None,
    gallery: Sequence = (),
) -> dict[str, Path]:
    """Write ``report.json``, the PNG plots and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    report : dict
        Output of :func:`zstream.evaluate.score`.
    out_dir : str or Path
        Created if missing.
    results, truth : pyarrow.Table, optional
        The scored tables; needed for the z_pred-vs-z_true and Δz plots.
    gallery : sequence of GalleryItem
        Worst cases to draw (spectrum, best fit, χ²(z)).

    Returns
    -------
    dict of Path
        Every file written, keyed by role (``json``, ``html`` and one per plot).

    Notes
    -----
    ``report.json`` is ``report`` plus, when ``results`` carry probabilities, a
    ``reliability`` key (:func:`zstream.evaluate.calibrate.reliability_figures`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reliability = reliability_figures(results, truth) if results is not None and truth is not None else {}
    if reliability:
        report = {**report, "reliability": reliability}
    written = {"json": out_dir / "report.json"}
    written["json"].write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    try:
        plots = _write_plots(report, out_dir, results, truth, gallery)
        plot_note = ""
    except ImportError:
        plots = {}
        plot_note = "Plots skipped: matplotlib is not installed (pip install 'zstream[plot]')."
    written.update(plots)
    written["html"] = out_dir / "report.html"
    written["html"].write_text(_html(report, plots, plot_note), encoding="utf-8")
    return written


def summary_line(report: dict) -> str:
    """One sentence: what was scored and how the decisions were made (the report's opening line).

    Parameters
    ----------
    report : dict
        Output of :func:`zstream.evaluate.score`.

    Returns
    -------
    str
        E.g. ``"2000 truth spectra: 1700 true sources (200 blends), 300 false detections;
        2000 with a result, 0 missing. Sources: scanner is_source. Blends: blend_score > 0.0205.
        GF tolerance 0.005."``
    """
    counts, thresholds = report["counts"], report["thresholds"]

    def decision(kind: str, value: float | None) -> str:
        rule = thresholds[f"{kind}_decision"]
        return rule if value is None else rule.replace("threshold", f"{value:.4g}")

    source = decision("source", thresholds["source_log10_delta_chi2"])
    blend = decision("blend", thresholds["blend_delta_chi2"])
    return (f"{counts['n_truth']} truth spectra: {counts['n_sources']} true sources ({counts['n_blends']} blends), "
            f"{counts['n_false']} false detections; {counts['n_results_matched']} with a result, "
            f"{counts['n_missing_results']} missing. Sources: {source}. Blends: {blend}. "
            f"GF tolerance {thresholds['gf_tolerance']:g}.")


def _write_plots(report: dict, out_dir: Path, results, truth, gallery) -> dict[str, Path]:
    from zstream.evaluate import plots

    written = {}
    if results is not None and truth is not None:
        data = join_results(results, truth)
        single = data["is_source"] & ~data["is_blend"]
        z_true, z_pred = data["z_true"][single], data["z_pred"][single]
        written["z_scatter"] = plots.z_scatter(z_true, z_pred, out_dir / "z_scatter.png")
        written["dz_histogram"] = plots.dz_histogram((z_pred - z_true) / (1 + z_true), out_dir / "dz_histogram.png")
    detection, blend = report["detection"], report["blend"]
    written["detection"] = plots.detection_curves(
        detection["curve"], report["thresholds"]["source_log10_delta_chi2"], out_dir / "detection.png"
    )
    reliability = report.get("reliability", {})
    ranked_by = "p_blend" if "p_blend" in reliability else "blend_score"  # score() ranks by p_blend when present
    written["blend_roc"] = plots.blend_roc(
        blend["roc"], blend["auc"], (blend["fpr"], blend["tpr"]), out_dir / "blend_roc.png",
        title=f"Blend detection ROC ({ranked_by}, true sources)",
    )
    calibrated = {name: reliability[name] for name in ("p_source", "p_z_ok") if name in reliability}
    if calibrated:
        written["reliability"] = plots.reliability_diagram(calibrated, out_dir / "reliability.png")
    for rank, item in enumerate(gallery):
        written[f"worst_{rank:02d}"] = plots.gallery_item(item, out_dir / f"worst_{rank:02d}.png")
    return written


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(rows: dict[str, dict], columns: Sequence[str], first: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (first, *columns))
    body = "".join(
        "<tr>" + f"<td>{html.escape(name)}</td>" + "".join(f"<td>{_fmt(row.get(c))}</td>" for c in columns) + "</tr>"
        for name, row in rows.items()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(report: dict, plots: dict[str, Path], plot_note: str) -> str:
    figures = headline(report)
    headline_rows = {
        name: {"ours": value, PAPER_COLUMN: PAPER_FIGURES.get(name)} for name, value in figures.items()
    }
    z_columns = ("n", "good_fraction", "mae", "median_dz", "catastrophic_rate", "n_rejected")
    redshift = report["redshift"]
    sections = [
        "<h1>zstream evaluation report</h1>",
        f"<p>{html.escape(summary_line(report))}</p>",
        "<h2>Headline</h2>", _table(headline_rows, ("ours", PAPER_COLUMN), "figure"),
        "<h2>Redshifts (single true sources)</h2>",
        _table({"all": redshift["overall"], "selected as source": redshift["selected"]}, z_columns, "set"),
        "<h3>By class</h3>", _table(redshift["by_class"], z_columns, "class"),
        "<h3>By true redshift</h3>", _table(redshift["by_z_bin"], z_columns, "z bin"),
    ]
    if "by_line_snr" in redshift:
        sections += ["<h3>By brightest-line S/N</h3>", _table(redshift["by_line_snr"], z_columns, "S/N bin")]
    sections += [
        "<h3>Blends</h3>",
        _table({"blends": redshift["blends"]}, ("n", "good_fraction_primary", "good_fraction_either"), "set"),
        "<h2>True vs false sources</h2>",
        _table({"at threshold": report["detection"]}, ("completeness", "purity", "f1", "tp", "fp", "fn", "tn"), ""),
        _table(report["detection"]["by_class"], ("n", "selected_fraction"), "class"),
        "<h2>Blend detection</h2>",
        _table({"at threshold": report["blend"]}, ("auc", "tpr", "fpr", "purity", "n_blends", "n_single"), ""),
    ]
    if "reliability" in report:
        sections += [
            "<h2>Calibrated probabilities</h2>",
            "<p>p_source: real source; p_z_ok: real source with the right redshift; p_blend: blend, among true "
            "sources. Brier baseline: always predicting the prevalence.</p>",
            _table(report["reliability"], ("n", "n_positive", "brier", "brier_baseline", "brier_skill", "log_loss",
                                           "auc", "ece"), "probability"),
        ]
    if plot_note:
        sections.append(f"<p><em>{html.escape(plot_note)}</em></p>")
    sections += [
        f'<h3>{html.escape(key)}</h3><img src="{path.name}" alt="{html.escape(key)}">' for key, path in plots.items()
    ]
    worst = {case["spectrum_id"]: case for case in report["worst"]}
    sections += ["<h2>Worst cases</h2>",
                 _table(worst, ("source_class", "z_true", "z_pred", "dz", "log10_delta_chi2"), "spectrum")]
    style = "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;margin:8px 0}" \
            "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}img{max-width:100%}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>zstream evaluation</title><style>{style}</style>" \
           f"</head><body>{''.join(sections)}</body></html>\n"
