"""Amazon's field definitions for both APIs: enums and limits, taken from Amazon's OpenAPI files.

Kept apart from transport so that the payload modules and the local checks read one source.
Each API's rules (`ApiRules`) are made of these in its module of `apis/`.
DSP: the Conversions API (`ConversionsAPI_prod_3p.json`).
EVENTS: Ads API v1 `/adsApi/v1/create/events`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from target_amazon_dsp_conversions.identity import MatchKeyTypes

# ConversionDefinitionTypeV1 (DSP) and ConversionType (Events; adds MOBILE_APP_FIRST_START).
DSP_CONVERSION_TYPES = frozenset(
    (
        "ADD_TO_SHOPPING_CART APPLICATION CHECKOUT CONTACT LEAD OFF_AMAZON_PURCHASES OTHER "
        "PAGE_VIEW SEARCH SIGN_UP SUBSCRIBE"
    ).split()
)
EVENTS_CONVERSION_TYPES = DSP_CONVERSION_TYPES | {"MOBILE_APP_FIRST_START"}

# The plain words the seeds and CRMs use, mapped to Amazon's enum (matched case-insensitively,
# with spaces and dashes read as underscores).
CONVERSION_TYPE_ALIASES = {
    "purchase": "OFF_AMAZON_PURCHASES",
    "purchases": "OFF_AMAZON_PURCHASES",
    "order": "OFF_AMAZON_PURCHASES",
    "offline_purchase": "OFF_AMAZON_PURCHASES",
    "off_amazon_purchase": "OFF_AMAZON_PURCHASES",
    "signup": "SIGN_UP",
    "sign_up": "SIGN_UP",
    "registration": "SIGN_UP",
    "lead": "LEAD",
    "add_to_cart": "ADD_TO_SHOPPING_CART",
    "addtocart": "ADD_TO_SHOPPING_CART",
    "add_to_shopping_cart": "ADD_TO_SHOPPING_CART",
    "checkout": "CHECKOUT",
    "begin_checkout": "CHECKOUT",
    "application": "APPLICATION",
    "contact": "CONTACT",
    "page_view": "PAGE_VIEW",
    "pageview": "PAGE_VIEW",
    "search": "SEARCH",
    "subscribe": "SUBSCRIBE",
    "subscription": "SUBSCRIBE",
    "other": "OTHER",
    "app_install": "MOBILE_APP_FIRST_START",
    "first_open": "MOBILE_APP_FIRST_START",
    "mobile_app_first_start": "MOBILE_APP_FIRST_START",
}

SOURCES = ("SERVER_TO_SERVER", "AMAZON_AD_TAG")
SERVER_TO_SERVER = "SERVER_TO_SERVER"

# ConversionDefinitionCurrencyCodeV1: the DSP API takes 18 currencies.
DSP_CURRENCIES = frozenset(
    ("AED AUD BRL CAD CNY DKK EUR GBP INR JPY MXN NOK NZD SAR SEK SGD TRY USD").split()
)

# CurrencyCode (Events API, ISO 4217).
EVENTS_CURRENCIES = frozenset(
    (
        "AED ARS AUD AZN BBD BGN BHD BMD BND BOB BRL BSD CAD CHF CLP CNY COP CRC CZK DKK DOP DZD "
        "EGP EUR GBP GHS GTQ HKD HNL HRK HUF IDR ILS INR JMD JOD JPY KES KRW KWD KYD KZT LBP LKR "
        "MAD MUR MXN MXP MYR NAD NGN NOK NZD PAB PEN PHP PKR PLN PYG QAR RON RSD RUB SAR SEK SGD "
        "THB TND TRY TTD TWD TZS UAH USD UYU VND XAF XCD XOF XPF ZAR"
    ).split()
)

# ISO 3166-1 alpha-2 codes of the Events API's CountryCode enum (which also allows the
# pseudo-codes below); the DSP API only says "2 characters", so both APIs are checked against it.
COUNTRY_CODES = frozenset(
    (
        "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO "
        "BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ "
        "DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP "
        "GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG "
        "KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML "
        "MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE "
        "PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL "
        "SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM "
        "US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"
    ).split()
)
EVENTS_PSEUDO_COUNTRY_CODES = frozenset({"OTHER", "OTHER_EEA", "ZZ"})

# EventSource (Events API); OFFLINE suits store and CRM data.
EVENT_SOURCES = frozenset(
    {"ANDROID", "FIRE_TV", "IOS", "MEASUREMENT_ATTRIBUTION_PARTNER", "OFFLINE", "WEBSITE"}
)

# Limits of both APIs.
MAX_REQUEST_BYTES = 1_000_000  # undocumented; Tealium caps at 1 MB and the Events API has a 413
EVENTS_MAX_CUSTOM_DATA = 13
MAX_DEFINITION_NAME_LENGTH = 256
MAX_VALUE = 9_999_999_999_999.99
# Clock skew we tolerate for events stamped in the future.
MAX_FUTURE_SKEW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ApiRules:
    """What the local checks need to know about the receiving API."""

    api: str
    max_events_per_request: int
    max_event_age: timedelta  # how old an event may be when it is imported
    currencies: frozenset[str]
    conversion_types: frozenset[str]
    country_codes: frozenset[str]
    max_match_keys: int
    max_units_sold: int
    entity_account_ids: bool  # whether an `ENTITY...` account ID may name the advertiser
    extra_fields: tuple[str, ...]  # fields only this API takes, checked by its payload module
    match_keys: MatchKeyTypes  # the match-key types it takes, and which raw
    # Fields every event of this API needs besides those of both APIs (`schema_check`).
    required_fields: tuple[str, ...] = ()


# Fields only the Events API takes.
EVENTS_EXTRA_FIELDS = (
    "ipAddress", "amazonUserData", "amazonAdStorage", "tcf", "gpp", "eventSource", "dataSetName",
    "customData", "userAgent", "amazonAdEventKey", "arefMeasurementTokens",
)  # fmt: skip


DSP_EVENT_MEDIA_TYPE = "application/vnd.dspconversioneventimport.v1+json"
DSP_DEFINITION_MEDIA_TYPE = "application/vnd.dspconversiondefinition.v1+json"
DSP_USER_DELETION_MEDIA_TYPE = "application/vnd.dspuserdeletionrequest.v1+json"
