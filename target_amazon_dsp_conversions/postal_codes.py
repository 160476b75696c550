"""Shapes of complete postal codes, per country, for the POSTAL match key.

A code Amazon cannot match (a partial one such as Canada's ``J9T`` or Great Britain's ``OX12``)
is dropped rather than hashed, as Amazon's AMC uploader does (``zip_normalizer.py`` in
``aws-solutions/amazon-marketing-cloud-uploader-from-aws``). The shapes are the postal operators'
published formats, as the codes are written after normalization (lower case, no spaces or
dashes):

- numeric codes of a fixed length: United States ZIP Code, 5 digits (USPS; ZIP+4 is cut to its
  first 5); Germany, Postleitzahl, 5 (Deutsche Post); France, code postal, 5 (La Poste); Italy,
  CAP, 5 (Poste Italiane); Spain, código postal, 5 (Correos); India, PIN, 6 (India Post); Japan,
  7, written ``NNN-NNNN`` (Japan Post). Codes starting with 0 exist in all of them but India; a
  value one digit short there has lost its leading zero to a numeric column and is padded.
- Canada: ``A1A 1A1`` (Canada Post); the first three characters alone are a forward sortation
  area, a partial code.
- Great Britain: outward code (``A9``, ``A99``, ``AA9``, ``AA99``, ``A9A``, ``AA9A``) then
  inward code ``9AA`` (Royal Mail PAF), plus the special ``GIR 0AA``; the outward code alone is
  a partial code.
"""

from __future__ import annotations

import re

__all__ = ["LEADING_ZERO_COUNTRIES", "NUMERIC_LENGTHS", "SHAPES"]

# Country -> number of digits of a complete code.
NUMERIC_LENGTHS: dict[str, int] = {
    "US": 5,
    "DE": 5,
    "FR": 5,
    "IT": 5,
    "ES": 5,
    "IN": 6,
    "JP": 7,
}

# Countries whose numeric codes may start with 0 (India's PIN codes start with 1-9).
LEADING_ZERO_COUNTRIES: frozenset[str] = frozenset({"US", "DE", "FR", "IT", "ES", "JP"})

# Country -> (a complete code, a partial code), both matched against the whole normalized value.
SHAPES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "CA": (
        re.compile(r"[a-z][0-9][a-z][0-9][a-z][0-9]"),
        re.compile(r"[a-z][0-9][a-z]([0-9][a-z]?)?"),
    ),
    "GB": (
        re.compile(r"[a-z]{1,2}[0-9][a-z0-9]?[0-9][a-z]{2}|gir0aa"),
        re.compile(r"[a-z]{1,2}[0-9][a-z0-9]?([0-9][a-z]?)?"),
    ),
}
