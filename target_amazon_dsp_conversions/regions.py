"""Regions of a STATE match key: US states and Canadian provinces, and words that are no region.

Amazon's AMC uploader (``aws-solutions/amazon-marketing-cloud-uploader-from-aws``,
``state_normalizer.py``) and the Amazon Ads Data Manager documentation send US states and
Canadian provinces as their two-letter codes (``California`` -> ``ca``). The tables:

- United States: USPS Publication 28, Appendix B "Two-Letter State and Possession
  Abbreviations" (the states, DC, the territories and freely associated states, and the
  Armed Forces codes AA, AE, AP), plus the traditional abbreviations of the U.S. Government
  Publishing Office Style Manual, chapter 9 (``Calif.``, ``Mass.``, ``W. Va.``, ...).
- Canada: Canada Post Addressing Guidelines, "Province and territory symbols", in English and
  French, plus the traditional abbreviations (``Que.``, ``Nfld.``, ``P.E.I.``, ...) and the
  retired symbols ``PQ`` (Quebec) and ``NF`` (Newfoundland).
- ISO 3166-2 subdivision codes (``US-CA``, ``CA-QC``) are read as the code they carry.

``NOT_REGIONS`` are words an order, payment or shipping ``state`` column holds (the statuses of
common shop systems and "no value" words); they are no region of any country.

Keys are folded as the match key is (lower case, accents folded, ``a-z 0-9`` only).
"""

from __future__ import annotations

__all__ = ["NOT_REGIONS", "REGION_CODES"]

# USPS Publication 28, Appendix B, and GPO Style Manual abbreviations: code -> its spellings.
US_STATES: dict[str, str] = {
    "al": "alabama ala",
    "ak": "alaska",
    "az": "arizona ariz",
    "ar": "arkansas ark",
    "ca": "california calif",
    "co": "colorado colo",
    "ct": "connecticut conn",
    "de": "delaware del",
    "dc": "districtofcolumbia washingtondc",
    "fl": "florida fla",
    "ga": "georgia",
    "hi": "hawaii",
    "id": "idaho",
    "il": "illinois ill",
    "in": "indiana ind",
    "ia": "iowa",
    "ks": "kansas kan kans",
    "ky": "kentucky",
    "la": "louisiana",
    "me": "maine",
    "md": "maryland",
    "ma": "massachusetts mass",
    "mi": "michigan mich",
    "mn": "minnesota minn",
    "ms": "mississippi miss",
    "mo": "missouri",
    "mt": "montana mont",
    "ne": "nebraska neb nebr",
    "nv": "nevada nev",
    "nh": "newhampshire",
    "nj": "newjersey",
    "nm": "newmexico nmex",
    "ny": "newyork",
    "nc": "northcarolina",
    "nd": "northdakota ndak",
    "oh": "ohio",
    "ok": "oklahoma okla",
    "or": "oregon ore oreg",
    "pa": "pennsylvania penn penna",
    "ri": "rhodeisland",
    "sc": "southcarolina",
    "sd": "southdakota sdak",
    "tn": "tennessee tenn",
    "tx": "texas tex",
    "ut": "utah",
    "vt": "vermont",
    "va": "virginia",
    "wa": "washington wash",
    "wv": "westvirginia wva",
    "wi": "wisconsin wis wisc",
    "wy": "wyoming wyo",
    "as": "americansamoa",
    "gu": "guam",
    "mp": "northernmarianaislands",
    "pr": "puertorico",
    "vi": "virginislands usvirginislands unitedstatesvirginislands",
    "fm": "federatedstatesofmicronesia micronesia",
    "mh": "marshallislands",
    "pw": "palau",
    "aa": "armedforcesamericas",
    "ae": "armedforceseurope armedforcesafrica armedforcescanada armedforcesmiddleeast",
    "ap": "armedforcespacific",
}

# Canada Post province and territory symbols, English and French names, old abbreviations.
CA_PROVINCES: dict[str, str] = {
    "ab": "alberta alta",
    "bc": "britishcolumbia colombiebritannique",
    "mb": "manitoba man",
    "nb": "newbrunswick nouveaubrunswick",
    "nl": (
        "newfoundlandandlabrador newfoundlandlabrador terreneuveetlabrador newfoundland"
        " labrador nfld nf"
    ),
    "ns": "novascotia nouvelleecosse",
    "nt": "northwestterritories territoiresdunordouest nwt",
    "nu": "nunavut",
    "on": "ontario ont",
    "pe": "princeedwardisland ileduprinceedouard pei",
    "qc": "quebec que pq",
    "sk": "saskatchewan sask",
    "yt": "yukon yukonterritory",
}


def _codes(country: str, table: dict[str, str]) -> dict[str, str]:
    """spelling -> code, for the code itself, its ISO 3166-2 form and every spelling."""
    codes = {}
    for code, spellings in table.items():
        codes[code] = code
        codes[country + code] = code
        for spelling in spellings.split():
            codes[spelling] = code
    return codes


# Country -> folded spelling -> two-letter code (lower case).
REGION_CODES: dict[str, dict[str, str]] = {
    "US": _codes("us", US_STATES),
    "CA": _codes("ca", CA_PROVINCES),
}

# Order, payment and shipping statuses (WooCommerce, Shopify, Magento, BigCommerce, ...) and
# "no value" words. Not "no" or "na": those are region codes (Novara, Navarra, Napoli).
NOT_REGIONS: frozenset[str] = frozenset(
    """
    abandoned active approved archived authorized awaitingfulfillment awaitingpayment
    awaitingpickup awaitingshipment backordered canceled cancelled captured closed complete
    completed confirmed declined delivered disputed draft error expired failed false fraud
    fulfilled holded inactive inprogress intransit new none notapplicable null onhold open
    other outfordelivery paid partial partiallyfulfilled partiallypaid partiallyrefunded
    partiallyshipped paymentreview pending pendingpayment pickedup placed processing
    readyforpickup received refunded rejected restocked returned sent shipped submitted
    success successful test true undefined unfulfilled unknown unpaid voided yes
    """.split()
)
