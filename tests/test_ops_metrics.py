"""What operators watch (webapp/metrics.py, webapp/health.py): /metrics behind a bearer token,
the domain counts, the outbox backlog read at scrape time, /readyz and a bare /healthz.
Counts here are the test process's own (no PROMETHEUS_MULTIPROC_DIR), so tests compare deltas;
test_ops_processes.py checks that two gunicorn workers add up."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import Session

from conftest import make_app, text_of
from test_oauth_support import at_pin, pin
from webapp import clock, db
from webapp.mail.models import FAILED, PENDING, MailOutbox

METRICS_TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def app_config():
    return {"METRICS_TOKEN": METRICS_TOKEN}


def scrape(client) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, text_of(response)
    assert response.mimetype == "text/plain"
    return text_of(response)


def value(text: str, name: str, **labels) -> float:
    """The sample `name{labels…}` (labels in any order, all given ones must match); 0 when absent."""
    total = 0.0
    for line in text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def test_metrics_are_not_served_while_no_token_is_configured(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    assert app.test_client().get("/metrics").status_code == 404
    app.extensions["db_engine"].dispose()


def test_metrics_refuse_a_request_without_the_bearer_token(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"}).status_code == 401


def test_metrics_count_requests_by_endpoint_and_status_and_time_them(client):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    client.get("/amami/flow/no-such-screen")
    after = scrape(client)
    assert value(after, "renkei_http_requests_total", endpoint="healthz", method="GET", status="200") \
        - value(before, "renkei_http_requests_total", endpoint="healthz", method="GET", status="200") == 3
    assert value(after, "renkei_http_requests_total", endpoint="unmatched", status="404") \
        - value(before, "renkei_http_requests_total", endpoint="unmatched", status="404") == 1
    assert value(after, "renkei_http_request_duration_seconds_count", endpoint="healthz") \
        - value(before, "renkei_http_request_duration_seconds_count", endpoint="healthz") == 3
    assert 'renkei_http_request_duration_seconds_bucket{endpoint="healthz",le="0.05"}' in after


def test_a_method_a_client_invents_is_counted_as_other(client):
    before = scrape(client)
    client.open("/healthz", method="BREW")
    client.open("/healthz", method="PROPFIND")
    after = scrape(client)
    assert "BREW" not in after and "PROPFIND" not in after
    assert value(after, "renkei_http_requests_total", method="other", status="405") \
        - value(before, "renkei_http_requests_total", method="other", status="405") == 2


def test_metrics_count_flows_started_steps_and_identity_results(amami):
    before = scrape(amami.client)
    at_pin(amami)  # ① ② (identity ok), then stood at ⑤
    assert pin(amami, "9999").status_code == 200  # a wrong PIN
    assert pin(amami).status_code == 303  # the right one: on to ⑥
    after = scrape(amami.client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("renkei_flows_started_total", tenant="amami") == 1
    assert delta("renkei_flow_step_entries_total", tenant="amami", step="account") == 1
    assert delta("renkei_flow_step_entries_total", tenant="amami", step="phone") == 1
    assert delta("renkei_flow_step_entries_total", tenant="amami", step="consent") == 1
    assert delta("renkei_identity_checks_total", tenant="amami", screen="SOA202", result="ok") == 1
    assert delta("renkei_identity_checks_total", tenant="amami", screen="SOA211", result="fail") == 1
    assert delta("renkei_identity_checks_total", tenant="amami", screen="SOA211", result="ok") == 1
    assert delta("renkei_events_total", tenant="amami", screen="OAUTH", event="flow_started", result="ok") == 1


def test_metrics_count_a_lock_and_the_refusals_after_it(amami):
    before = scrape(amami.client)
    amami.start()
    amami.account()
    for _ in range(6):  # the fifth wrong birth date locks the account; the sixth meets the lock
        amami.customer(birth_year="1999")
    after = scrape(amami.client)
    assert value(after, "renkei_accounts_locked_total", tenant="amami") \
        - value(before, "renkei_accounts_locked_total", tenant="amami") == 1
    assert value(after, "renkei_identity_checks_total", screen="SOA202", result="fail") \
        - value(before, "renkei_identity_checks_total", screen="SOA202", result="fail") == 5
    assert value(after, "renkei_identity_checks_total", screen="SOA202", result="locked") \
        - value(before, "renkei_identity_checks_total", screen="SOA202", result="locked") == 1


def test_metrics_count_flows_abandoned_by_cancel_at_their_step(amami):
    before = scrape(amami.client)
    amami.start()
    amami.account()
    amami.get("flow/customer")
    assert amami.post("flow/cancel", {"confirm": "yes"}).status_code == 303
    after = scrape(amami.client)
    assert value(after, "renkei_flows_ended_total", tenant="amami", step="customer", outcome="cancelled") \
        - value(before, "renkei_flows_ended_total", tenant="amami", step="customer", outcome="cancelled") == 1


def test_metrics_count_webhook_results(client):
    before = scrape(client)
    assert client.post("/telephony/inbound", data={"CallSid": "CA" + "0" * 32}).status_code == 403
    after = scrape(client)
    assert value(after, "renkei_telephony_webhook_total", result="forbidden") \
        - value(before, "renkei_telephony_webhook_total", result="forbidden") == 1


def _outbox_row(flow_id: int, state: str, created_minutes_ago: int, due: bool) -> MailOutbox:
    now = clock.now()
    return MailOutbox(tenant="amami", flow_id=flow_id, kind="consent_completed", sender="a@example.jp",
                      recipient="b@example.jp", subject="s", body="b", message_id=f"<{flow_id}@example.jp>",
                      state=state, next_attempt_at=now + dt.timedelta(minutes=-1 if due else 5),
                      created_at=now - dt.timedelta(minutes=created_minutes_ago))


def test_metrics_show_the_mail_outbox_backlog_read_at_scrape_time(app, client):
    assert value(scrape(client), "renkei_mail_outbox_pending") == 0
    with app.app_context(), Session(db.engine()) as s:
        s.add_all([_outbox_row(1, PENDING, 30, due=True), _outbox_row(2, PENDING, 2, due=False),
                   _outbox_row(3, FAILED, 90, due=False)])
        s.commit()
    text = scrape(client)
    assert value(text, "renkei_mail_outbox_pending") == 2
    assert value(text, "renkei_mail_outbox_due") == 1
    assert value(text, "renkei_mail_outbox_failed") == 1
    assert value(text, "renkei_mail_outbox_oldest_pending_seconds") == 30 * 60
    assert value(text, "renkei_mail_outbox_scrape_ok") == 1


# --- /healthz and /readyz -------------------------------------------------------------------------

def test_readyz_says_database_ok_and_redis_ok_or_not_configured(app, client):
    response = client.get("/readyz")
    assert response.status_code == 200
    redis = "ok" if app.config.get("REDIS_URL") else "not configured"  # the --engines=postgres app has Redis
    assert response.get_json() == {"database": "ok", "redis": redis}


@pytest.mark.postgres
def test_readyz_checks_postgres_and_redis_when_configured(pg_url):
    app = make_app(pg_url, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0")
    response = app.test_client().get("/readyz")
    app.extensions["db_engine"].dispose()
    assert response.status_code == 200
    assert response.get_json() == {"database": "ok", "redis": "ok"}


def _unready_app(tmp_path, **config):
    from conftest import TEST_SECRET
    from webapp import create_app

    return create_app({"TESTING": True, "SECRET_KEY": TEST_SECRET, "SANDBOX": True,
                       "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", **config})


def test_readyz_answers_503_naming_the_database_when_it_cannot_be_reached(tmp_path):
    app = _unready_app(tmp_path, DATABASE_URL="postgresql://postgres@127.0.0.1:1/renkei")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"].startswith("unreachable") and body["redis"] == "not configured"
    assert "127.0.0.1:1" not in response.get_data(as_text=True)  # never the URL


def test_readyz_answers_503_naming_redis_when_it_cannot_be_reached(tmp_path):
    app = _unready_app(tmp_path, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "ok"
    assert response.get_json()["redis"].startswith("unreachable")


def test_healthz_stays_bare_even_with_the_database_down(tmp_path):
    app = _unready_app(tmp_path, DATABASE_URL="postgresql://postgres@127.0.0.1:1/renkei")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and text_of(response) == "ok"
