"""``GET /auth/token``: the realm notary-server sends its clients to (docs/notary-protocol.md,
"Token authentication").

HTTP Basic with a password, or with an API token in its place; without credentials, an
anonymous token. What is granted is decided in ``trust.token_service.tokens``. Not part of the
REST API (no DRF, not in its schema): the Docker registry token spec fixes its shape.
"""

import base64
import binascii
import json
import logging

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.services import LoginRefused, LoginUnavailable
from trust.token_service import tokens

logger = logging.getLogger(__name__)
BASIC_CHALLENGE = 'Basic realm="Gatehouse"'


@never_cache
@require_GET
def notary_token(request: HttpRequest) -> JsonResponse:
    try:
        token_request = tokens.TokenRequest.parse(
            service=request.GET.get("service", ""), scopes=request.GET.getlist("scope")
        )
    except tokens.TokenRequestInvalid as error:
        return _error(400, "INVALID_REQUEST", str(error))
    user = None
    authorization = request.headers.get("Authorization", "")
    if authorization:
        username, password = _basic_credentials(authorization) or ("", "")
        if username:
            try:
                user = tokens.user_for_credentials(username, password, request=request)
            except LoginUnavailable as error:  # the directory cannot check the password
                response = _error(503, "UNAVAILABLE", str(error))
                response["Retry-After"] = str(error.retry_after)
                return response
            except LoginRefused as error:  # locked out, or too many password checks
                response = _error(429, "TOOMANYREQUESTS", str(error))
                response["Retry-After"] = str(error.retry_after)
                return response
        account = request.GET.get("account")
        if user is None or (account and account.lower() != user.username.lower()):
            shown = json.dumps(username[:150])
            logger.info("Notary token refused: wrong credentials for %s", shown)
            response = _error(401, "UNAUTHORIZED", "wrong credentials")
            response["WWW-Authenticate"] = BASIC_CHALLENGE
            return response
    issued = tokens.token_issue(identity=user, request=token_request)
    return JsonResponse(issued.as_response())


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon and username else None


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"errors": [{"code": code, "message": message}]}, status=status)


# Mounted by gatehouse/urls.py as ``path("auth/token", include("trust.token_service.views"))``.
urlpatterns = [path("", notary_token, name="notary-token")]
