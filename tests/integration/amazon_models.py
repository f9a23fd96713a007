"""Amazon's SP-API models, kept beside the project (../shared/specs/amazon), loaded once.

Where they are not (a fresh clone), the sandbox runs without them and the tests that hold
requests to them skip; with CI set, their absence fails the run instead.
"""

import os
from functools import cache
from pathlib import Path

import pytest

from sandboxes.amazon.models import SpApiModels

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "amazon"


@cache
def sp_api_models() -> SpApiModels | None:
    """The models; None where they are not beside the project (and CI is not set)."""
    if not SPECS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and Amazon's SP-API models are not in {SPECS}", pytrace=False)
        return None
    return SpApiModels.load(SPECS)


def required_models() -> SpApiModels:
    """The models, or skip the test that needs them."""
    models = sp_api_models()
    if models is None:
        pytest.skip(f"Amazon's SP-API models are not in {SPECS}")
    return models
