"""The API's JSON parser (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``).

A module of its own: ``rest_framework.views`` reads the parser setting when it is imported,
so the class cannot live in a module that imports it (``gatehouse.api``).
"""

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, parsers, serializers
from rest_framework.settings import api_settings

from gatehouse import jsonbody


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The body is larger than the server accepts."
    default_code = "payload_too_large"


def payload_too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"The body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")


class JSONParser(parsers.JSONParser):
    """Every JSON body of the API: at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (413), parsed
    by ``gatehouse.jsonbody`` (400 for nesting deeper than ``jsonbody.MAX_DEPTH``, a lone
    surrogate, ``NaN``…), and an object: every endpoint takes one, so anything else is the
    400 a serializer gives, ``{"non_field_errors": ["Invalid data. Expected a dictionary…"]}``,
    before any view can trip on it.

    The stream is read to the limit and no further: DRF before 3.17.2 hands parsers the raw
    request, which Django's upload limit does not guard (``request.body`` does, and DRF reads
    that now; ``gatehouse.api.exception_handler`` makes its refusal a 413 too).
    """

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise payload_too_large()
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            "".encode(encoding)  # a text encoding, not a codec such as bz2_codec
            text = raw.decode(encoding)
        except (LookupError, UnicodeError) as error:
            raise exceptions.ParseError(f"The body is not {encoding} text.") from error
        try:
            value = jsonbody.loads(text)
        except jsonbody.JSONBodyError as error:
            raise exceptions.ParseError(str(error)) from error
        if not isinstance(value, dict):
            message = serializers.Serializer.default_error_messages["invalid"]
            raise exceptions.ValidationError(
                {
                    api_settings.NON_FIELD_ERRORS_KEY: [
                        str(message).format(datatype=type(value).__name__)
                    ]
                }
            )
        return value
