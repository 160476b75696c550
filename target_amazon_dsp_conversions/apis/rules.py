"""Each API's rules side by side: its limits, the codes it takes, its match-key types (and
which it takes raw), from Amazon's OpenAPI files (`amazon_fields.py` holds the lists)."""

from __future__ import annotations

from datetime import timedelta

from target_amazon_dsp_conversions.amazon_fields import (
    COUNTRY_CODES,
    DSP_CONVERSION_TYPES,
    DSP_CURRENCIES,
    EVENTS_CONVERSION_TYPES,
    EVENTS_CURRENCIES,
    EVENTS_EXTRA_FIELDS,
    EVENTS_PSEUDO_COUNTRY_CODES,
    ApiRules,
)
from target_amazon_dsp_conversions.identity import MATCH_KEY_TYPES, MatchKeyTypes

# Match-key types: DSP's MatchKeyTypeV1 is the Events API's MatchKeyType but for the identity
# partners' IDs. Raw (normalized, not hashed): MAID for both; for the Events API also RAMP_ID,
# MATCH_ID and "REAL_ID, MERKLE_ID, KANTAR_ID, and FIP accept raw identifier values".
DSP_MATCH_KEYS = MatchKeyTypes(
    "dsp",
    supported=frozenset(
        "EMAIL PHONE FIRST_NAME LAST_NAME ADDRESS CITY STATE POSTAL MAID RAMP_ID".split()
    ),
    raw=frozenset({"MAID"}),
)
EVENTS_MATCH_KEYS = MatchKeyTypes(
    "events",
    supported=frozenset(MATCH_KEY_TYPES),
    raw=frozenset("MAID RAMP_ID MATCH_ID REAL_ID MERKLE_ID KANTAR_ID FIP".split()),
)

# The two APIs side by side. Both take an OFF_AMAZON_PURCHASES value of 0 or more only (the
# `value` descriptions of both OpenAPI files: "Must be a minimum of 0" / "min 0").
# fmt: off
DSP_RULES = ApiRules(
    api="dsp", max_events_per_request=100, max_event_age=timedelta(days=7),
    currencies=DSP_CURRENCIES, conversion_types=DSP_CONVERSION_TYPES,
    country_codes=COUNTRY_CODES, max_match_keys=9, max_units_sold=9_999_999_999_999,
    entity_account_ids=False,  # the path's accountId is the numeric DSP advertiser ID
    extra_fields=(), match_keys=DSP_MATCH_KEYS,
)
EVENTS_RULES = ApiRules(
    api="events", max_events_per_request=500, max_event_age=timedelta(days=21),
    currencies=EVENTS_CURRENCIES, conversion_types=EVENTS_CONVERSION_TYPES,
    country_codes=COUNTRY_CODES | EVENTS_PSEUDO_COUNTRY_CODES, max_match_keys=15,
    max_units_sold=2**31 - 1,  # int32
    entity_account_ids=True,  # Amazon's 2026 custom-attributes sample sends one
    extra_fields=EVENTS_EXTRA_FIELDS, match_keys=EVENTS_MATCH_KEYS,
    required_fields=("conversionType",),  # eventDescription.conversionType
)
# fmt: on
