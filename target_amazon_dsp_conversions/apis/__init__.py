"""The Amazon APIs this target uploads to, by the name the `api` setting gives them: the one
registry. Each API is one object (`base.ConversionApi`) that says everything about it; the rest
of the target looks it up here and never names an API. Adding an API is a module in this
package and a line in `_APIS`."""

from __future__ import annotations

from collections.abc import Callable

from target_amazon_dsp_conversions.apis.base import ConversionApi, OutgoingRequest
from target_amazon_dsp_conversions.apis.dsp import DspApi
from target_amazon_dsp_conversions.apis.events import EventsApi

__all__ = ["API_NAMES", "DEFAULT_API", "ConversionApi", "OutgoingRequest", "api_for"]

# Each API by its name, made for a region.
_APIS: dict[str, Callable[..., ConversionApi]] = {DspApi.name: DspApi, EventsApi.name: EventsApi}
API_NAMES = tuple(_APIS)
DEFAULT_API = DspApi.name


def api_for(name: str, *, region: str = "NA") -> ConversionApi:
    """The API selected by the `api` setting; ValueError for a name not in `API_NAMES`."""
    make = _APIS.get(name)
    if make is None:
        raise ValueError(f"unknown api: {name!r}")
    return make(region=region)


def api_summaries() -> str:
    """The `api` setting's description: each name and what it selects."""
    return "; ".join(f"{name}: {make().summary}" for name, make in _APIS.items()) + "."
