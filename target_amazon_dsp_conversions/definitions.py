"""DSP conversion definitions: which `conversionDefinitionId` a conversion is sent under.

Order (SPEC §2): the record's own ID; the `conversion_definitions` setting (by name, then by
conversion type as given, then by Amazon's enum); the advertiser's definitions listed through the
API (all pages once per advertiser, matched by name and source); creation when allowed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from target_amazon_dsp_conversions.amazon_fields import DSP_DEFINITION_MEDIA_TYPE
from target_amazon_dsp_conversions.apis.base import OutgoingRequest
from target_amazon_dsp_conversions.conversion import Conversion
from target_amazon_dsp_conversions.errors import DeliveryError, reject
from target_amazon_dsp_conversions.http_client import Transport

logger = logging.getLogger("target-amazon-dsp-conversions.definitions")

PAGE_SIZE = 100
SOURCE_TYPES = {"SERVER_TO_SERVER": "OFFLINE", "AMAZON_AD_TAG": "WEBSITE"}


class DefinitionResolver:
    """Resolves and checks definitions; caches what it learns for the run."""

    def __init__(
        self,
        *,
        configured: Mapping[str, Any],
        create_missing: bool,
        transport: Transport | None,
        api_url: str,
        client_id: str,
        profile_id: str | None,
    ) -> None:
        """`transport` is None in a dry run: nothing is looked up or created."""
        self._configured = configured
        self._create_missing = create_missing
        self._transport = transport
        self._api_url = api_url
        self._client_id = client_id
        self._profile_id = profile_id
        # advertiser -> definitions as Amazon lists them
        self._listed: dict[str, list[dict[str, Any]]] = {}
        self._warned: set[str] = set()

    def resolve(self, conversion: Conversion, raw_type: Any) -> None:
        """Set `conversion.definition_id` (and its type when known), or raise Rejected."""
        advertiser = conversion.advertiser_id
        definition_id = conversion.definition_id or self._from_settings(
            conversion, raw_type, advertiser
        )
        if definition_id is not None:
            conversion.definition_id = definition_id
            known = self._find(
                advertiser, lambda d: d.get("conversionDefinitionId") == definition_id
            )
            if known:
                self._check_source(conversion, known)
                conversion.conversion_type = conversion.conversion_type or known.get(
                    "conversionType"
                )
            return
        if self._transport is None:
            conversion.definition_id = f"DRY_RUN_UNRESOLVED:{conversion.name}"
            if conversion.name not in self._warned:
                self._warned.add(conversion.name)
                logger.warning(
                    "Dry run: conversion %r has no ID in conversion_definitions; the real run "
                    "looks it up through the API", conversion.name,
                )  # fmt: skip
            return
        listed = self._definitions(advertiser)
        same_name = [d for d in listed if d.get("name") == conversion.name]
        match = next((d for d in same_name if d.get("source") == conversion.source), None)
        if match is None and not same_name and conversion.name == _text(raw_type):
            # The name is only the record's conversion type ("Add to cart"): take the one
            # definition of that type and source, as the Events API would.
            of_type = [
                d
                for d in listed
                if d.get("conversionType") == conversion.conversion_type
                and d.get("source") == conversion.source
            ]
            match = of_type[0] if len(of_type) == 1 else None
        if match is None and same_name:
            self._check_source(conversion, same_name[0])
        if match is None:
            match = self._create(conversion)
        conversion.definition_id = str(match["conversionDefinitionId"])
        conversion.conversion_type = conversion.conversion_type or match.get("conversionType")

    def _from_settings(self, conversion: Conversion, raw_type: Any, advertiser: str) -> str | None:
        keys = [conversion.name]
        if isinstance(raw_type, str):
            keys.append(raw_type.strip())
        if conversion.conversion_type:
            keys.append(conversion.conversion_type)
        for key in keys:
            value = self._configured.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, Mapping) and advertiser in value:
                return str(value[advertiser])
        return None

    @staticmethod
    def _check_source(conversion: Conversion, definition: Mapping[str, Any]) -> None:
        source = definition.get("source")
        if source and source != conversion.source:
            raise reject(
                "SOURCE_MISMATCH",
                f"conversion definition {definition.get('conversionDefinitionId')} "
                f"({definition.get('name')!r}) takes {source} events; the record's source is "
                f"{conversion.source}",
                "source",
            )

    def _find(self, advertiser: str, test: Any) -> dict[str, Any] | None:
        if self._transport is None:
            return None
        try:
            definitions = self._definitions(advertiser)
        except DeliveryError as exc:
            # The ID came from the record or the settings: send it and let Amazon judge it.
            if advertiser not in self._warned:
                self._warned.add(advertiser)
                logger.warning("Cannot list conversion definitions (%s); source not checked", exc)
            self._listed[advertiser] = []
            return None
        return next((d for d in definitions if test(d)), None)

    def _definitions(self, advertiser: str) -> list[dict[str, Any]]:
        if advertiser in self._listed:
            return self._listed[advertiser]
        # The list endpoint filters by ID only, so read every page once and match locally.
        found: list[dict[str, Any]] = []
        next_token: str | None = None
        while True:
            body: dict[str, Any] = {"maxResults": PAGE_SIZE}
            if next_token:
                body["nextToken"] = next_token
            answer = self._call("/list", body, advertiser)
            page = answer if isinstance(answer, dict) else {}
            found.extend(d for d in page.get("conversionDefinitions") or [] if isinstance(d, dict))
            next_token = page.get("nextToken")
            if not next_token:
                break
        logger.info("Advertiser %s has %d conversion definitions", advertiser, len(found))
        self._listed[advertiser] = found
        return found

    def _create(self, conversion: Conversion) -> dict[str, Any]:
        if not self._create_missing:
            raise reject(
                "DEFINITION_NOT_FOUND",
                f"advertiser {conversion.advertiser_id} has no {conversion.source} conversion "
                f"definition named {conversion.name!r}; add it to conversion_definitions, "
                "create it in Amazon DSP, or set create_missing_definitions: true",
                "name",
            )
        if conversion.conversion_type is None:
            raise reject(
                "MISSING_FIELD",
                f"conversionType is needed to create the definition {conversion.name!r}",
                "conversionType",
            )
        definition = {
            "name": conversion.name,
            "conversionType": conversion.conversion_type,
            "source": conversion.source,
            "sourceType": SOURCE_TYPES[conversion.source],
            "countingMethod": "EVERY",
            "value": 0,
        }
        answer = self._call("", [definition], conversion.advertiser_id)
        success = (answer or {}).get("success") if isinstance(answer, dict) else None
        if not success or not success[0].get("conversionDefinitionId"):
            errors = (answer or {}).get("error") if isinstance(answer, dict) else None
            message = (errors or [{}])[0].get("message", "no ID returned")
            raise reject(
                "DEFINITION_NOT_CREATED",
                f"Amazon did not create the definition {conversion.name!r}: {message}",
                "name",
            )
        definition["conversionDefinitionId"] = success[0]["conversionDefinitionId"]
        self._listed.setdefault(conversion.advertiser_id, []).append(definition)
        logger.info(
            "Created conversion definition %s for %r (advertiser %s)",
            definition["conversionDefinitionId"], conversion.name, conversion.advertiser_id,
        )  # fmt: skip
        return definition

    def _call(self, suffix: str, body: Any, advertiser: str) -> Any:
        assert self._transport is not None
        headers = {
            "Amazon-Advertising-API-ClientId": self._client_id,
            "Amazon-Ads-AccountId": advertiser,
            "Content-Type": DSP_DEFINITION_MEDIA_TYPE,
            "Accept": DSP_DEFINITION_MEDIA_TYPE,
        }
        if self._profile_id:
            headers["Amazon-Advertising-API-Scope"] = self._profile_id
        url = f"{self._api_url}/accounts/{advertiser}/dsp/conversionDefinitions{suffix}"
        answer = self._transport.send(
            OutgoingRequest("POST", url, headers, json.dumps(body).encode())
        )
        if answer.status >= 300:  # noqa: PLR2004
            message = answer.body.get("message") if isinstance(answer.body, dict) else None
            raise DeliveryError(
                f"conversion definitions of advertiser {advertiser}: HTTP {answer.status} "
                f"{message or ''}".rstrip()
            )
        return answer.body


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) else None
