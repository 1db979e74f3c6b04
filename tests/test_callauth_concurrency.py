"""The call confirmation is atomic: real parallel threads, on SQLite and on PostgreSQL.

50 polls and 5 deliveries of the same webhook at once confirm the attempt exactly once; re-dials
with new CallSids confirm once too; parallel 「確定する」 move the flow on once.
"""
from __future__ import annotations

import threading

import pytest

from conftest import DEMO, FlowActions, add_account
from test_callauth_support import (PHONE_E164, WEBHOOK, attempts, call_log, e164, flows, inbound_calls, log_rows,
                                   pool_number_on, provider_params, to_call_screen)
from webapp.callauth import twilio

COOKIE = "renkei"


def session_cookie(actions) -> tuple[str, str]:
    for name in (COOKIE, "__Host-" + COOKIE):
        cookie = actions.client.get_cookie(name)
        if cookie is not None:
            return name, cookie.value
    raise AssertionError("no session cookie")


def clone_browser(app, cookie):
    client = app.test_client()
    client.set_cookie(cookie[0], cookie[1])
    return client


def run_all(jobs: list) -> list:
    """Start every job at the same instant (barrier) in its own thread; their results."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(i, job):
        barrier.wait()
        try:
            results[i] = job()
        except Exception as e:  # pragma: no cover - asserted below
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    return results


def at_call_screen(app):
    actions = FlowActions(app, app.test_client(), "amami")
    page = to_call_screen(actions)
    return actions, e164(pool_number_on(page))


def signed(app, params):
    return {"X-Twilio-Signature": twilio.compute_signature(app.config["BASE_URL"] + WEBHOOK, params.items(),
                                                            app.config["TELEPHONY_AUTH_TOKEN"])}


def polls_and_duplicate_webhooks_confirm_once(app):
    actions, number = at_call_screen(app)
    cookie = session_cookie(actions)
    params = provider_params(PHONE_E164["amami"], number)
    headers = signed(app, params)

    def poll():
        r = clone_browser(app, cookie).get("/amami/flow/call/status", headers={"HX-Request": "true"})
        return ("poll", r.status_code, r.get_data(as_text=True))

    def webhook():
        r = app.test_client().post(WEBHOOK, data=params, headers=headers)
        return ("webhook", r.status_code, r.get_data(as_text=True))

    results = run_all([poll] * 50 + [webhook] * 5)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert all(status == 200 for _, status, _ in results)
    assert all('<Response><Reject reason="busy"/></Response>' in body for kind, _, body in results if kind == "webhook")
    for kind, _, body in results:
        if kind == "poll":
            assert ("認証先電話番号へのお電話をお待ちしています。" in body) != ("着信を確認しました。" in body)
    [attempt] = attempts(app)
    assert attempt.state == "confirmed" and attempt.call_sid == params["CallSid"]
    assert len(inbound_calls(app)) == 1
    assert [r.result for r in call_log(app, "inbound_call")] == ["ok"]
    # and the customer goes on exactly once
    assert actions.post("flow/call", {}).headers["Location"].endswith("/amami/flow/pin")


def test_fifty_polls_and_five_duplicate_webhooks_confirm_once_sqlite(app, customers):
    polls_and_duplicate_webhooks_confirm_once(app)


@pytest.mark.postgres
def test_fifty_polls_and_five_duplicate_webhooks_confirm_once_postgres(pg_app):
    add_account(pg_app, "amami", **DEMO["amami"])
    polls_and_duplicate_webhooks_confirm_once(pg_app)


def redials_confirm_once(app):
    actions, number = at_call_screen(app)
    calls = [provider_params(PHONE_E164["amami"], number) for _ in range(8)]
    results = run_all([lambda p=p: app.test_client().post(WEBHOOK, data=p, headers=signed(app, p)).status_code
                       for p in calls])
    assert results == [200] * 8
    assert [a.state for a in attempts(app)] == ["confirmed"]
    outcomes = sorted(r.detail.split()[0] for r in call_log(app, "inbound_call"))
    assert outcomes == ["matched"] + ["repeat"] * 7


def test_parallel_redials_confirm_once_sqlite(app, customers):
    redials_confirm_once(app)


@pytest.mark.postgres
def test_parallel_redials_confirm_once_postgres(pg_app):
    add_account(pg_app, "amami", **DEMO["amami"])
    redials_confirm_once(pg_app)


def parallel_confirm_presses_go_on_once(app):
    actions, number = at_call_screen(app)
    params = provider_params(PHONE_E164["amami"], number)
    app.test_client().post(WEBHOOK, data=params, headers=signed(app, params))
    cookie = session_cookie(actions)

    def press():
        r = clone_browser(app, cookie).post("/amami/flow/call", data={"csrf_token": actions.csrf})
        return r.status_code, r.headers.get("Location", "")

    results = run_all([press] * 10)
    assert not [r for r in results if isinstance(r, Exception)], results
    # one press wins; the others carried the handle the winner rotated: they go to ⑤ or find no flow
    assert len([r for r in results if r[0] == 303 and r[1].endswith("/flow/pin")]) >= 1, results
    assert all(r[0] == 400 or (r[0] == 303 and r[1].endswith("/flow/pin")) for r in results), results
    assert [f.step for f in flows(app)] == ["pin"]
    assert [a.state for a in attempts(app)] == ["used"]
    assert len([r for r in log_rows(app) if r.event == "call_confirm" and r.result == "ok"]) == 1


def test_parallel_confirm_presses_go_on_once_sqlite(app, customers):
    parallel_confirm_presses_go_on_once(app)


@pytest.mark.postgres
def test_parallel_confirm_presses_go_on_once_postgres(pg_app):
    add_account(pg_app, "amami", **DEMO["amami"])
    parallel_confirm_presses_go_on_once(pg_app)


def parallel_retries_open_one_new_window(app):
    """「もう一度電話番号認証を行う」 pressed in many tabs at once: one new window, one renewal counted."""
    import datetime as dt
    from webapp import clock

    actions, number = at_call_screen(app)
    clock.set_now(clock.now() + dt.timedelta(seconds=121))
    cookie = session_cookie(actions)

    def press():
        r = clone_browser(app, cookie).post("/amami/flow/call/retry", data={"csrf_token": actions.csrf})
        return r.status_code, r.headers.get("Location", "")

    results = run_all([press] * 10)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert all(r == (303, "/amami/flow/call") or r[1].endswith("/amami/flow/call") for r in results), results
    [attempt] = attempts(app)
    assert attempt.attempts == 2 and attempt.state == "waiting"
    assert len([r for r in log_rows(app) if r.event == "call_attempt_renewed"]) == 1


def test_parallel_retries_open_one_new_window_sqlite(app, customers):
    parallel_retries_open_one_new_window(app)


@pytest.mark.postgres
def test_parallel_retries_open_one_new_window_postgres(pg_app):
    add_account(pg_app, "amami", **DEMO["amami"])
    parallel_retries_open_one_new_window(pg_app)


def parallel_first_call_screens_open_one_attempt(app):
    """④ loaded in many tabs at once, the first time: one attempt with one window and one log row;
    every tab shows that attempt's number (callauth.open_shown_attempt)."""
    from test_callauth_support import to_phone_screen

    actions = FlowActions(app, app.test_client(), "amami")
    to_phone_screen(actions)
    assert actions.post("flow/phone", {}).status_code == 303
    cookie = session_cookie(actions)

    def load():
        r = clone_browser(app, cookie).get("/amami/flow/call")
        return r.status_code, e164(pool_number_on(r)) if r.status_code == 200 else None

    results = run_all([load] * 10)
    assert not [r for r in results if isinstance(r, Exception)], results
    [attempt] = attempts(app)
    assert attempt.state == "waiting"
    assert results == [(200, attempt.pool_number)] * 10, results
    assert len([r for r in log_rows(app) if r.event == "call_attempt_started"]) == 1


def test_parallel_first_call_screens_open_one_attempt_sqlite(app, customers):
    parallel_first_call_screens_open_one_attempt(app)


@pytest.mark.postgres
def test_parallel_first_call_screens_open_one_attempt_postgres(pg_app):
    add_account(pg_app, "amami", **DEMO["amami"])
    parallel_first_call_screens_open_one_attempt(pg_app)
