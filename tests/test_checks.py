"""The checks of support/questions.py that cannot be fooled by an encoding, seen failing without a server."""

from __future__ import annotations

import base64
import json

import pytest

from support.questions import check_no_secret, secret_spellings

SECRET = "s3cret-signing-key-that-is-long-enough-0123"


@pytest.mark.parametrize("spelling", list(secret_spellings(SECRET)))
def test_a_secret_in_any_encoding_is_found(spelling):
    document = {"auth": {"algorithms": ["HS256"], "hint": secret_spellings(SECRET)[spelling]}}
    with pytest.raises(AssertionError, match="contains the signing secret"):
        check_no_secret(document, SECRET)


def test_a_secret_published_as_a_jwk_is_found_even_without_knowing_it():
    k = base64.urlsafe_b64encode(b"another secret").decode().rstrip("=")
    with pytest.raises(AssertionError, match="symmetric JSON Web Key"):
        check_no_secret({"keys": [{"kty": "oct", "kid": "main", "k": k}]}, SECRET)


def test_a_field_named_like_a_secret_is_found():
    with pytest.raises(AssertionError, match="named like secrets"):
        check_no_secret({"signing_key_id": "x"}, SECRET)


def test_a_clean_document_passes():
    check_no_secret(json.loads('{"auth_methods": ["bearer_header"], "algorithms": ["HS256"]}'), SECRET)
