"""Optional features' packages in the tests: skipped where missing, except in CI.

scripts/setup.sh installs the `test` extra (ONNX with onnxruntime, MLflow), and
scripts/test.sh sets FASTSCALE_REQUIRE_EXTRAS=1, so there a missing package fails the test
instead of skipping it: a broken set-up must not pass as a green run that never exported an
ONNX file or logged to MLflow.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

import pytest

REQUIRED = os.environ.get("FASTSCALE_REQUIRE_EXTRAS", "") not in ("", "0")


def installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def needs(*modules: str):
    """A skip mark for tests of an optional feature; no mark at all under
    FASTSCALE_REQUIRE_EXTRAS, so the test runs and fails on the missing import."""
    if REQUIRED or installed(*modules):
        return pytest.mark.usefixtures()
    return pytest.mark.skip(reason=f"{', '.join(modules)} not installed (pip install -e '.[test]')")


def require(module: str):
    """Import `module`; skip the test when it is missing, fail under FASTSCALE_REQUIRE_EXTRAS."""
    if REQUIRED:
        return importlib.import_module(module)
    return pytest.importorskip(module)
