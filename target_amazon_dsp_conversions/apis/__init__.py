"""The two Amazon APIs: each differs from the other only in its payload and response handling."""

from __future__ import annotations

from target_amazon_dsp_conversions.apis.base import ConversionApi, OutgoingRequest
from target_amazon_dsp_conversions.apis.dsp import DspApi
from target_amazon_dsp_conversions.apis.events import EventsApi

__all__ = ["ConversionApi", "OutgoingRequest", "api_for"]


def api_for(name: str, *, region: str = "NA") -> ConversionApi:
    """The API selected by the `api` setting."""
    return DspApi() if name == "dsp" else EventsApi(region=region)
