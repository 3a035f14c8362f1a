"""With CI set, a missing helm-python-sdk or kubernetes-validate is an error, never a skip."""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

PROGRAM = """
import sys
sys.modules["{module}"] = None  # makes `import {module}` raise ImportError
sys.path.insert(0, {here!r})
import chartlib
try:
    chartlib.require("{module}")
except ImportError as e:
    print("ImportError:", e)
    sys.exit(3)
except BaseException as e:  # pytest.skip raises a BaseException subclass
    print(type(e).__name__, e)
    sys.exit(4)
"""


def run(module: str, ci: bool) -> int:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    code = PROGRAM.format(module=module, here=str(HERE))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).returncode


def test_missing_dependency_fails_under_ci():
    for module in ("helm_python.chart", "kubernetes_validate"):
        assert run(module, ci=True) == 3, module


def test_missing_dependency_skips_outside_ci():
    assert run("kubernetes_validate", ci=False) == 4
