import base64
import json
import urllib.parse

import pytest
from plait.secrets._masking import MASK, Masker

SECRET = "s3cr3t-Tok/en+42"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        json.dumps(SECRET)[1:-1],
        urllib.parse.quote(SECRET, safe=""),
        urllib.parse.quote_plus(SECRET),
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode(),
    ],
)
def test_each_form_is_masked(form: str) -> None:
    masker = Masker([SECRET])
    assert masker.mask(f"before {form} after") == f"before {MASK} after"


@pytest.mark.parametrize("prefix", ["", "a", "ab", "abc", "Authorization: Basic "])
def test_secret_inside_a_longer_base64_string_is_masked_at_every_alignment(prefix: str) -> None:
    masker = Masker([SECRET])
    encoded = base64.b64encode(f"{prefix}{SECRET}:trailer".encode()).decode()
    masked = masker.mask(encoded)
    assert MASK in masked
    # What is left cannot be decoded back into the secret.
    assert SECRET not in base64.b64decode(masked.replace(MASK, "") + "===", validate=False).decode(
        "latin-1"
    )


def test_json_escaped_secret_with_quotes_and_newlines() -> None:
    secret = 'pa"ss\nword\\x'
    masker = Masker([secret])
    text = json.dumps({"password": secret})
    assert secret not in masker.mask(text)
    assert json.dumps(secret)[1:-1] not in masker.mask(text)


def test_multiline_secret_lines_are_masked_one_by_one() -> None:
    pem = "\n".join(
        [
            "-----BEGIN KEY-----",
            "MIIBVwIBADANBgkqhkiG9w0BAQEF",
            "AASCAUEwggE9AgEAAkEA",
            "-----END KEY-----",
        ]
    )
    masker = Masker([pem])
    log_line = "loaded key line MIIBVwIBADANBgkqhkiG9w0BAQEF ok"
    assert "MIIBVwIBADANBgkqhkiG9w0BAQEF" not in masker.mask(log_line)


def test_values_nested_in_data_are_masked_including_keys() -> None:
    masker = Masker([SECRET])
    data = {"a": [SECRET, {"b": f"x{SECRET}y"}], SECRET: 1, "n": 3}
    assert masker.mask_value(data) == {"a": [MASK, {"b": f"x{MASK}y"}], MASK: 1, "n": 3}


def test_longest_match_wins_when_values_overlap() -> None:
    masker = Masker(["abcdef", "abcdefghij"])
    assert masker.mask("xx abcdefghij yy") == f"xx {MASK} yy"


def test_too_short_values_are_not_masked_and_empty_masker_is_identity() -> None:
    masker = Masker(["ab"])
    assert not masker
    assert masker.mask("ab cd") == "ab cd"
    assert Masker().mask_value({"k": "v"}) == {"k": "v"}


def test_regex_metacharacters_in_secrets_are_literal() -> None:
    masker = Masker(["a.b*c(d)"])
    assert masker.mask("a.b*c(d) axbbbcd") == f"{MASK} axbbbcd"
