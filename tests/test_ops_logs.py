"""The server log (webapp/logs.py): one JSON object a line, with the flow's correlation id, and
never a PIN, a bearer token or a full phone number (ASVS 16.2.5)."""
from __future__ import annotations

import io
import json
import logging

import pytest

from conftest import DEMO
from test_oauth_support import at_pin, authorized, exchange, latest_flow, pin
from webapp.logs import JsonFormatter, mask


@pytest.fixture
def server_log():
    """Everything logged at INFO and above while the test runs, formatted as production does:
    `server_log()` gives the lines so far."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: stream.getvalue().splitlines()
    root.removeHandler(handler)
    root.setLevel(old_level)


def parsed(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines]  # each line is one JSON object, or this fails


def test_log_lines_are_json_with_the_flows_correlation_id(amami, server_log):
    at_pin(amami)
    pin(amami, "9999")
    flow_id = latest_flow(amami.app).id
    records = parsed(server_log())
    assert records, "the flow logged nothing"
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
    pin_failure = next(r for r in records if r.get("event") == "pin_check")
    assert pin_failure["correlation_id"] == f"flow-{flow_id}"
    assert pin_failure["result"] == "fail" and pin_failure["logger"] == "renkei.events"
    assert pin_failure["request_id"]
    started = next(r for r in records if r.get("event") == "flow_started")
    assert started["correlation_id"] == f"flow-{flow_id}"


def test_logs_never_hold_the_pin_the_phone_number_or_a_bearer_token(amami, server_log):
    code = authorized(amami)["code"]  # ①–⑥ with the PIN and the phone number
    token = exchange(amami, code).get_json()["access_token"]
    endpoint_response = amami.client.get("/amami/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})
    assert endpoint_response.status_code == 200
    amami.client.get("/amami/api/v1/accounts", headers={"Authorization": "Bearer not-a-real-token-123"})
    lines = server_log()
    assert len(lines) > 5
    # ids are random hex: leave them out of the search for a four-digit PIN
    searched = "\n".join(json.dumps({k: v for k, v in json.loads(line).items()
                                     if k not in ("request_id", "correlation_id", "time")}) for line in lines)
    phone = DEMO["amami"]["phone"]
    assert DEMO["amami"]["pin"] not in searched
    assert phone not in searched and phone[1:] not in searched
    assert token not in searched and "not-a-real-token-123" not in searched


def test_api_interaction_id_is_the_log_lines_request_id(amami, server_log):
    sent = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    response = amami.client.get("/amami/api/v1/accounts", headers={"x-fapi-interaction-id": sent})
    assert response.headers["x-fapi-interaction-id"] == sent
    records = parsed(server_log())
    assert any(r.get("screen") == "API" and r["request_id"] == sent for r in records)


def test_formatter_masks_phone_numbers_and_bearer_credentials():
    assert mask("call from 09011113333 and +819011113333") == "call from 090****3333 and +81****3333"
    assert mask("to 0120-123-456?") == "to 0120-123-456?"  # nine digits: not a number to hide
    assert mask("Authorization: Bearer abc.DEF-123") == "Authorization: Bearer [redacted]"
    assert mask("account 115-1-1100026 on 2026-11-18") == "account 115-1-1100026 on 2026-11-18"
    record = logging.LogRecord("renkei.x", logging.WARNING, __file__, 1, "from %s", ("09011113333",), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "from 090****3333" and line["level"] == "WARNING" and line["logger"] == "renkei.x"


def test_a_line_keeps_its_texts_and_numbers_as_written_and_masks_what_only_an_extra_field_holds():
    """Texts with nothing to mask are written as they are (non-ASCII unescaped), masking reaches the
    extra fields too (BEARER in capitals, a number with +81), and a value orjson refuses (an int
    beyond 64 bits) still gives a line."""
    record = logging.LogRecord("renkei.events", logging.INFO, __file__, 1, "%s %s %s", ("①", "submit", "ok"), None)
    record.__dict__.update(tenant="amami", screen="①", detail="BEARER tok.en", caller="+819011113333", flow_id=12,
                           big=1 << 70, nothing=None)
    text = JsonFormatter().format(record)
    line = json.loads(text)
    assert "\n" not in text and "①" in text  # one line, not \u2460
    assert line["message"] == "① submit ok" and line["tenant"] == "amami" and line["screen"] == "①"
    assert line["detail"] == "BEARER [redacted]" and line["caller"] == "+81****3333"
    assert line["flow_id"] == 12 and line["big"] == 1 << 70 and line["nothing"] is None
