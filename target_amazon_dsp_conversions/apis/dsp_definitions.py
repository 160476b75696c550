"""DSP conversion definitions: which `conversionDefinitionId` a conversion is sent under.

Order (SPEC §2): the record's own ID; the `conversion_definitions` setting (by name, then by
the conversion type's event name); the advertiser's definitions listed through the API (all pages
once per advertiser, matched by name and source); creation when allowed. Names are compared in
their canonical form (`conversion.canonical_name`): `Purchase`, `order` and `OFF_AMAZON_PURCHASES`
all name the definition `purchase`, as a key of the setting and as a listed definition.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from target_amazon_dsp_conversions.amazon_fields import DSP_DEFINITION_MEDIA_TYPE
from target_amazon_dsp_conversions.answers import Meaning, amazon_says, meaning
from target_amazon_dsp_conversions.apis.base import DefinitionQuery, Endpoint, json_request
from target_amazon_dsp_conversions.conversion import EVENT_NAMES, canonical_name
from target_amazon_dsp_conversions.errors import DeliveryError, SetupError, reject
from target_amazon_dsp_conversions.http_types import Call, OutgoingRequest, Response

logger = logging.getLogger("target-amazon-dsp-conversions.definitions")

PAGE_SIZE = 100
# An advertiser with more definitions than this many pages hold is no advertiser of this world.
MAX_PAGES = 1000
SOURCE_TYPES = {"SERVER_TO_SERVER": "OFFLINE", "AMAZON_AD_TAG": "WEBSITE"}


class Definition(NamedTuple):
    """A resolved conversion definition: its ID and, when known, its conversion type."""

    id: str
    conversion_type: str | None


class DefinitionsUnavailableError(DeliveryError):
    """A definitions call answered with a status that is no result (`check` diagnoses it; the
    run's transport has already stopped on the ones that mean a set-up problem)."""

    def __init__(self, message: str, *, status: int = 0, body: Any = None) -> None:
        """The one line to show; what Amazon answered."""
        super().__init__(message)
        self.status = status
        self.body = body


def dsp_headers(endpoint: Endpoint, advertiser: str, media_type: str) -> dict[str, str]:
    """The headers of every DSP call, as Amazon's guides send them."""
    headers = {
        "Amazon-Advertising-API-ClientId": endpoint.client_id,
        "Amazon-Ads-AccountId": advertiser,
        "Content-Type": media_type,
        "Accept": media_type,
    }
    if endpoint.profile_id:
        headers["Amazon-Advertising-API-Scope"] = endpoint.profile_id
    return headers


class DefinitionCalls:
    """The two calls of the definitions endpoint (list and create) for one sign-in."""

    def __init__(self, send: Callable[[OutgoingRequest], Response], endpoint: Endpoint) -> None:
        """`send` sends a request with the caller's auth and retries."""
        self._send = send
        self._endpoint = endpoint

    def list_all(self, advertiser: str) -> list[dict[str, Any]]:
        """Every definition of the advertiser: the list filters by ID only, so all pages are
        read. Raises DefinitionsUnavailableError when Amazon answers with an error."""
        found: list[dict[str, Any]] = []
        page: dict[str, Any] = {"maxResults": PAGE_SIZE}
        tokens: set[str] = set()
        while True:
            answer = self._call(Call.DEFINITIONS_LIST, page, advertiser)
            body = answer.body
            listed = body.get("conversionDefinitions", []) if isinstance(body, dict) else None
            if not isinstance(listed, list):  # an HTML page, say: a proxy's, not Amazon's
                raise DefinitionsUnavailableError(
                    f"conversion definitions of advertiser {advertiser}: HTTP {answer.status} "
                    "without a list of definitions, which is no answer of Amazon's; check api_url"
                )
            found.extend(d for d in listed if isinstance(d, dict) and _has_id(d))
            token = body.get("nextToken")
            if not token:
                return found
            # A list that does not end (a page token seen before, or pages without end) is no
            # answer of Amazon's: the run stops rather than read it forever.
            if str(token) in tokens or len(tokens) >= MAX_PAGES:
                raise DefinitionsUnavailableError(
                    f"conversion definitions of advertiser {advertiser}: the list did not end "
                    f"(a page token came again, or more than {MAX_PAGES} pages); check api_url"
                )
            tokens.add(str(token))
            page = {"maxResults": PAGE_SIZE, "nextToken": token}

    def create(self, definition: dict[str, Any], advertiser: str) -> Response:
        """Create one definition; Amazon's answer, to be read per item unless it refuses the
        definition's content (`Meaning.REJECT`)."""
        return self._call(Call.DEFINITIONS_CREATE, [definition], advertiser)

    def _call(self, call: Call, body: Any, advertiser: str) -> Response:
        headers = dsp_headers(self._endpoint, advertiser, DSP_DEFINITION_MEDIA_TYPE)
        suffix = "/list" if call is Call.DEFINITIONS_LIST else ""
        url = f"{self._endpoint.api_url}/accounts/{advertiser}/dsp/conversionDefinitions{suffix}"
        answer = self._send(json_request(url, headers, body, call))
        if meaning(call, answer.status) not in (Meaning.DONE, Meaning.READ_ITEMS, Meaning.REJECT):
            says = amazon_says(answer.body)
            raise DefinitionsUnavailableError(
                f"conversion definitions of advertiser {advertiser}: HTTP {answer.status}"
                + (f" {says}" if says else ""),
                status=answer.status,
                body=answer.body,
            )
        return answer


class DefinitionResolver:
    """Looks definitions up (and creates them when allowed); keeps what it learns for the run."""

    def __init__(
        self,
        *,
        configured: Mapping[str, Any],
        create_missing: bool,
        calls: DefinitionCalls | None,
    ) -> None:
        """`calls` is None in a dry run: nothing is looked up or created. The settings
        refuse two keys of `configured` with one canonical form (settings.py)."""
        # canonical form -> (the key as configured, its value)
        self._configured = {canonical_name(key): (key, value) for key, value in configured.items()}
        self._create_missing = create_missing
        self._calls = calls
        # advertiser -> definitions as Amazon lists them
        self._listed: dict[str, list[dict[str, Any]]] = {}
        self._warned: set[str] = set()

    def lookup(self, query: DefinitionQuery) -> Definition:
        """The definition events matching `query` go under; raises Rejected when there is none
        to use (or the one named takes another source)."""
        setting = None if query.definition_id else self._from_settings(query)
        definition_id = query.definition_id or (setting[1] if setting else None)
        if definition_id is not None:
            known = self._find_by_id(query.advertiser_id, definition_id)
            if known is None:
                return Definition(definition_id, query.conversion_type)
            if known is _NOT_LISTED:
                _not_listed(query, definition_id, setting[0] if setting else None)
            _check_source(query, known)
            return Definition(definition_id, query.conversion_type or known.get("conversionType"))
        if self._calls is None:
            if query.name not in self._warned:
                self._warned.add(query.name)
                logger.warning(
                    "Dry run: conversion %r has no ID in conversion_definitions; the real run "
                    "looks it up through the API", query.name,
                )  # fmt: skip
            return Definition(f"DRY_RUN_UNRESOLVED:{query.name}", query.conversion_type)
        listed = self._definitions(query.advertiser_id)
        same_name = _named(listed, query.name)
        match = next((d for d in same_name if d.get("source") == query.source), None)
        type_name = EVENT_NAMES.get(query.conversion_type or "")
        if match is None and not same_name and canonical_name(query.name) == type_name:
            # The name is only the record's conversion type ("Add to cart"): take the one
            # definition of that type and source, as the Events API would.
            of_type = [
                d
                for d in listed
                if d.get("conversionType") == query.conversion_type
                and d.get("source") == query.source
            ]
            match = of_type[0] if len(of_type) == 1 else None
        if match is None and same_name:
            _check_source(query, same_name[0])
        if match is None:
            match = self._create(query)
        return Definition(
            str(match["conversionDefinitionId"]),
            query.conversion_type or match.get("conversionType"),
        )

    def _from_settings(self, query: DefinitionQuery) -> tuple[str, str] | None:
        """(the key of conversion_definitions, the ID it gives), or None."""
        keys = [canonical_name(query.name)]
        if query.conversion_type:
            keys.append(EVENT_NAMES[query.conversion_type])
        for key in keys:
            setting_key, value = self._configured.get(key, (key, None))
            if isinstance(value, str):
                return setting_key, value
            if isinstance(value, Mapping) and query.advertiser_id in value:
                return setting_key, str(value[query.advertiser_id])
        return None

    def _find_by_id(self, advertiser: str, definition_id: str) -> Mapping[str, Any] | None:
        """The listed definition with this ID, _NOT_LISTED when the list lacks it, None when
        the definitions could not be listed (nothing to check against)."""
        if self._calls is None:
            return None
        if self._listed.get(advertiser) is _UNLISTABLE:
            return None
        try:
            definitions = self._definitions(advertiser)
        except DeliveryError as exc:
            # The ID came from the record or the settings: send it and let Amazon judge it.
            if advertiser not in self._warned:
                self._warned.add(advertiser)
                logger.warning("Cannot list conversion definitions (%s); source not checked", exc)
            self._listed[advertiser] = _UNLISTABLE
            return None
        matches = (d for d in definitions if d.get("conversionDefinitionId") == definition_id)
        return next(matches, _NOT_LISTED)

    def _definitions(self, advertiser: str) -> list[dict[str, Any]]:
        listed = self._listed.get(advertiser)
        if listed is None or listed is _UNLISTABLE:  # unlistable: the answer says why
            assert self._calls is not None
            listed = self._listed[advertiser] = self._calls.list_all(advertiser)
            logger.info("Advertiser %s has %d conversion definitions", advertiser, len(listed))
        return listed

    def _create(self, query: DefinitionQuery) -> dict[str, Any]:
        if not self._create_missing:
            # The name is the record's own (its eventName or type): data, so a reject; an ID
            # the settings give that the advertiser lacks is a set-up problem (`_not_listed`).
            raise reject(
                "DEFINITION_NOT_FOUND",
                f"advertiser {query.advertiser_id} has no {query.source} conversion "
                f"definition named {query.name!r}; add it to conversion_definitions, "
                "create it in Amazon DSP, or set create_missing_definitions: true",
                "name",
            )
        if query.conversion_type is None:
            raise reject(
                "MISSING_FIELD",
                f"conversionType is needed to create the definition {query.name!r}",
                "conversionType",
            )
        definition = {
            "name": query.name,
            "conversionType": query.conversion_type,
            "source": query.source,
            "sourceType": SOURCE_TYPES[query.source],
            "countingMethod": "EVERY",
            "value": 0,
        }
        assert self._calls is not None
        created = self._calls.create(definition, query.advertiser_id)
        answer = created.body
        made = _first_item(answer, "success")
        if meaning(Call.DEFINITIONS_CREATE, created.status) is Meaning.REJECT:
            made = {}  # Amazon refused the definition the records' name and type make
            answer = {"error": [{"message": f"HTTP {created.status} {amazon_says(answer)}"}]}
        if not made.get("conversionDefinitionId"):
            message = _first_item(answer, "error").get("message") or "no ID returned"
            raise reject(
                "DEFINITION_NOT_CREATED",
                f"Amazon did not create the definition {query.name!r}: {message}",
                "name",
            )
        definition["conversionDefinitionId"] = made["conversionDefinitionId"]
        listed = self._listed.get(query.advertiser_id)
        if listed is not None and listed is not _UNLISTABLE:
            listed.append(definition)
        logger.info(
            "Created conversion definition %s for %r (advertiser %s)",
            definition["conversionDefinitionId"], query.name, query.advertiser_id,
        )  # fmt: skip
        return definition


# What `_find_by_id` and `_listed` hold besides definitions.
_NOT_LISTED: Mapping[str, Any] = {}
_UNLISTABLE: list[dict[str, Any]] = []


def _not_listed(query: DefinitionQuery, definition_id: str, setting_key: str | None) -> None:
    """An ID the advertiser's definitions lack: a set-up problem when the settings give it
    (every record of the kind is sent under it), the record's fault when the record does."""
    if setting_key is not None:
        raise SetupError(
            f"conversion_definitions.{setting_key}: {definition_id} is not a conversion "
            f"definition of advertiser {query.advertiser_id}; use one of its IDs "
            "(target-amazon-dsp-conversions-auth check lists them)"
        )
    raise reject(
        "DEFINITION_NOT_FOUND",
        f"conversionDefinitionId {definition_id[:64]!r} is not a conversion definition of "
        f"advertiser {query.advertiser_id}",
        "conversionDefinitionId",
    )


def _named(definitions: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The definitions of this name: those spelled the same first, then those of the same
    canonical form (a definition named `Purchase` or `OFF_AMAZON_PURCHASES` for `purchase`)."""
    exact = [d for d in definitions if d.get("name") == name]
    wanted = canonical_name(name)
    alike = [
        d
        for d in definitions
        if d.get("name") != name
        and isinstance(d.get("name"), str)
        and canonical_name(d["name"]) == wanted
    ]
    return exact + alike


def _check_source(query: DefinitionQuery, definition: Mapping[str, Any]) -> None:
    source = definition.get("source")
    if source and source != query.source:
        raise reject(
            "SOURCE_MISMATCH",
            f"conversion definition {definition.get('conversionDefinitionId')} "
            f"({definition.get('name')!r}) takes {source} events; the record's source is "
            f"{query.source}",
            "source",
        )


def _has_id(definition: dict[str, Any]) -> bool:
    """A listed definition that can be used: it has an ID (a malformed entry is left out)."""
    return bool(definition.get("conversionDefinitionId"))


def _first_item(answer: Any, key: str) -> dict[str, Any]:
    """The first object of the list `answer[key]` of a create answer ({} when there is none:
    a malformed answer reads as one without it)."""
    items = answer.get(key) if isinstance(answer, dict) else None
    first = items[0] if isinstance(items, list) and items else None
    return first if isinstance(first, dict) else {}
