"""Fixtures for the io tests."""

import pytest
from io_builders import make_batch

from zstream.io import SpectrumBatch


@pytest.fixture
def batch() -> SpectrumBatch:
    return make_batch()
