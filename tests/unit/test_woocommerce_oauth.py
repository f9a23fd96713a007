"""One-legged OAuth 1.0a as the WooCommerce gateway signs and the sandbox checks it, each against
published examples and against each other (two implementations: oauthlib, and the sandbox's
transcription of WooCommerce's PHP)."""

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from oauthlib.oauth1 import SIGNATURE_TYPE_QUERY, Client

from infrastructure.channels.woocommerce.auth import OAuth1Query, api_auth
from sandboxes.woocommerce.oauth import (
    OAuthCheck,
    Refusal,
    header_params,
    signature,
)

# OAuth Core 1.0a, appendix A.5 (the example RFC 5849 §1.2 retells): GET
# http://photos.example.net/photos?file=vacation.jpg&size=original, HMAC-SHA1.
PHOTOS = "http://photos.example.net/photos"
PHOTOS_PARAMS = {
    "file": "vacation.jpg",
    "size": "original",
    "oauth_consumer_key": "dpf43f3p2l4k3l03",
    "oauth_token": "nnch734d00sl2jdk",
    "oauth_nonce": "kllo9940pd9333jh",
    "oauth_timestamp": "1191242096",
    "oauth_signature_method": "HMAC-SHA1",
    "oauth_version": "1.0",
}
PHOTOS_SIGNATURE = "tR3+Ty81lMeYAr/Fid0kMTYa/WM="

# Twitter's documented request-token example: no token, as in WooCommerce's one-legged flow.
TWITTER = "https://api.twitter.com/oauth/request_token"
TWITTER_PARAMS = {
    "oauth_callback": "http://localhost:3005/the_dance/process_callback?service_provider_id=11",
    "oauth_consumer_key": "GDdmIQH6jhtmLUypg82g",
    "oauth_nonce": "QP70eNmVz8jvdPevU3oJD2AfF7R7odC2XJcn4XlZJqk",
    "oauth_signature_method": "HMAC-SHA1",
    "oauth_timestamp": "1272323042",
    "oauth_version": "1.0",
}
TWITTER_SIGNATURE = "8wUi7m5HFQy76nowoCThusfgB+Q="

KEY, SECRET = "ck_test", "cs_test"
STORE = "http://127.0.0.1:8080/wp-json/wc/v3/products"


def test_the_library_the_gateway_signs_with_reproduces_the_published_example():
    client = Client(
        "dpf43f3p2l4k3l03",
        client_secret="kd94hf93k423kf44",
        resource_owner_key="nnch734d00sl2jdk",
        resource_owner_secret="pfkkdhi9sl3r4s00",
        signature_type=SIGNATURE_TYPE_QUERY,
        nonce="kllo9940pd9333jh",
        timestamp="1191242096",
    )
    signed, _, _ = client.sign(f"{PHOTOS}?file=vacation.jpg&size=original", "GET")
    assert dict(parse_qsl(urlsplit(signed).query))["oauth_signature"] == PHOTOS_SIGNATURE


def test_the_sandboxs_check_reproduces_the_published_examples():
    assert signature("GET", PHOTOS, PHOTOS_PARAMS, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00") == (
        PHOTOS_SIGNATURE
    )
    secret = "MCD8BKwGdgPHvAuvgvz4EQpqDAtx89grbuNMRd7Eh98"
    assert signature("POST", TWITTER, TWITTER_PARAMS, secret) == TWITTER_SIGNATURE


def signed(method: str, url: str, auth: httpx.Auth) -> httpx.Request:
    request = httpx.Request(method, url)
    return next(auth.auth_flow(request))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_gateway_signature_is_one_the_sandbox_accepts(method):
    request = signed(method, f"{STORE}?sku=A%2CB,C&per_page=100", OAuth1Query(KEY, SECRET))
    params = dict(request.url.params)
    assert "consumer_secret" not in params  # over HTTP the secret never travels
    assert params["oauth_signature_method"] == "HMAC-SHA256"
    check = OAuthCheck({KEY: SECRET}.get)
    assert check.check(method, STORE, params) == KEY
    assert check.check(method, STORE, params) == Refusal(
        "Invalid nonce - nonce has already been used."
    )


def test_the_sandbox_refuses_what_woocommerce_refuses():
    params = dict(signed("GET", f"{STORE}?page=2", OAuth1Query(KEY, SECRET)).url.params)
    check = OAuthCheck({KEY: SECRET}.get)
    tampered = {**params, "page": "3"}
    assert check.check("GET", STORE, tampered) == Refusal(
        "Invalid signature - provided signature does not match."
    )
    assert check.check("POST", STORE, params) == Refusal(
        "Invalid signature - provided signature does not match."
    )
    assert OAuthCheck({KEY: "other"}.get).check("GET", STORE, params) == Refusal(
        "Invalid signature - provided signature does not match."
    )
    assert OAuthCheck({}.get).check("GET", STORE, params) == Refusal("Consumer key is invalid.")
    late = OAuthCheck({KEY: SECRET}.get, clock=lambda: float(params["oauth_timestamp"]) + 901)
    assert late.check("GET", STORE, params) == Refusal("Invalid timestamp.")
    plaintext = {**params, "oauth_signature_method": "PLAINTEXT"}
    assert check.check("GET", STORE, plaintext) == Refusal(
        "Invalid signature - signature method is invalid."
    )
    partial = {"oauth_consumer_key": KEY, "oauth_nonce": "n"}
    assert check.check("GET", STORE, partial) == Refusal(
        "Missing OAuth parameters oauth_timestamp, oauth_signature, oauth_signature_method",
        "woocommerce_rest_authentication_missing_parameter",
    )
    assert check.check("GET", STORE, {"page": "1"}) is None  # not an OAuth request


def test_oauth_parameters_may_come_in_an_authorization_header():
    header = 'OAuth realm="x", oauth_consumer_key="ck%20a", oauth_nonce=abc'
    assert header_params(header) == {"oauth_consumer_key": "ck a", "oauth_nonce": "abc"}
    assert header_params("Basic abc") == {}


def test_basic_credentials_over_https_and_oauth_over_http():
    assert isinstance(api_auth("https://shop.example", KEY, SECRET), httpx.BasicAuth)
    assert isinstance(api_auth("http://shop.example", KEY, SECRET), OAuth1Query)
    with pytest.raises(ValueError, match="starts with https://"):
        api_auth("ftp://shop.example", KEY, SECRET)
