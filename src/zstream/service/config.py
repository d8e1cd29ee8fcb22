"""Settings of ``zstream serve``, declared once.

Each field of :class:`ServiceConfig` is one setting: its name is the TOML key, its
flag is ``--name-with-dashes`` and its environment variable ``ZSTREAM_NAME_UPPER``;
its default, help text, group and secrecy live in the field metadata. Everything
else (argparse flags, the env reader, the TOML reader, the Markdown reference
table, the Kafka client options) is derived from these fields, so a setting is
added in exactly one place. Precedence: flags > environment > TOML file > default.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zstream.errors import UserError
from zstream.service.settings import (
    ANY_PATH, AT_LEAST_ONE, HOST_PORTS, NON_EMPTY, NOT_NEGATIVE, PORT, POSITIVE, SHARE, TOPIC_NAME, Allowed, Matches,
    OneOf, Range,
)

if TYPE_CHECKING:
    from zstream.redshift import ScanConfig

ENV_PREFIX = "ZSTREAM_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _setting(default: Any, help: str, *, group: str, allowed: Allowed | None, secret: bool = False) -> Any:
    """One declared setting; ``allowed`` is None only for booleans (their type is the choice)."""
    return field(default=default, metadata={"help": help, "group": group, "allowed": allowed, "secret": secret})


@dataclass(frozen=True)
class ServiceConfig:
    """All settings of one service replica (see the module docstring for where they come from)."""

    # Kafka connection and topics
    bootstrap_servers: str = _setting("localhost:9092", "Kafka bootstrap servers, comma-separated host:port", group="kafka", allowed=HOST_PORTS)
    input_topic: str = _setting("spectra", "topic of incoming spectrum records", group="kafka", allowed=TOPIC_NAME)
    output_topic: str = _setting("zstream.results", "topic that receives one result per spectrum", group="kafka", allowed=TOPIC_NAME)
    dlq_topic: str = _setting("zstream.dlq", "dead-letter topic for rejected messages", group="kafka", allowed=TOPIC_NAME)
    refit_lease_topic: str = _setting(
        "zstream.refit-lease", "one-partition topic whose holder in group <group_id>.refit-lease is the refit leader "
        "(never written to)", group="kafka", allowed=TOPIC_NAME
    )
    basis_topic: str = _setting("zstream.basis", "compacted topic carrying promoted bases", group="kafka", allowed=TOPIC_NAME)
    group_id: str = _setting("zstream", "consumer group shared by all replicas", group="kafka", allowed=TOPIC_NAME)
    auto_offset_reset: str = _setting("earliest", "where a new consumer group starts: earliest or latest", group="kafka", allowed=OneOf(("earliest", "latest")))
    session_timeout_ms: int = _setting(10000, "consumer-group session timeout", group="kafka", allowed=Range(1000, 1_800_000))
    heartbeat_interval_ms: int = _setting(1000, "consumer-group heartbeat interval", group="kafka", allowed=AT_LEAST_ONE)
    create_topics: bool = _setting(
        True, "create missing topics at startup (basis topic compacted)", group="kafka", allowed=None
    )
    topic_partitions: int = _setting(4, "partitions of topics created at startup", group="kafka", allowed=Range(1, 10_000))
    max_message_bytes: int = _setting(
        8_000_000, "largest input message accepted (checked before decoding); also the producer request limit", group="kafka", allowed=Range(1024, 2**31 - 1)
    )
    broker_timeout_ms: int = _setting(
        30000, "longest wait for one broker operation (delivering a batch's results, committing its offsets) "
        "before it counts as failed", group="kafka", allowed=AT_LEAST_ONE
    )
    broker_retries: int = _setting(
        8, "failed broker operations in a row retried before the replica exits non-zero, leaving the batch "
        "uncommitted for the next owner (a replica that lost the broker counts each poll)", group="kafka", allowed=NOT_NEGATIVE
    )
    retry_backoff_ms: int = _setting(
        500, "wait before the first retry of a failed broker operation; doubles with each further failure",
        group="kafka", allowed=NOT_NEGATIVE
    )
    retry_backoff_max_ms: int = _setting(30000, "longest wait between two retries", group="kafka", allowed=NOT_NEGATIVE)
    # Kafka security, passed through to kafka-python unchanged
    security_protocol: str = _setting("PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", group="security", allowed=OneOf(("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")))
    sasl_mechanism: str | None = _setting(None, "SASL mechanism, e.g. PLAIN or SCRAM-SHA-512", group="security", allowed=OneOf(("PLAIN", "GSSAPI", "OAUTHBEARER", "SCRAM-SHA-256", "SCRAM-SHA-512")))
    sasl_plain_username: str | None = _setting(None, "SASL username", group="security", allowed=NON_EMPTY)
    sasl_plain_password: str | None = _setting(None, "SASL password (secret: never logged)", group="security", allowed=NON_EMPTY, secret=True)
    ssl_cafile: Path | None = _setting(None, "CA certificate file for TLS", group="security", allowed=ANY_PATH)
    ssl_certfile: Path | None = _setting(None, "client certificate file for TLS", group="security", allowed=ANY_PATH)
    ssl_keyfile: Path | None = _setting(None, "client private key file for TLS", group="security", allowed=ANY_PATH)
    # Processing
    basis: Path | None = _setting(
        None, "initial basis file; used when the basis topic holds no basis yet (then published to it)", group="processing", allowed=ANY_PATH
    )
    calibration: Path | None = _setting(
        None, "reliability model from 'zstream calibrate' (.json): p_source, p_z_ok, p_blend and the decisions",
        group="processing", allowed=ANY_PATH,
    )
    thresholds: Path | None = _setting(
        None, "TOML file with a [thresholds] table (older 'zstream calibrate --out x.toml'); scanner defaults otherwise",
        group="processing", allowed=ANY_PATH,
    )
    z_min: float = _setting(0.0, "lowest trial redshift", group="processing", allowed=NOT_NEGATIVE)
    z_max: float = _setting(6.7, "highest trial redshift", group="processing", allowed=POSITIVE)
    z_step: float = _setting(0.0005, "trial redshift step", group="processing", allowed=Range(0, 1, open_low=True))
    batch_size: int = _setting(64, "most spectra scanned together", group="processing", allowed=Range(1, 100_000))
    max_wait_ms: int = _setting(200, "longest wait for a batch to fill before scanning what has arrived", group="processing", allowed=Range(1, 600_000))
    device: str = _setting("auto", "torch device: auto, cpu, cuda or cuda:N", group="processing", allowed=Matches(r"auto|cpu|cuda(:\d+)?", "auto, cpu, cuda or cuda:N"))
    # Archive
    archive: Path | None = _setting(
        None, "directory of the partitioned Parquet archive of confident spectra (refits need it)", group="archive", allowed=ANY_PATH
    )
    archive_retention_days: float = _setting(30.0, "archive partitions older than this are deleted", group="archive", allowed=POSITIVE)
    archive_max_spectra: int = _setting(
        1_000_000, "upper bound on archived spectra; oldest partitions go first", group="archive", allowed=AT_LEAST_ONE
    )
    # Refit
    refit_enabled: bool = _setting(True, "run the background refit worker (needs --archive)", group="refit", allowed=None)
    refit_every_spectra: int = _setting(5000, "refit after this many new confident spectra", group="refit", allowed=AT_LEAST_ONE)
    refit_every_minutes: float = _setting(60.0, "refit at least this often when new spectra arrived", group="refit", allowed=POSITIVE)
    refit_recent: int = _setting(2000, "most recent archived spectra in the training set", group="refit", allowed=AT_LEAST_ONE)
    refit_reservoir: int = _setting(2000, "reservoir sample of older archived spectra added to the training set", group="refit", allowed=NOT_NEGATIVE)
    refit_holdout_fraction: float = _setting(
        0.2, "share of the recent window held out for the shadow evaluation", group="refit", allowed=SHARE
    )
    refit_margin: float = _setting(
        0.01, "relative improvement of the held-out chi-square needed to promote a candidate", group="refit", allowed=Range(0, 1, open_high=True)
    )
    refit_min_p_z_ok: float = _setting(
        0.5, "refits train only on live results with p_z_ok and p_source at least this (results without a calibration: "
        "the Δχ² warnings of the archive's confidence cut)", group="refit", allowed=Range(0, 1)
    )
    refit_anchor_sigmas: float = _setting(
        2.0, "promotion gate: largest allowed drop of the anchor-set good fraction, in binomial standard errors",
        group="refit", allowed=NOT_NEGATIVE
    )
    refit_anchor_max: int = _setting(300, "most anchor spectra (known z) scanned by the promotion gate", group="refit",
                                     allowed=AT_LEAST_ONE)
    refit_max_flip_share: float = _setting(
        0.02, "promotion gate: largest share of recent confident live results whose z the candidate would move by more "
        "than 0.005 (1+z)", group="refit", allowed=Range(0, 1)
    )
    refit_live_window: int = _setting(200, "most recent archived live results the promotion gate rescans",
                                      group="refit", allowed=NOT_NEGATIVE)
    refit_max_iter: int = _setting(100, "Nearly-NMF iterations of a warm-started refit", group="refit", allowed=AT_LEAST_ONE)
    # Observability
    metrics_host: str = _setting("0.0.0.0", "bind address of the /metrics, /healthz and /readyz server", group="observability", allowed=NON_EMPTY)
    metrics_port: int = _setting(9108, "port of the metrics/health server (0 = pick a free port)", group="observability", allowed=PORT)
    liveness_timeout_s: float = _setting(
        120.0, "/healthz answers 503 when the consume loop made no progress for this long; keep it above the "
        "longest batch scan plus broker_timeout_ms", group="observability", allowed=POSITIVE
    )
    log_level: str = _setting("INFO", "log level: DEBUG, INFO, WARNING or ERROR", group="observability", allowed=OneOf(("DEBUG", "INFO", "WARNING", "ERROR"), any_case=True))

    def __post_init__(self) -> None:
        for item in settings():
            _check(item, getattr(self, item.name), "setting")
        _check_together(self)

    def scan_config(self) -> "ScanConfig":
        """The scanner settings these service settings describe."""
        from zstream.redshift import ScanConfig  # keeps reading settings free of torch
        from zstream.redshift.reliability import ReliabilityModel

        settings = {"z_min": self.z_min, "z_max": self.z_max, "z_step": self.z_step}
        if self.calibration:
            settings["reliability"] = ReliabilityModel.load(self.calibration)
        return ScanConfig.from_toml(self.thresholds, **settings) if self.thresholds else ScanConfig(**settings)

    def redacted(self) -> dict[str, Any]:
        """Settings as a plain dict with secrets replaced by ``***``, safe to log."""
        return {
            item.name: ("***" if item.metadata["secret"] and getattr(self, item.name) else _plain(getattr(self, item.name)))
            for item in dataclasses.fields(self)
        }


def settings() -> tuple[dataclasses.Field, ...]:
    """The declared settings, in declaration order."""
    return dataclasses.fields(ServiceConfig)


def names_in_group(group: str) -> list[str]:
    """Names of the settings of one group (``kafka``, ``security``, ``processing``…)."""
    return [item.name for item in settings() if item.metadata["group"] == group]


def flag_of(name: str) -> str:
    """Command-line flag of setting ``name``."""
    return "--" + name.replace("_", "-")


def env_of(name: str) -> str:
    """Environment variable of setting ``name``."""
    return ENV_PREFIX + name.upper()


def _base_type(item: dataclasses.Field) -> type:
    """The non-None type of a setting (``Path | None`` → ``Path``)."""
    hint = typing.get_type_hints(ServiceConfig)[item.name]
    if isinstance(hint, types.UnionType):
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def _convert(item: dataclasses.Field, value: Any, source: str) -> Any:
    """Coerce ``value`` (from a TOML file, env var or flag) to the setting's type, then check it is allowed."""
    kind = _base_type(item)
    if item.default is None and value == "":
        return None  # an empty variable or flag unsets an optional setting
    try:
        converted = _coerce(kind, value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{source}: setting {item.name!r} expects {allowed_values(item)}, got {value!r}") from None
    return _check(item, converted, source)


def _coerce(kind: type, value: Any) -> Any:
    """``value`` as ``kind``: text is parsed, a TOML value must already have the right type."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ValueError(value)
    if isinstance(value, bool) or (kind is int and isinstance(value, float)) or (
        kind in (str, Path) and not isinstance(value, str)
    ):
        raise ValueError(value)
    return kind(value)


def allowed_values(item: dataclasses.Field) -> str:
    """The setting's type and allowed values in words, e.g. ``int ≥ 1`` or ``str, one of earliest, latest``."""
    kind = _base_type(item)
    if kind is bool:
        return "bool (true or false)"
    allowed = item.metadata["allowed"]
    return f"{kind.__name__} {allowed.describe()}" if isinstance(allowed, Range) else f"{kind.__name__}, {allowed.describe()}"


def _check(item: dataclasses.Field, value: Any, source: str) -> Any:
    """``value`` when the setting allows it; a one-line UserError naming setting, source and allowed values."""
    allowed = item.metadata["allowed"]
    if value is None and item.default is None:
        return value
    kind = _base_type(item)
    well_typed = kind is bool if isinstance(value, bool) else isinstance(value, (int, float) if kind is float else kind)
    if not well_typed or (allowed is not None and not allowed.allows(str(value) if kind is Path else value)):
        raise UserError(f"{source}: setting {item.name!r} expects {allowed_values(item)}, got {_plain(value)!r}")
    return value


def _check_together(config: ServiceConfig) -> None:
    """Settings that are only valid relative to each other."""
    pairs = [("z_min", "z_max", "below"), ("heartbeat_interval_ms", "session_timeout_ms", "below"),
             ("retry_backoff_ms", "retry_backoff_max_ms", "at most")]
    for low, high, relation in pairs:
        a, b = getattr(config, low), getattr(config, high)
        if not (a < b if relation == "below" else a <= b):
            raise UserError(f"settings {low!r} ({a}) and {high!r} ({b}): {low} must be {relation} {high}")


def add_arguments(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """Add one flag per setting to ``parser`` (default ``None`` = not given on the command line).

    Parameters
    ----------
    parser : argparse.ArgumentParser
    names : iterable of str, optional
        Only these settings (commands that need a few of them, e.g. replay); all by default.
    """
    wanted = None if names is None else set(names)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for item in settings():
        if wanted is not None and item.name not in wanted:
            continue
        group_name = item.metadata["group"]
        group = groups.get(group_name) or groups.setdefault(group_name, parser.add_argument_group(f"{group_name} settings"))
        kind = _base_type(item)
        help_text = f"{item.metadata['help']} (env {env_of(item.name)}; default {_plain(item.default)!r})"
        if kind is bool:
            group.add_argument(flag_of(item.name), dest=item.name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            group.add_argument(flag_of(item.name), dest=item.name, default=None, metavar=item.name.upper(),
                               help=help_text)
    parser.add_argument("--config", type=Path, default=None, metavar="TOML",
                        help="TOML file of settings (keys as in the reference table; flags and env override it)")


def read_toml(path: Path) -> dict[str, Any]:
    """Settings from a TOML file: top-level keys, or the keys of a ``[serve]`` table.

    Raises
    ------
    UserError
        Unreadable file, invalid TOML or an unknown key (with the closest known name).
    """
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist; check --config") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"config file {path} is not valid TOML: {error}") from None
    values = document.get("serve", document)
    known = {item.name for item in settings()}
    for key in values:
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else "; see 'zstream serve --print-config-reference'"
            raise UserError(f"config file {path}: unknown setting {key!r}{suggestion}")
    return dict(values)


def load_config(
    flags: Mapping[str, Any] | argparse.Namespace | None = None,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> ServiceConfig:
    """Merge defaults, a TOML file, ``ZSTREAM_*`` variables and flags (later wins).

    Parameters
    ----------
    flags : mapping or argparse.Namespace, optional
        Values given on the command line; ``None`` values count as not given.
        A ``config`` entry names the TOML file when ``config_path`` is not given.
    env : mapping, optional
        Environment; ``os.environ`` when omitted.
    config_path : Path, optional
        TOML file of settings.

    Returns
    -------
    ServiceConfig

    Raises
    ------
    UserError
        Unknown keys, values of the wrong type, or an unreadable config file.
    """
    flags = vars(flags) if isinstance(flags, argparse.Namespace) else dict(flags or {})
    env = os.environ if env is None else env
    config_path = config_path or flags.get("config") or env.get(ENV_PREFIX + "CONFIG")
    values: dict[str, Any] = {}
    if config_path:
        for key, value in read_toml(Path(config_path)).items():
            values[key] = (value, f"config file {config_path}")
    for item in settings():
        if env_of(item.name) in env:
            values[item.name] = (env[env_of(item.name)], f"environment variable {env_of(item.name)}")
        if flags.get(item.name) is not None:
            values[item.name] = (flags[item.name], f"flag {flag_of(item.name)}")
    by_name = {item.name: item for item in settings()}
    return ServiceConfig(**{name: _convert(by_name[name], value, source) for name, (value, source) in values.items()})


def reference_markdown() -> str:
    """The Markdown table of every setting: TOML key, flag, env variable, type, default, help."""
    lines = [
        "| setting (TOML key) | flag | environment | type and allowed values | default | description |",
        "|---|---|---|---|---|---|",
    ]
    for item in settings():
        default = "—" if item.default is None else f"`{_plain(item.default)}`"
        lines.append(
            f"| `{item.name}` | `{flag_of(item.name)}` | `{env_of(item.name)}` | {allowed_values(item)} "
            f"| {default} | {item.metadata['help']} |"
        )
    return "\n".join(lines) + "\n"


def as_arguments(config: ServiceConfig) -> tuple[list[str], dict[str, str]]:
    """Command-line flags and environment that reproduce ``config`` in a ``zstream serve`` process.

    Only settings that differ from their default are given; secrets travel in the
    environment, never on the command line (where ``ps`` would show them).

    Returns
    -------
    flags : list of str
    env : dict of str to str
        ``ZSTREAM_*`` variables for the secret settings that are set.
    """
    flags: list[str] = []
    env: dict[str, str] = {}
    for item in settings():
        value = getattr(config, item.name)
        if value == item.default:
            continue
        if item.metadata["secret"]:
            env[env_of(item.name)] = "" if value is None else str(value)
        elif isinstance(value, bool):
            flags.append(flag_of(item.name) if value else "--no-" + flag_of(item.name).removeprefix("--"))
        else:
            flags += [flag_of(item.name), "" if value is None else str(value)]
    return flags, env


def kafka_client_options(config: ServiceConfig) -> dict[str, Any]:
    """Connection and security options shared by every kafka-python client of the service.

    Parameters
    ----------
    config : ServiceConfig

    Returns
    -------
    dict
        ``bootstrap_servers``, ``security_protocol`` and whichever SASL/SSL options are set.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": config.bootstrap_servers.split(","),
        "security_protocol": config.security_protocol,
    }
    for item in settings():
        if item.metadata["group"] == "security" and item.name != "security_protocol":
            value = getattr(config, item.name)
            if value is not None:
                options[item.name] = _plain(value)
    return options
