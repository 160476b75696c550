"""target-amazon-dsp-conversions: a Singer target that uploads conversions to Amazon Ads."""

from __future__ import annotations

DISTRIBUTION = "target-amazon-dsp-conversions"


def package_version() -> str:
    """The installed distribution's version ("unknown" when run from a bare checkout)."""
    # Imported here: it costs a worker process (which never asks) a third of its start-up.
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"
