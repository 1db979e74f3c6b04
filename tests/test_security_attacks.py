"""Attacks that the security review tried (issue 8), each a test named for the attack.

State that must hold across flows and processes is tested on SQLite and on PostgreSQL.
"""
from __future__ import annotations

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
