"""Log context: the request id or job id on every line, as JSON when ``GATEHOUSE_LOG_JSON=1``.

The ids live in context variables (per thread, per asyncio task); ``ContextFilter``, attached
to the console handler in ``settings.LOGGING``, copies them onto every record it handles.
"""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id: ContextVar[str | None] = ContextVar("job_id", default=None)


@contextmanager
def job_context(job: object) -> Iterator[None]:
    """Log lines within carry ``job_id``; a Celery task wraps its service call in this."""
    token = job_id.set(str(job))
    try:
        yield
    finally:
        job_id.reset(token)


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``job_id`` and ``context`` (for text: ``request_id=…``, or ``-``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id = request_id.get()
        record.job_id = current_job_id = job_id.get()
        parts = [
            f"{name}={value}"
            for name, value in (("request_id", current_request_id), ("job_id", current_job_id))
            if value
        ]
        record.context = " ".join(parts) or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, the ids, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ("request_id", "job_id"):
            value = getattr(record, field, None)
            if value:
                entry[field] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)
