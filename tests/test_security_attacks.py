"""Attacks that the security review tried (issue 8), each a test named for the attack.

State that must hold across flows and processes is tested on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import json
import statistics
import time

import pytest
from sqlmodel import select

from conftest import DEMO, CountingMismatch, FlowActions, add_account, register_client, text_of
from test_oauth_support import at_pin, pin
from webapp import create_app, db, lockout, messages
from webapp.corebanking import AccountKey

KEY = AccountKey("amami", "115", "1", "1100026")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_app(request):
    """The app on SQLite, then on PostgreSQL, with the demo customers."""
    app = request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
    for tenant, c in DEMO.items():
        add_account(app, tenant, **c)
    return app


def failures(app) -> int:
    with app.app_context():
        row = db.session().exec(select(lockout.AccountLock).where(lockout.AccountLock.number == KEY.number)).first()
        return row.failures if row else 0


def test_second_flow_passing_identity_keeps_pin_failures(any_app):
    """Flow A guesses PINs; flow B passes ② with the known birth date and phone; A keeps guessing.

    Before the fix B's correct ② reset the count, so 12 PINs were tried without a lock.
    """
    guesser = FlowActions(any_app, any_app.test_client(), "amami")
    at_pin(guesser)
    pages = []
    for round_ in range(3):
        for _ in range(4):
            pages.append(text_of(pin(guesser, "9999")))
        helper = FlowActions(any_app, any_app.test_client(), "amami")
        helper.start()
        helper.account()
        helper.customer()  # the right birth date and phone: passes or is refused, never resets
    evaluated = sum(messages.IDENTITY_MISMATCH in p or messages.LOCKED_NOW in p for p in pages)
    assert evaluated == 5
    assert sum(messages.LOCKED_NOW in p for p in pages) == 1
    assert failures(any_app) == 5
    html = text_of(pin(guesser, DEMO["amami"]["pin"]))  # the right PIN, too late
    assert messages.LOCKED_REASON in html


def test_reset_only_after_pin_passes_then_new_flows_start_from_zero(any_app):
    actions = FlowActions(any_app, any_app.test_client(), "amami")
    at_pin(actions)
    for _ in range(3):
        pin(actions, "9999")
    assert failures(any_app) == 3
    assert pin(actions).status_code == 303
    assert failures(any_app) == 0


# --- probing which accounts exist ------------------------------------------------------------------

def _timed_identity_checks(app, rounds: int) -> tuple[list[float], list[float]]:
    """Alternate ② checks on an unknown account (No.1) and a wrong birth date (No.2); the time the
    server takes to answer each (measured around the whole WSGI app, outside every middleware, so
    the test client's own work under a loaded machine does not blur it)."""
    served = []
    inner = app.wsgi_app

    def timed(environ, start_response):
        started = time.perf_counter()
        body = inner(environ, start_response)
        served.append(time.perf_counter() - started)
        return body

    app.wsgi_app = timed
    unknown, mismatch = [], []
    actions = FlowActions(app, app.test_client(), "amami")
    for i in range(rounds):
        for times, number in ((unknown, "9999999"), (mismatch, None)):
            if number is None and i % 4 == 0:
                with app.app_context():
                    lockout.unlock(db.session(), KEY)  # keep No.2 from turning into a lock
                    db.session().commit()
            actions.start()
            actions.account(number=number)
            actions.get("flow/customer")
            response = actions.post("flow/customer", actions.customer_data(birth_year="1999"), htmx=True)
            times.append(served[-1])
            assert (response.status_code == 204) == (number is not None)  # No.1 goes back to ①
    app.wsgi_app = inner
    return unknown, mismatch


def test_unknown_and_wrong_identity_answers_take_the_same_time(app, customers):
    """No.1 (unknown account) and No.2 (wrong birth date) leave the server within 1 ms of each other
    (medians), and never before IDENTITY_CHECK_SECONDS. Without the constant-time answer No.1 is
    1.5–2 ms slower in every run. A loaded machine blurs single runs (a sleeping thread wakes late),
    so up to five runs are made and one within 1 ms passes; a real difference fails them all."""
    from webapp.config import Defaults
    app.config.update(IDENTITY_CHECK_SECONDS=Defaults.IDENTITY_CHECK_SECONDS, IDENTITY_CHECKS_PER_IP="10000 per minute")
    differences = []
    for _ in range(5):
        unknown, mismatch = _timed_identity_checks(app, 40)
        assert min(unknown + mismatch) >= Defaults.IDENTITY_CHECK_SECONDS
        differences.append(statistics.median(unknown) - statistics.median(mismatch))
        if abs(differences[-1]) < 0.001:
            break
    assert abs(differences[-1]) < 0.001, f"No.1 − No.2 medians: {[round(d * 1000, 2) for d in differences]} ms"


def test_unknown_accounts_spend_the_address_budget_like_wrong_identities(app, customers):
    app.config.update(IDENTITY_CHECKS_PER_IP="4 per 10 minutes")
    actions = FlowActions(app, app.test_client(), "amami")
    answers = []
    for number in ("9999991", "9999992", "9999993", "9999994", "9999995"):
        actions.start()
        actions.account(number=number)
        answers.append(actions.customer(birth_year="1999"))
    assert [r.status_code for r in answers] == [303] * 4 + [429]
    assert messages.BUSY in text_of(answers[-1])


def test_unknown_accounts_spend_the_apps_failure_budget(app, customers):
    app.config.update(IDENTITY_FAILURES_PER_CLIENT="3 per 10 minutes")
    actions = FlowActions(app, app.test_client(), "amami")
    answers = []
    for i, number in enumerate(("9999991", "9999992", "9999993", "9999994")):
        actions.start()
        actions.account(number=number)
        answers.append(actions.customer(birth_year="1999", environ_base={"REMOTE_ADDR": f"198.51.100.{i}"}))
    assert [r.status_code for r in answers] == [303] * 3 + [429]


# --- one noisy client must not make 混雑 for everyone ------------------------------------------

def _get(client, path, address):
    return client.get(path, environ_base={"REMOTE_ADDR": address})


def test_theme_css_flood_from_one_address_leaves_others_served(app, client, customers):
    app.config.update(GLOBAL_REQUEST_LIMIT="10 per minute", REQUESTS_PER_IP="1000 per minute")
    theme = f"/amami/theme.{app.extensions['tenants']['amami'].theme_version}.css"
    assert all(_get(client, theme, "203.0.113.9").status_code == 200 for _ in range(50))
    other = app.test_client()
    assert _get(other, "/amami/faq", "198.51.100.1").status_code == 200
    token = other.post("/amami/oauth/token", data={"grant_type": "authorization_code", "code": "x"},
                       environ_base={"REMOTE_ADDR": "198.51.100.1"})
    assert token.status_code != 429


def test_noisy_address_is_refused_before_it_fills_the_service_ceiling(app, client, customers):
    app.config.update(GLOBAL_REQUEST_LIMIT="8 per minute", REQUESTS_PER_IP="5 per minute")
    noisy = [_get(client, "/amami/faq", "203.0.113.9").status_code for _ in range(20)]
    assert noisy == [200] * 5 + [429] * 15
    others = [_get(app.test_client(), "/amami/faq", f"198.51.100.{i}").status_code for i in range(3)]
    assert others == [200, 200, 200]  # only the noisy address's 5 served requests count toward the 8


def test_noisy_app_at_the_token_endpoint_is_refused_before_the_service_ceiling(app, client, customers):
    app.config.update(GLOBAL_REQUEST_LIMIT="8 per minute", TOKEN_REQUESTS_PER_CLIENT="5 per minute",
                      REQUESTS_PER_IP="1000 per minute")
    noisy = register_client(app, "amami")
    statuses = [client.post("/amami/oauth/token", data={"grant_type": "authorization_code", "code": "x"},
                            auth=(noisy["client_id"], noisy["client_secret"]),
                            environ_base={"REMOTE_ADDR": f"203.0.113.{i}"}).status_code for i in range(12)]
    assert statuses[:5] == [400] * 5 and statuses[5:] == [429] * 7
    quiet = register_client(app, "amami")
    response = client.post("/amami/oauth/token", data={"grant_type": "authorization_code", "code": "x"},
                           auth=(quiet["client_id"], quiet["client_secret"]))
    assert response.status_code == 400 and response.json["error"] == "invalid_grant"


def test_customers_get_no_rate_limit_headers(amami):
    for response in (amami.start(), amami.account(follow_redirects=True), amami.client.get("/amami/faq")):
        assert not [h for h in response.headers.keys() if h.lower().startswith(("x-ratelimit", "retry-after"))]


def test_service_ceiling_still_answers_busy(app, customers):
    app.config.update(GLOBAL_REQUEST_LIMIT="3 per minute")
    responses = [_get(app.test_client(), "/amami/faq", f"198.51.100.{i}") for i in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert messages.BUSY in text_of(responses[3])
    assert not [h for h in responses[3].headers.keys() if h.lower().startswith("x-ratelimit")]


# --- sandbox mode in production --------------------------------------------------------------------

@pytest.mark.parametrize("origin", ["https://renkei.example.jp", "https://203.0.113.7:8443"])
def test_sandbox_mode_refuses_to_start_on_a_public_https_origin(monkeypatch, tmp_path, origin):
    monkeypatch.setenv("FLASK_SANDBOX", "true")
    monkeypatch.setenv("FLASK_BASE_URL", origin)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.db")
    with pytest.raises(RuntimeError, match="FLASK_SANDBOX=true.*passes? the phone step|phone step without a call"):
        create_app()


@pytest.mark.parametrize("origin", ["http://127.0.0.1:5000", "https://localhost:8443", "https://127.0.0.1:9443",
                                    "https://[::1]:8443"])
def test_sandbox_mode_still_serves_demos_on_this_machine(monkeypatch, tmp_path, origin):
    monkeypatch.setenv("FLASK_SANDBOX", "true")
    monkeypatch.setenv("FLASK_BASE_URL", origin)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.db")
    assert create_app().config["SANDBOX"] is True


# --- lockout as a weapon: staff see who locks accounts ------------------------------------------------

def test_locking_accounts_is_logged_and_counted_per_address(app, runner, customers, caplog):
    app.config.update(IDENTITY_CHECKS_PER_IP="1000 per minute")
    add_account(app, "amami", **dict(DEMO["amami"], number="7700002"))
    for number, address in (("1100026", "203.0.113.9"), ("7700002", "203.0.113.9"), ("1100026", "198.51.100.4")):
        actions = FlowActions(app, app.test_client(), "amami")
        actions.start()
        actions.account(number=number)
        for _ in range(5):
            page = text_of(actions.customer(birth_year="1999", environ_base={"REMOTE_ADDR": address}))
    assert messages.LOCKED in page  # the third round found the account locked already: no new lock
    result = runner.invoke(args=["locks", "report", "--tenant", "amami"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["ip"], r["locks"], r["accounts"]) for r in lines] == [
        ("203.0.113.9", 2, ["115-1-1100026", "115-1-7700002"])]
    assert any("account locked" in r.getMessage() and "203.0.113.9" in r.getMessage() for r in caplog.records)


# --- the budgets under parallel requests ---------------------------------------------------------------

def _parallel_checks_on_many_accounts(app, n: int) -> tuple[int, int]:
    """n threads check a wrong identity at once, each on its own account, from one address:
    (#core evaluations, #refused by a budget)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from flask import g
    from werkzeug.exceptions import TooManyRequests

    from webapp.flow.identity import check_with_lockout
    from webapp.flow.models import Flow

    core_check, refused, lock = CountingMismatch(), 0, threading.Lock()
    barrier = threading.Barrier(n)

    def attempt(i):
        nonlocal refused
        flow = Flow(id=i + 1, tenant="amami", branch="115", account_type="1", account_number=f"{6000000 + i}",
                    client_id="c", handle_hash=f"h{i}", step="customer", redirect_uri="https://app.example/cb")
        with app.test_request_context("/amami/flow/customer", method="POST", environ_base={"REMOTE_ADDR": "203.0.113.9"}):
            g.tenant = app.extensions["tenants"]["amami"]
            barrier.wait()
            try:
                check_with_lockout(flow, "identity_check", core_check)
            except TooManyRequests:
                with lock:
                    refused += 1

    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(attempt, range(n)))
    return core_check.calls, refused


def _budgets_used(app) -> dict:
    from sqlmodel import Session, select

    from webapp.budgets import CheckBudget

    with Session(app.extensions["db_engine"]) as s:
        return {b.key.split(":")[0]: b.used for b in s.exec(select(CheckBudget)).all()}


def test_hundred_parallel_checks_from_one_address_evaluate_exactly_the_budget(any_app):
    any_app.config.update(IDENTITY_CHECKS_PER_IP="30 per 10 minutes")
    assert _parallel_checks_on_many_accounts(any_app, 100) == (30, 70)
    # the 70 refused gave back what they took of the others (PostgreSQL: by a statement of their own)
    assert _budgets_used(any_app) == {"ip": 30, "client": 30, "union": 30}


def test_hundred_parallel_failures_of_one_app_evaluate_exactly_its_budget(any_app):
    any_app.config.update(IDENTITY_CHECKS_PER_IP="1000 per 10 minutes", IDENTITY_FAILURES_PER_CLIENT="20 per 10 minutes")
    assert _parallel_checks_on_many_accounts(any_app, 100) == (20, 80)
    assert _budgets_used(any_app) == {"ip": 20, "client": 20, "union": 20}
