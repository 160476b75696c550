"""The SDK sink: one per stream. Records of streams without stream maps are converted from
their input lines (see reader.py); the SDK hands this sink the records it maps or flattens."""

from __future__ import annotations

import logging
from typing import Any

from singer_sdk.sinks import RecordSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from target_amazon_dsp_conversions.converter import Stream, StreamSpec, dedupe_key_warning
from target_amazon_dsp_conversions.errors import InputError
from target_amazon_dsp_conversions.schema_check import mapping_problem

logger = logging.getLogger("target-amazon-dsp-conversions")


class ConversionSink(RecordSink):
    """Hands records to the run: every stream feeds the same batches and STATE ledger."""

    def __init__(self, target: Any, *args: Any, **kwargs: Any) -> None:
        """Keep the target's run."""
        self._run = target.run
        super().__init__(target, *args, **kwargs)

    def setup(self) -> None:
        """Compile the stream's checks once."""
        settings = self._run.settings
        problem = mapping_problem(
            self.stream_name,
            self.schema,
            settings.mapping,
            settings.defaults,
            self._run.api.rules,
            opt_out=self.stream_name in settings.opt_out_streams,
        )
        if problem is not None:  # every record would be rejected: a set-up mistake
            raise InputError(problem)
        # The conversion reads times in every form itself; without `format` in the schema the
        # SDK leaves values as the tap sent them, as the worker processes see them.
        self.schema = _without_formats(self.schema)
        self.stream = Stream.compile(self.stream_name, self.spec)
        warning = dedupe_key_warning(self.stream_name, self.spec, self._run.settings.mapping)
        if warning is not None:
            self._run.stats.notice((warning,))  # once per run, whatever its SCHEMAs
        if self.validate_schema and self.stream.check is None:
            logger.warning(
                "Stream %r: schema not usable for validation; not validating", self.stream_name
            )

    @property
    def include_sdc_metadata_properties(self) -> bool:
        """True: the SDK otherwise removes a tap's `_sdc_deleted_at` before handing the record
        over, and a row deleted at the source would look like a conversion. The conversion
        takes the metadata columns out of every record itself."""
        return True

    @property
    def spec(self) -> StreamSpec:
        """The stream as the converters check its records."""
        return StreamSpec(self.schema if self.validate_schema else None, tuple(self.key_properties))

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """None: the conversion checks each record against the schema itself, alike in every
        process, and rejects a mismatch instead of stopping the run."""
        return None

    def process_record(self, record: dict, context: dict) -> None:  # noqa: ARG002
        """Convert the record and settle it (queued, or rejected with its reasons)."""
        self._run.process(self.stream, record)


def _without_formats(schema: Any) -> Any:
    """The schema without `format` keywords (a property named "format" stays)."""
    if isinstance(schema, list):
        return [_without_formats(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            result[key] = {name: _without_formats(v) for name, v in value.items()}
        elif key != "format":
            result[key] = _without_formats(value)
    return result
