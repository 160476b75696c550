"""Amazon Ads API emulator for the target's tests (LwA, profiles, DSP and Events APIs)."""

from __future__ import annotations

from .server import (
    CALL_KINDS,
    DSP_DEFINITION_TYPE,
    DSP_DELETION_TYPE,
    DSP_EVENT_TYPE,
    Advertiser,
    AmazonAdsEmulator,
    Faults,
    RecordedRequest,
)

__all__ = [
    "CALL_KINDS",
    "DSP_DEFINITION_TYPE",
    "DSP_DELETION_TYPE",
    "DSP_EVENT_TYPE",
    "Advertiser",
    "AmazonAdsEmulator",
    "Faults",
    "RecordedRequest",
]
