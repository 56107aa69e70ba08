"""The reference backend with one planted defect in its HTTP API: the negative control for the
Schemathesis run (tests/test_http_fuzz.py) and the operator credential's tests.

    python -m tests.planted.http_defects --defect NAME [--fd N | --host H --port P] [--log-level L]

The same program as tests/planted/defective_backend.py (its registry, its helpers and its
main), with these defects registered too. `--list` prints them all.
"""

from __future__ import annotations

import functools
import json
import sys

from backend import auth
from tests.planted.defective_backend import DEFECTS, defect, main, original

__all__ = ["DEFECTS", "main"]


@defect("email-type-unchecked")
def plant_email_type_unchecked() -> None:
    """The email is taken for a string: a sign-up or sign-in without one, or with a number, is a 500 (TypeError)."""
    original(auth, "_email")
    invalid_request = original(auth, "InvalidRequest")

    def careless(body):
        value = body.get("email")
        if len(value) > 254 or not auth.EMAIL.fullmatch(value.strip()):
            raise invalid_request("email is malformed; expected an address like name@example.com")
        return value.strip()

    auth._email = careless


@defect("body-text-unchecked")
def plant_body_text_unchecked() -> None:
    """A request body's text goes to the hash and the database as it is: a NUL or a lone surrogate is a 500."""
    json_object = original(auth, "json_object")
    invalid_request = original(auth, "InvalidRequest")

    async def trusting(request):
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise invalid_request("the body is not valid JSON; expected a JSON object") from None
        if not isinstance(body, dict):
            raise invalid_request("the body is not a JSON object")
        return body

    trusting.__doc__ = json_object.__doc__
    auth.json_object = trusting
    from backend import account  # it imported the function by name: its copy too
    account.json_object = trusting


@defect("operator-credential-ignored")
def plant_operator_credential_ignored() -> None:
    """Every request counts as the operator's: anyone sets plans and roles and reads the health details."""
    operator_standing = original(auth, "operator_standing")

    @functools.wraps(operator_standing)
    def everyone(request, config):
        return auth.OPERATOR

    auth.operator_standing = everyone
    from backend import account
    account.operator_standing = everyone


if __name__ == "__main__":
    sys.exit(main())
