"""Attacks that the security review tried (issue 8), each a test named for the attack.

State that must hold across flows and processes is tested on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import statistics
import time

import pytest
from sqlmodel import select

from conftest import DEMO, FlowActions, add_account, text_of
from test_oauth_support import at_pin, pin
from webapp import db, lockout, messages
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
    """Alternate ② checks on an unknown account (No.1) and a wrong birth date (No.2); their times."""
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
            data = actions.customer_data(birth_year="1999")
            started = time.perf_counter()
            response = actions.post("flow/customer", data, htmx=True)
            times.append(time.perf_counter() - started)
            assert (response.status_code == 204) == (number is not None)  # No.1 goes back to ①
    return unknown, mismatch


def test_unknown_and_wrong_identity_answers_take_the_same_time(app, customers):
    app.config.update(IDENTITY_CHECK_SECONDS=0.05, IDENTITY_CHECKS_PER_IP="10000 per minute")
    unknown, mismatch = _timed_identity_checks(app, 30)
    difference = abs(statistics.median(unknown) - statistics.median(mismatch))
    assert difference < 0.001, f"No.1 {statistics.median(unknown):.4f}s vs No.2 {statistics.median(mismatch):.4f}s"
    assert min(unknown + mismatch) >= 0.05


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
