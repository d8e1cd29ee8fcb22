"""Records, schemas, file formats and validation.

Spectra come in as Parquet/Arrow/JSONL/FITS files or Kafka messages (JSON or
Arrow IPC) and leave as validated :class:`SpectrumBatch` objects plus
:class:`Reject` records carrying a :class:`Reason` code; results go out in
``RESULT_SCHEMA``; bases are Parquet files with a verified content hash.
See ``docs/formats.md``.
"""

from zstream.io.basis import content_hash, load_basis, save_basis
from zstream.io.files import concat_batches, iter_spectra, load_wavelength, read_spectra, spectrum_records, write_spectra
from zstream.io.fits import read_fits_spectrum
from zstream.io.messages import (
    ARROW_STREAM,
    DEFAULT_MAX_MESSAGE_BYTES,
    JSON,
    decode_json_records,
    decode_message,
    decode_result_json,
    encode_result_json,
    encode_spectrum_json,
)
from zstream.io.reasons import Reason, RecordError, Reject
from zstream.io.records import Basis, SpectrumBatch
from zstream.io.results import conform_results, read_rejects, read_results, write_rejects, write_results
from zstream.io.schema import RESULT_SCHEMA, SCHEMA_VERSION, SPECTRUM_SCHEMA, json_schema, json_validator
from zstream.io.table import spectra_to_table, table_to_spectra
from zstream.io.validate import check_spectrum

__all__ = [
    "ARROW_STREAM",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "JSON",
    "RESULT_SCHEMA",
    "SCHEMA_VERSION",
    "SPECTRUM_SCHEMA",
    "Basis",
    "Reason",
    "RecordError",
    "Reject",
    "SpectrumBatch",
    "check_spectrum",
    "concat_batches",
    "conform_results",
    "content_hash",
    "decode_json_records",
    "decode_message",
    "decode_result_json",
    "encode_result_json",
    "encode_spectrum_json",
    "iter_spectra",
    "json_schema",
    "json_validator",
    "load_basis",
    "load_wavelength",
    "read_fits_spectrum",
    "read_rejects",
    "read_results",
    "read_spectra",
    "save_basis",
    "spectra_to_table",
    "spectrum_records",
    "table_to_spectra",
    "write_rejects",
    "write_results",
    "write_spectra",
]
