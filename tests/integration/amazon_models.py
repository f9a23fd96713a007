"""Amazon's SP-API models (../shared/specs/amazon, beside the project), loaded once."""

from functools import cache
from pathlib import Path

from infrastructure.channels.amazon.sandbox_models import SpApiModels

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "amazon"


@cache
def sp_api_models() -> SpApiModels:
    return SpApiModels.load(SPECS)
