"""target-amazon-dsp-conversions: a Singer target that uploads conversions to Amazon Ads."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "target-amazon-dsp-conversions"


def package_version() -> str:
    """The installed distribution's version ("unknown" when run from a bare checkout)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"
