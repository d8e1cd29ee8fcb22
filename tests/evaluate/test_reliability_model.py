"""The reliability model: fitting recovers known relations, calibrates, survives missing columns, round-trips as JSON."""

import json
import pickle

import numpy as np
import pyarrow as pa
import pytest
from evaluate_builders import make_results, make_scanned_population, make_truth, sigmoid

from zstream.errors import UserError
from zstream.evaluate.calibrate import calibration_figures, fit_reliability, reliability_figures
from zstream.redshift.reliability import Feature, ReliabilityModel


@pytest.fixture(scope="module")
def population():
    """A tuning set, the model fitted on it, and an independent test set."""
    tune = make_scanned_population(1000, seed=31)
    return tune, fit_reliability(*tune), make_scanned_population(1000, seed=32)


def test_fit_recovers_a_known_logistic_relation():
    rng = np.random.default_rng(11)
    n = 4000
    log_delta_chi2 = rng.uniform(-3.0, 0.0, n)
    robustness = rng.normal(0.0, 2.0, n)
    logit = 1.5 + 2.0 * (log_delta_chi2 + 1.5) - 0.8 * robustness
    is_source = rng.random(n) < sigmoid(logit)
    is_blend = is_source & (rng.random(n) < 0.2)
    z_true = np.ones(n)
    z_pred = np.where(rng.random(n) < 0.8, z_true, 2.0)
    truth = make_truth(is_source, is_blend, z_true)
    results = make_results(truth.column("spectrum_id").to_pylist(), z_pred, 10.0 ** log_delta_chi2, np.full(n, 0.01),
                           robustness=robustness)
    candidates = (Feature("log10_delta_chi2", "numeric", "delta_chi2", transform="log10", floor=1e-6),
                  Feature("robustness", "numeric", "robustness"))
    model = fit_reliability(results, truth, candidates=candidates, quadratic=False)
    target = model.targets["p_source"]
    slopes = {feature.name: target.coefficients[feature.name] / feature.scale for feature in model.features}
    assert slopes["log10_delta_chi2"] == pytest.approx(2.0, rel=0.1)
    assert slopes["robustness"] == pytest.approx(-0.8, rel=0.1)
    intercept = target.intercept - sum(target.coefficients[f.name] * f.center / f.scale for f in model.features)
    assert intercept == pytest.approx(1.5 + 2.0 * 1.5, rel=0.1)
    error = np.abs(model.probabilities(results)["p_source"] - sigmoid(logit))
    assert np.mean(error) < 0.02 and np.max(error) < 0.1


def test_probabilities_match_scikit_learn_without_it(population):
    (results, truth), model, _ = population
    from sklearn.linear_model import LogisticRegression

    from zstream.evaluate.calibrate import labelled_rows
    from zstream.redshift.reliability import design_matrix

    rows, labels = labelled_rows(results, truth)
    design = design_matrix(model.features, rows)
    strength = model.targets["p_source"].metrics["C"]
    reference = LogisticRegression(C=strength, max_iter=2000).fit(design, labels["p_source"])
    assert np.allclose(model.probabilities(rows)["p_source"], reference.predict_proba(design)[:, 1], atol=1e-6)


def test_json_round_trip_gives_identical_probabilities_and_no_pickle(population, tmp_path):
    (results, _), model, _ = population
    path = model.save(tmp_path / "calibration.json")
    text = path.read_text()
    assert json.loads(text)["format"] == "zstream-reliability"  # plain JSON, readable
    loaded = ReliabilityModel.load(path)
    assert loaded.to_dict() == model.to_dict()
    before, after = model.probabilities(results), loaded.probabilities(results)
    for name in ("p_source", "p_z_ok", "p_blend"):
        assert np.array_equal(before[name], after[name])
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps(model))
    with pytest.raises(UserError, match="not valid JSON"):
        ReliabilityModel.load(pickled)


def test_saved_model_names_its_features_thresholds_and_provenance(population):
    _, model, _ = population
    saved = model.to_dict()
    assert saved["design_columns"][:2] == ["log10_delta_chi2", "robustness"]
    for name in ("candidate_gap", "chi2_per_pixel", "spike_score", "spectype_qso", "robustness_missing",
                 "log10_delta_chi2*robustness", "robustness^2"):
        assert name in saved["design_columns"]
    assert "warn_small_delta_chi2" not in saved["design_columns"]
    for name, target in saved["targets"].items():
        assert 0 < target["threshold"] < 1 and target["threshold_rule"]
        assert target["metrics"]["brier"] < target["metrics"]["brier_baseline"]
    assert saved["provenance"]["n_fitted"] == 1000 and saved["provenance"]["fold_seed"] == 0
    assert saved["provenance"]["skipped_features"]["warn_z_at_edge"].startswith("constant")


def test_decision_thresholds_follow_their_rules(population):
    tune, model, _ = population
    assert model.targets["p_source"].threshold == model.targets["p_z_ok"].threshold == 0.5
    assert model.targets["p_source"].threshold_rule.startswith("more likely than not")
    assert model.targets["p_blend"].threshold_rule.startswith("ROC point closest to")
    pure = fit_reliability(*tune, min_purity=0.99).targets["p_source"]
    assert pure.metrics["at_threshold"]["purity"] >= 0.99 and pure.threshold != 0.5
    assert "purity ≥ 0.99" in pure.threshold_rule


def test_calibrated_on_an_independent_set(population):
    _, model, (results, truth) = population
    figures = reliability_figures(model.apply(results), truth)
    assert set(figures) == {"p_source", "p_z_ok", "p_blend"}
    for name, entry in figures.items():
        assert entry["brier"] < 0.7 * entry["brier_baseline"], name
        assert entry["ece"] < 0.05, name
    assert figures["p_blend"]["n"] == int(np.sum(truth.column("is_source").to_numpy()))


