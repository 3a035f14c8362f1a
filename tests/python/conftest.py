"""Makes tests/python importable as a flat package of helpers (chartlib) for the chart tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
