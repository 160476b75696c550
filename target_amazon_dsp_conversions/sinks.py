"""The SDK sink: validates each record against its stream's schema and hands it to the run."""

from __future__ import annotations

import logging
from typing import Any

from singer_sdk.exceptions import MissingKeyPropertiesError
from singer_sdk.sinks import RecordSink

from target_amazon_dsp_conversions.errors import Problem
from target_amazon_dsp_conversions.record_checks import (
    compile_schema,
    missing_key_properties,
    null_keys_problem,
    schema_problem,
)

logger = logging.getLogger("target-amazon-dsp-conversions")


class ConversionSink(RecordSink):
    """One per stream; batching happens in the run, across streams, per advertiser and source."""

    def __init__(self, target: Any, *args: Any, **kwargs: Any) -> None:
        """Keep the target's run: every stream feeds the same batches and STATE ledger."""
        self.run = target.run
        super().__init__(target, *args, **kwargs)

    def setup(self) -> None:
        """Compile the stream's schema once."""
        self._schema_problem: Problem | None = None
        self._check = compile_schema(self.schema) if self.validate_schema else None
        if self.validate_schema and self._check is None:
            logger.warning(
                "Stream %r: schema not usable for validation; not validating", self.stream_name
            )

    @property
    def validates(self) -> bool:
        """Records are checked against the schema (it is wanted and could be compiled)."""
        return self._check is not None

    def _validate_and_parse(self, record: dict) -> dict:
        """Check against the schema; a mismatch rejects the record instead of failing the run.

        The SDK's own step also parses date-times; the run does that itself, for every form.
        """
        check = self._check
        self._schema_problem = schema_problem(check, record) if check is not None else None
        return record

    def _singer_validate_message(self, record: dict) -> None:
        keys = self.key_properties
        if not keys:
            return
        missing = missing_key_properties(keys, record)
        if missing:
            # The Singer spec requires key properties; the run stops, as the SDK does, but
            # with a line that says what is wrong.
            raise MissingKeyPropertiesError(
                f"a RECORD of stream '{self.stream_name}' lacks its key properties "
                f"{', '.join(missing)}; the dedupe ID is derived from them"
            )
        if self._schema_problem is None:
            self._schema_problem = null_keys_problem(keys, record)

    def process_record(self, record: dict, context: dict) -> None:  # noqa: ARG002
        """Map, check and queue the record (or reject it)."""
        if self._schema_problem is not None:
            self.run.reject_unreadable(self.stream_name, record, self._schema_problem)
        else:
            self.run.process(self.stream_name, record, self.key_properties)
