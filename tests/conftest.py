import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # tests/analytic.py


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def scenario_path():
    return lambda rel: ROOT / rel
