"""Signatures checked by the independent `standardwebhooks` implementation, and on the wire."""

import base64
import os
import time

import orjson
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from models.settings import Connector, WorkflowStep
from streams.core.request import InvalidRequest, build_request
from streams.core.resolution import Endpoint
from streams.http.signing import sign, signature_headers
from streams.http.webhook_client import WebhookClient
from tests.receiver import RecordingReceiver, Reply


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def test_a_signature_verifies_with_the_reference_implementation() -> None:
    secret = new_secret()
    body = orjson.dumps({"Value": {"id": "o-1"}, "ReturnOrderFormId": "r-1"})
    now = int(time.time())
    headers = signature_headers("delivery-1", now, body, [secret])
    assert headers["webhook-id"] == "delivery-1"
    assert headers["webhook-timestamp"] == str(now)
    assert Webhook(secret).verify(body, headers) == orjson.loads(body)


def test_rotation_sends_one_signature_per_secret_and_each_verifies() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"a":1}'
    headers = signature_headers("d", int(time.time()), body, [old, new])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_a_tampered_body_does_not_verify() -> None:
    secret = new_secret()
    headers = signature_headers("d", int(time.time()), b'{"a":1}', [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)


def test_known_vector() -> None:
    # From the Standard Webhooks spec's example secret and message.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    "bad", ["nope", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()]
)
def test_invalid_secrets_are_rejected_in_settings(bad: str) -> None:
    with pytest.raises(ValueError, match="signing secret"):
        Connector(host="https://erp.example.com", signing_secrets=[bad])


def test_a_secret_reference_is_resolved_and_checked_when_the_request_is_built() -> None:
    connector = Connector(host="https://erp.example.com", signing_secrets=["${SIGNING}"])
    endpoint = Endpoint(url="https://erp.example.com", connector=connector)
    secret = new_secret()
    request = build_request(
        WorkflowStep(),
        endpoint,
        {"id": "o"},
        None,
        "d",
        secrets={("t", "SIGNING"): secret},
        max_attempts=4,
        tenant_id="t",
    )
    assert request.signing_secrets == (secret,)
    assert secret not in repr(request)
    with pytest.raises(InvalidRequest, match="signing secret"):
        build_request(
            WorkflowStep(),
            endpoint,
            {"id": "o"},
            None,
            "d",
            secrets={("t", "SIGNING"): "x"},
            max_attempts=4,
            tenant_id="t",
        )


async def test_every_attempt_is_signed_on_the_wire(receiver: RecordingReceiver) -> None:
    secret = new_secret()
    receiver.route("/signed", Reply(status=503), Reply(status=200))
    connector = Connector(host=receiver.url("/signed"), signing_secrets=[secret])
    request = build_request(
        WorkflowStep(),
        Endpoint(url=receiver.url("/signed"), connector=connector),
        {"id": "o-1"},
        "r-1",
        "delivery-7",
        secrets={},
        max_attempts=4,
    )
    async with WebhookClient(retry_delays=(0.01,) * 3) as client:
        delivery = await client.deliver(request)
    assert delivery.ok and delivery.attempts == 2
    for sent in receiver.requests_for("/signed"):
        headers = {k.lower(): v for k, v in sent.headers.items()}
        assert headers["webhook-id"] == "delivery-7" == headers["idempotency-key"]
        Webhook(secret).verify(sent.body, headers)
