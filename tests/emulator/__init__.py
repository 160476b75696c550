"""Amazon Ads API emulator for the target's tests (LwA, profiles, DSP and Events APIs)."""

from __future__ import annotations

from .server import (
    DSP_DEFINITION_TYPE,
    DSP_EVENT_TYPE,
    Advertiser,
    AmazonAdsEmulator,
    Faults,
    RecordedRequest,
)

__all__ = [
    "DSP_DEFINITION_TYPE",
    "DSP_EVENT_TYPE",
    "Advertiser",
    "AmazonAdsEmulator",
    "Faults",
    "RecordedRequest",
]