def test_apply_sets_decisions_from_thresholds_and_zero_without_redshift(population):
    (results, _), model, _ = population
    results = results.set_column(1, "z", pa.array([None] + results.column("z").to_pylist()[1:], pa.float64()))
    applied = model.apply(results)
    assert applied.column_names[:len(results.column_names)] == results.column_names
    p = {name: applied.column(name).to_numpy() for name in ("p_source", "p_z_ok", "p_blend")}
    assert [p[name][0] for name in p] == [0.0, 0.0, 0.0]
    assert applied.column("is_source").to_pylist() == list(p["p_source"] >= model.targets["p_source"].threshold)
    assert applied.column("is_blend").to_pylist() == list(p["p_blend"] >= model.targets["p_blend"].threshold)
    assert model.apply(applied).equals(applied)  # existing probability columns are replaced, not duplicated


def test_missing_and_null_columns_at_apply_are_imputed(population):
    (results, _), model, _ = population
    fill = {feature.name: feature for feature in model.features}
    without = results.drop_columns(["chi2_alt", "spike_score", "spectype"])
    p_without = model.probabilities(without)
    assert all(np.all(np.isfinite(values)) for values in p_without.values())
    index = results.column_names.index("chi2_alt")
    nulls = results.set_column(index, "chi2_alt", pa.nulls(results.num_rows, pa.float64()))
    design_with_nulls = model.probabilities(nulls)["p_source"]
    assert np.array_equal(design_with_nulls, model.probabilities(results.drop_columns(["chi2_alt"]))["p_source"])
    assert fill["candidate_gap"].indicator  # 10 % of chi2_alt were null in the tuning set
    untyped = without.append_column("spike_score", pa.nulls(results.num_rows)).append_column(
        "spectype", pa.nulls(results.num_rows))  # all-null columns of Arrow's null type, as JSON input gives
    assert np.array_equal(model.probabilities(untyped)["p_source"], p_without["p_source"])


def test_fit_skips_absent_or_constant_columns_and_still_calibrates():
    results, truth = make_scanned_population(400, seed=41)
    today = results.drop_columns(["chi2_alt", "spike_score", "spectype"])
    model = fit_reliability(today, truth)
    skipped = model.provenance["skipped_features"]
    for name in ("candidate_gap", "spike_score"):
        assert skipped[name] == "no values in the tuning results"
    for name in ("spectype_qso", "spectype_star"):  # an absent category is never that level
        assert skipped[name] == "constant (0) in the tuning results"
    assert "candidate_gap" not in model.design_names
    assert model.targets["p_source"].metrics["brier"] < model.targets["p_source"].metrics["brier_baseline"]


def test_fit_needs_both_outcomes_of_every_target():
    results, truth = make_scanned_population(300, seed=42)
    no_blends = make_truth(truth.column("is_source").to_numpy(), np.zeros(300, bool),
                           np.nan_to_num(truth.column("z").to_numpy(zero_copy_only=False), nan=1.0))
    with pytest.raises(UserError, match="p_blend"):
        fit_reliability(results, no_blends)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format="something"), "not a zstream calibration file"),
    (lambda d: d.update(format_version=99), "version 99"),
    (lambda d: d["features"][0].update(kind="tree"), "kind 'tree'"),
    (lambda d: d["targets"]["p_source"]["coefficients"].update(unknown=1.0), "unknown features"),
    (lambda d: d["targets"].pop("p_blend"), "needs targets"),
])
def test_load_refuses_a_broken_file_in_one_line(population, tmp_path, edit, message):
    _, model, _ = population
    data = model.to_dict()
    edit(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=message) as error:
        ReliabilityModel.load(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_calibration_figures_of_known_probabilities():
    rng = np.random.default_rng(3)
    p = rng.random(20000)
    outcome = rng.random(20000) < p
    figures = calibration_figures(p, outcome)
    assert figures["brier"] == pytest.approx(1 / 6, abs=0.01)  # E[p(1-p)] for uniform p
    assert figures["brier_baseline"] == pytest.approx(0.25, abs=0.01)
    assert figures["ece"] < 0.02
    assert np.allclose(figures["curve"]["observed"], figures["curve"]["predicted"], atol=0.04)
    assert sum(figures["curve"]["count"]) == 20000


def test_values_beyond_the_tuning_range_score_as_its_edge(population):
    """The quadratic logits are not extrapolated: a feature past its tuning range is clipped to it."""
    (results, _), model, _ = population
    spike = next(feature for feature in model.features if feature.name == "spike_score")
    edge_row, beyond_row = results.slice(0, 1), results.slice(0, 1)
    column = results.schema.get_field_index("spike_score")
    edge_row = edge_row.set_column(column, "spike_score", pa.array([np.sinh(spike.high)]))
    beyond_row = beyond_row.set_column(column, "spike_score", pa.array([np.sinh(spike.high) * 1e6]))
    at_edge, beyond = model.probabilities(edge_row), model.probabilities(beyond_row)
    for name in ("p_source", "p_z_ok", "p_blend"):
        assert beyond[name][0] == pytest.approx(at_edge[name][0], rel=1e-9)
    assert all(f.low <= f.high for f in model.features if f.kind in ("numeric", "product"))


def test_blend_probability_ignores_the_artefact_scores(population):
    """spike_score and edge_score describe false detections; p_blend, fitted on true sources, leaves them out."""
    from zstream.evaluate.calibrate import ARTEFACT_FEATURES

    (results, truth), model, _ = population
    blend_terms = model.targets["p_blend"].coefficients
    assert not [name for name in blend_terms if any(artefact in name for artefact in ARTEFACT_FEATURES)]
    assert any("spike_score" in name for name in model.targets["p_source"].coefficients)
