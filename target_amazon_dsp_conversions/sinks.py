"""The SDK sink: validates each record against its stream's schema and hands it to the run."""

from __future__ import annotations

import logging
from typing import Any

import fastjsonschema
from singer_sdk.exceptions import MissingKeyPropertiesError
from singer_sdk.sinks import RecordSink

from target_amazon_dsp_conversions.errors import Problem

logger = logging.getLogger("target-amazon-dsp-conversions")


class ConversionSink(RecordSink):
    """One per stream; batching happens in the run, across streams, per advertiser and source."""

    def __init__(self, target: Any, *args: Any, **kwargs: Any) -> None:
        """Keep the target's run: every stream feeds the same batches and STATE ledger."""
        self.run = target.run
        super().__init__(target, *args, **kwargs)

    def setup(self) -> None:
        """Compile the stream's schema once (fastjsonschema: many times faster than jsonschema)."""
        self._schema_problem: Problem | None = None
        self._check = self._compile(self.schema) if self.validate_schema else None

    def _compile(self, schema: dict[str, Any]) -> Any:
        try:
            # Formats are not checked: the SDK does not either, and the run parses times itself.
            return fastjsonschema.compile(schema, use_formats=False)
        except Exception:  # noqa: BLE001 - a schema we cannot compile is not the user's loss
            logger.warning(
                "Stream %r: schema not usable for validation; not validating", self.stream_name
            )
            return None

    def _validate_and_parse(self, record: dict) -> dict:
        """Check against the schema; a mismatch rejects the record instead of failing the run.

        The SDK's own step also parses date-times; the run does that itself, for every form.
        """
        self._schema_problem = None
        if self._check is not None:
            try:
                self._check(record)
            except fastjsonschema.JsonSchemaValueException as exc:
                # exc.message names the property and the rule, never the value.
                self._schema_problem = Problem(
                    "SCHEMA_MISMATCH",
                    f"record does not match the stream's SCHEMA: {exc.message}",
                    (exc.name or "").removeprefix("data.") or None,
                )
        return record

    def _singer_validate_message(self, record: dict) -> None:
        keys = self.key_properties
        if not keys:
            return
        # Common case first, without building lists: every key there, one of them set.
        for k in keys:
            if k not in record:
                break
        else:
            for k in keys:
                if record[k] is not None:
                    return
        missing = [k for k in keys if k not in record]
        if missing:
            # The Singer spec requires key properties; the run stops, as the SDK does, but
            # with a line that says what is wrong.
            raise MissingKeyPropertiesError(
                f"a RECORD of stream '{self.stream_name}' lacks its key properties "
                f"{', '.join(missing)}; the dedupe ID is derived from them"
            )
        if self._schema_problem is None:
            # All null: such records would share one dedupe ID and Amazon would keep only one
            # of them, so each is rejected instead.
            self._schema_problem = Problem(
                "NULL_KEY_PROPERTIES",
                f"key properties {', '.join(keys)} are all null; the dedupe ID is derived "
                "from them",
                keys[0],
            )

    def process_record(self, record: dict, context: dict) -> None:  # noqa: ARG002
        """Map, check and queue the record (or reject it)."""
        if self._schema_problem is not None:
            self.run.reject_unreadable(self.stream_name, record, self._schema_problem)
        else:
            self.run.process(self.stream_name, record, self.key_properties)
