"""`identity.prepare` and `drop_reason` for an API picked by its name (the `api` setting's
value), as the identity tests are written: each API's match-key types come from its object in
the registry (`apis/`)."""

from __future__ import annotations

from target_amazon_dsp_conversions import identity
from target_amazon_dsp_conversions.apis import API_NAMES, api_for


def match_key_types(api: str) -> identity.MatchKeyTypes:
    """The match-key types of the API named `api` (the registry refuses an unknown name)."""
    return api_for(api).rules.match_keys


SUPPORTED_TYPES = {name: match_key_types(name).supported for name in API_NAMES}
RAW_TYPES = {name: match_key_types(name).raw for name in API_NAMES}


def prepare(key_type: str, value: object, *, api: str, country: str | None = None) -> str | None:
    """`identity.prepare` for the API named `api`."""
    return identity.prepare(key_type, value, api=match_key_types(api), country=country)


def drop_reason(key_type: str, value: object, *, api: str, country: str | None = None) -> str:
    """`identity.drop_reason` for the API named `api`."""
    return identity.drop_reason(key_type, value, api=match_key_types(api), country=country)
