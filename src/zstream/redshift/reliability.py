"""Calibrated reliability of a redshift result: ``p_source``, ``p_z_ok`` and ``p_blend``.

A :class:`ReliabilityModel` is three logistic regressions on a few transformed
features of a result row (Δχ², robustness, candidate gap, χ²/dof, spike score,
blend score, warning bits, spectral class), fitted on a labelled tuning set by
:func:`zstream.evaluate.calibrate.fit_reliability` (``zstream calibrate``). It is
stored as readable JSON, never a pickle, and applying it needs only numpy:

>>> model = ReliabilityModel.load("calibration.json")   # doctest: +SKIP
>>> results = model.apply(results)                      # doctest: +SKIP

The three probabilities (the definitions the tuning labels use):

* ``p_source`` — the spectrum is a real source (not a false detection);
* ``p_z_ok`` — it is a real source *and* its redshift is right, |Δz| < 0.005 (1 + z)
  (the GF criterion of ``zstream.evaluate``), so ``p_z_ok`` is the chance that the
  catalogue entry is correct;
* ``p_blend`` — a real source is a blend of two (conditional on being a source,
  as the blend ROC of Bourahma et al. 2026 is measured; ``p_source · p_blend`` is the
  unconditional probability).

A row without a redshift (``z`` null: nothing was fitted) gets probability 0 for
all three. A feature whose input is null, non-finite or absent from the table
takes its tuning-set median (and sets its missing indicator when the model has one).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from zstream.errors import UserError

FORMAT = "zstream-reliability"
"""Value of the ``format`` key of a calibration file."""

FORMAT_VERSION = 1
"""Version of the calibration file layout; :meth:`ReliabilityModel.load` refuses other versions."""

TARGETS = ("p_source", "p_z_ok", "p_blend")
"""The probabilities a model gives, in the order of the output columns."""

DECISIONS = {"p_source": "is_source", "p_blend": "is_blend"}
"""Boolean result column set from each probability: ``column = p ≥ threshold``."""

KINDS = ("numeric", "bit", "category", "product")
TRANSFORMS = ("identity", "log10", "asinh")


@dataclass(frozen=True)
class Feature:
    """One input of the model, computed from result columns (or, for a product, from earlier features).

    Attributes
    ----------
    name : str
        Name of the design column (and, with ``indicator``, of ``<name>_missing``).
    kind : {"numeric", "bit", "category", "product"}
        ``numeric``: a transformed value; ``bit``: 1 where ``column & value``;
        ``category``: 1 where ``column == value``; ``product``: the product of the
        standardised values of two earlier numeric features (a square when they are the same).
    column : str, optional
        Result column read (all kinds but ``product``).
    value : int or str, optional
        Bit mask (``bit``) or level (``category``).
    minus : str, optional
        ``numeric``: column subtracted from ``column`` first (e.g. ``chi2_alt − chi2_min``).
    denominator : str, optional
        ``numeric``: then divide by ``denominator_offset + denominator`` (NaN where that is
        not positive), e.g. ``n_pixels_used`` for a value per pixel, or ``z`` with offset 1
        for a redshift error in units of (1 + z).
    denominator_offset : float
    transform : {"identity", "log10", "asinh"}
        ``numeric``: applied last; ``log10`` clips at ``floor`` first.
    floor : float, optional
        Lower clip of ``log10``.
    factors : tuple of str, optional
        ``product``: names of its two numeric features.
    fill : float
        ``numeric``: transformed value imputed where the input is missing (the tuning-set median).
    center, scale : float
        Standardisation of a ``numeric`` or ``product`` value: ``(x − center) / scale``.
    indicator : bool
        ``numeric``: also a 0/1 design column ``<name>_missing``.
    low, high : float, optional
        ``numeric`` and ``product``: the range of the value on the tuning set; values outside it
        are clipped to it, so the quadratic logits are never extrapolated (a source brighter than
        any tuning spectrum is scored as the brightest ones were).
    """

    name: str
    kind: str
    column: str | None = None
    value: int | str | None = None
    minus: str | None = None
    denominator: str | None = None
    denominator_offset: float = 0.0
    transform: str = "identity"
    floor: float | None = None
    factors: tuple[str, ...] | None = None
    fill: float = 0.0
    center: float = 0.0
    scale: float = 1.0
    indicator: bool = False
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        problem = None
        if self.kind not in KINDS:
            problem = f"kind {self.kind!r} is not one of {KINDS}"
        elif self.transform not in TRANSFORMS:
            problem = f"transform {self.transform!r} is not one of {TRANSFORMS}"
        elif (self.kind == "product") != (self.column is None):
            problem = "a product has factors and no column; every other kind reads a column"
        elif self.kind in ("bit", "category") and self.value is None:
            problem = f"a {self.kind} feature needs a value"
        elif self.kind == "product" and (self.factors is None or len(self.factors) != 2):
            problem = "a product needs two factors"
        elif self.transform == "log10" and not (self.floor is not None and self.floor > 0):
            problem = "log10 needs a positive floor"
        elif not (math.isfinite(self.fill) and math.isfinite(self.center) and math.isfinite(self.scale)
                  and self.scale > 0):
            problem = "fill, center and scale must be finite, scale > 0"
        if problem:
            raise UserError(f"reliability feature {self.name!r}: {problem}")
        if self.factors is not None:
            object.__setattr__(self, "factors", tuple(self.factors))  # a JSON list reads back as a tuple

    @property
    def design_names(self) -> tuple[str, ...]:
        """Names of the design columns this feature yields."""
        return (self.name, f"{self.name}_missing") if self.indicator else (self.name,)

    def raw(self, table: pa.Table, earlier: dict[str, np.ndarray]) -> np.ndarray:
        """Value per row before imputation and standardisation.

        Parameters
        ----------
        table : pyarrow.Table
            Result rows; an absent column reads as all-null.
        earlier : dict of str to ndarray (n_rows,)
            Design columns of the features before this one (what a ``product`` multiplies).

        Returns
        -------
        ndarray (n_rows,) of float64
            Transformed value, NaN where missing (``numeric``); 0/1 (``bit``, ``category``);
            the product of the factors' design columns (``product``).
        """
        if self.kind == "product":
            first, second = self.factors
            return earlier[first] * earlier[second]
        if self.kind == "bit":
            bits = np.nan_to_num(_floats(table, self.column), nan=0.0).astype(np.int64)
            return ((bits & int(self.value)) != 0).astype(np.float64)
        if self.kind == "category":
            if self.column not in table.column_names or pa.types.is_null(table.column(self.column).type):
                return np.zeros(table.num_rows)
            equal = pc.fill_null(pc.equal(table.column(self.column), pa.scalar(self.value)), False)
            return np.asarray(equal.to_numpy(zero_copy_only=False), dtype=np.float64)
        x = _floats(table, self.column)
        if self.minus is not None:
            x = x - _floats(table, self.minus)
        if self.denominator is not None:
            below = self.denominator_offset + _floats(table, self.denominator)
            x = np.divide(x, below, out=np.full_like(x, np.nan), where=below > 0)
        with np.errstate(invalid="ignore"):
            if self.transform == "log10":
                x = np.log10(np.fmax(x, self.floor), where=~np.isnan(x), out=np.full_like(x, np.nan))
            elif self.transform == "asinh":
                x = np.arcsinh(x)
        return np.where(np.isfinite(x), x, np.nan)

    def design(self, raw: np.ndarray) -> np.ndarray:
        """The design columns from :meth:`raw`: imputed and standardised value, then the indicator.

        Returns
        -------
        ndarray (n_rows, len(design_names)) of float64
        """
        if self.kind in ("bit", "category"):
            return raw[:, None]
        missing = np.isnan(raw)
        clipped = np.clip(raw, -np.inf if self.low is None else self.low, np.inf if self.high is None else self.high)
        value = (np.where(missing, self.fill, clipped) - self.center) / self.scale
        return np.column_stack([value, missing.astype(np.float64)]) if self.indicator else value[:, None]


@dataclass(frozen=True)
class Target:
    """One calibrated probability: a logistic regression on the design columns, and its decision threshold.

    Attributes
    ----------
    name : str
        ``p_source``, ``p_z_ok`` or ``p_blend``.
    intercept : float
    coefficients : dict of str to float
        Per design column (standardised units); a column not listed has coefficient 0.
    threshold : float
        Decision ``p ≥ threshold`` (``is_source`` / ``is_blend``; advisory for ``p_z_ok``).
    threshold_rule : str
        How ``threshold`` was chosen.
    label : str
        What the tuning label meant and which rows it was fitted on.
    metrics : dict
        Cross-validated figures on the tuning set (Brier score and its baseline, log loss, AUC, ...).
    """

    name: str
    intercept: float
    coefficients: dict[str, float]
    threshold: float
    threshold_rule: str = ""
    label: str = ""
    metrics: dict = field(default_factory=dict)

    def probability(self, design: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        """σ(intercept + design · coefficients) per row; ``design`` is ``(n_rows, len(names))``."""
        coefficients = np.array([self.coefficients.get(name, 0.0) for name in names], dtype=np.float64)
        return _sigmoid(self.intercept + design @ coefficients)


@dataclass(frozen=True)
class ReliabilityModel:
    """Features, the three calibrated targets and where they came from.

    Attributes
    ----------
    features : tuple of Feature
    targets : dict of str to Target
        Keyed by :data:`TARGETS` names (all three).
    provenance : dict
        Tuning set, seeds, folds, library versions (JSON values only).
    """

    features: tuple[Feature, ...]
    targets: dict[str, Target]
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.targets) != set(TARGETS):
            raise UserError(f"reliability model needs targets {list(TARGETS)}, got {sorted(self.targets)}")
        names = self.design_names
        if len(set(names)) != len(names):
            raise UserError(f"reliability model has duplicated feature names: {list(names)}")
        numeric = set()
        for feature in self.features:
            if feature.kind == "product" and not set(feature.factors) <= numeric:
                raise UserError(f"reliability feature {feature.name!r}: factors {list(feature.factors)} must be "
                                "numeric features listed before it")
            if feature.kind == "numeric":
                numeric.add(feature.name)
        for target in self.targets.values():
            unknown = sorted(set(target.coefficients) - set(names))
            if unknown:
                raise UserError(f"reliability target {target.name}: coefficients for unknown features {unknown}")

    @property
    def design_names(self) -> tuple[str, ...]:
        """Names of the design columns, in order."""
        return design_names(self.features)

    def probabilities(self, results: pa.Table) -> dict[str, np.ndarray]:
        """``p_source``, ``p_z_ok``, ``p_blend`` per row (0 where ``z`` is null).

        Parameters
        ----------
        results : pyarrow.Table
            Result rows (``RESULT_SCHEMA``; absent or null feature columns are imputed).

        Returns
        -------
        dict of str to ndarray (n_rows,) of float64
        """
        design = design_matrix(self.features, results)
        fitted = has_redshift(results)
        return {name: np.where(fitted, self.targets[name].probability(design, self.design_names), 0.0)
                for name in TARGETS}

    def apply(self, results: pa.Table) -> pa.Table:
        """Fill ``p_source``, ``p_z_ok``, ``p_blend`` and set ``is_source`` / ``is_blend`` from them.

        Parameters
        ----------
        results : pyarrow.Table
            Result rows; probability columns are replaced in place (keeping their field) or
            appended as float64; ``is_source`` and ``is_blend`` are replaced or appended.

        Returns
        -------
        pyarrow.Table
            Same rows, same order.
        """
        probabilities = self.probabilities(results)
        columns = {name: pa.array(values, pa.float64()) for name, values in probabilities.items()}
        for name, decision in DECISIONS.items():
            columns[decision] = pa.array(probabilities[name] >= self.targets[name].threshold, pa.bool_())
        for name, values in columns.items():
            if name in results.column_names:
                index = results.column_names.index(name)
                kept = results.schema.field(index)
                results = results.set_column(index, kept, values.cast(kept.type))
            else:
                results = results.append_column(name, values)
        return results

    def to_dict(self) -> dict:
        """JSON-ready form (the calibration file)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "features": [asdict(feature) for feature in self.features],
            "design_columns": list(self.design_names),
            "targets": {name: asdict(self.targets[name]) for name in TARGETS},
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ReliabilityModel:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        UserError
            Not a calibration file, another format version, or inconsistent content.
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"not a zstream calibration file (format is not {FORMAT!r}); "
                            "write one with zstream calibrate")
        if data.get("format_version") != FORMAT_VERSION:
            raise UserError(f"calibration file version {data.get('format_version')!r} is not {FORMAT_VERSION}; "
                            "recalibrate with this zstream (zstream calibrate)")
        try:
            features = tuple(Feature(**entry) for entry in data["features"])
            targets = {name: Target(**entry) for name, entry in data["targets"].items()}
            model = cls(features, targets, dict(data.get("provenance", {})))
        except (KeyError, TypeError) as error:
            raise UserError(f"calibration file is incomplete or has unknown keys ({error}); recalibrate") from None
        if list(model.design_names) != list(data.get("design_columns", model.design_names)):
            raise UserError("calibration file: design_columns do not match its features; recalibrate")
        return model

    def save(self, path: str | Path) -> Path:
        """Write the model as indented JSON (parent folders created).

        Returns
        -------
        Path
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReliabilityModel:
        """Read a calibration file written by :meth:`save` (``zstream calibrate``).

        Raises
        ------
        UserError
            Missing file, not JSON, or not a valid calibration file.
        """
        path = Path(path)
        if not path.is_file():
            raise UserError(f"calibration file {path}: no such file; write one with zstream calibrate")
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as error:
            raise UserError(f"calibration file {path}: not valid JSON ({error})") from None
        try:
            return cls.from_dict(data)
        except UserError as error:
            raise UserError(f"calibration file {path}: {error}") from None


def design_names(features: tuple[Feature, ...]) -> tuple[str, ...]:
    """Names of the design columns of ``features``, in order."""
    return tuple(name for feature in features for name in feature.design_names)


def design_matrix(features: tuple[Feature, ...], results: pa.Table) -> np.ndarray:
    """Design matrix ``(n_rows, len(design_names(features)))`` of ``results``."""
    columns: dict[str, np.ndarray] = {}
    for feature in features:
        columns.update(zip(feature.design_names, feature.design(feature.raw(results, columns)).T))
    return np.column_stack(list(columns.values())) if columns else np.zeros((results.num_rows, 0))


def has_redshift(results: pa.Table) -> np.ndarray:
    """True per row where ``z`` is not null (a fit was made); shape ``(n_rows,)``."""
    return ~np.isnan(_floats(results, "z"))


def _floats(table: pa.Table, name: str) -> np.ndarray:
    """Column as float64 with NaN for nulls; all-NaN when the table lacks it or it has only nulls (null type)."""
    if name not in table.column_names or pa.types.is_null(table.column(name).type):
        return np.full(table.num_rows, np.nan)
    column = table.column(name)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise UserError(f"result column {name!r} has type {column.type}; the reliability model needs numbers")
    return np.asarray(column.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow warnings for large |x|."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))
