"""The one way an SQS worker is wired: Powertools batch processing with partial batch responses,
inside the logger / metrics / (opt-in) tracer decorators in a fixed order (a scheduled job's
handler is in ``tsunagu.schedules``, which does not load the batch utility)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tsunagu.observability import LambdaHandler as Handler
from tsunagu.observability import instrumented, metrics


def sqs_handler(record_handler: Callable[[SQSRecord], str], on_invoke: Callable[[Any], None] | None = None) -> Handler:
    """A Lambda handler that runs ``record_handler`` per record; a record that raises is
    reported in ``batchItemFailures`` (and only it is retried). ``record_handler`` returns an
    outcome word, counted as the metric ``<Outcome>``."""
    processor = BatchProcessor(event_type=EventType.SQS)

    def counted(record: SQSRecord) -> str:
        outcome = record_handler(record)
        metrics.add_metric(name=outcome, unit="Count", value=1)
        return outcome

    @instrumented(correlation_id_path=None)
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if on_invoke is not None:
            on_invoke(context)
        result: dict[str, Any] = dict(
            process_partial_response(event=event, record_handler=counted, processor=processor, context=context)
        )
        return result

    return lambda_handler
