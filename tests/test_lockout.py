"""Lockout: 5 consecutive failures (② and ⑤ together) lock API連携認証 for the account until 00:00 JST; B84 after."""
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import g
from sqlmodel import select

from conftest import CountingMismatch, FlowActions, add_account, text_of
from webapp import clock, db, lockout, messages
from webapp.corebanking import AccountKey
from webapp.flow.identity import check_with_lockout
from webapp.flow.models import Flow
from webapp.oplog import OperationLog

KEY = AccountKey("amami", "115", "1", "1100026")


def wrong(flow_actions):
    return text_of(flow_actions.customer(birth_year="1999"))


def later_flow(flow_actions, at):
    """Hours later the old flow has timed out: the customer starts again from the app."""
    clock.set_now(at)
    flow_actions.start()
    flow_actions.account()
    return flow_actions


@pytest.fixture
def at_customer(amami):
    amami.start()
    amami.account()
    return amami


def test_passing_customer_screen_keeps_earlier_failures(at_customer):
    # SPEC §3: only a completed authentication (⑤ passed) resets the count, not a passed ②.
    for _ in range(4):
        assert messages.IDENTITY_MISMATCH in wrong(at_customer)
    assert at_customer.customer().status_code == 303
    with at_customer.app.app_context():
        assert not lockout.is_locked(db.session(), KEY, 5)
        row = db.session().exec(select(lockout.AccountLock)).one()
        assert row.failures == 4


def test_fifth_consecutive_failure_gets_error_3(at_customer):
    for _ in range(4):
        assert messages.IDENTITY_MISMATCH in wrong(at_customer)
    html = wrong(at_customer)
    assert messages.LOCKED_NOW in html
    assert messages.LOCKED_REASON not in html


def test_sixth_attempt_gets_b84_even_with_correct_data(at_customer):
    for _ in range(5):
        wrong(at_customer)
    html = text_of(at_customer.customer())
    assert messages.LOCKED in html and "理由コードはB84です。" in html


def test_locked_account_does_not_ask_core_banking(app, at_customer, monkeypatch):
    for _ in range(5):
        wrong(at_customer)
    calls = []
    core = app.extensions["core_banking"]
    monkeypatch.setattr(core, "check_identity", lambda *a, **k: calls.append(a))
    assert "B84" in text_of(at_customer.customer())
    assert calls == []


def test_attempts_while_locked_do_not_extend_the_lock(at_customer):
    for _ in range(5):
        wrong(at_customer)
    later_flow(at_customer, dt.datetime(2026, 11, 18, 23, 58, tzinfo=clock.JST))
    for _ in range(3):
        assert "B84" in text_of(at_customer.customer())
    clock.set_now(dt.datetime(2026, 11, 19, 0, 2, tzinfo=clock.JST))  # after the 00:00-00:01 maintenance window
    assert at_customer.customer().status_code == 303


def test_lock_lifts_at_midnight_jst_not_before(at_customer):
    for _ in range(5):
        wrong(at_customer)
    later_flow(at_customer, dt.datetime(2026, 11, 18, 23, 59, 59, tzinfo=clock.JST))
    assert "B84" in text_of(at_customer.customer())
    with at_customer.app.app_context():
        clock.set_now(dt.datetime(2026, 11, 19, 0, 0, 1, tzinfo=clock.JST))
        assert not lockout.is_locked(db.session(), KEY, 5)


def test_lock_is_per_account_other_accounts_unaffected(app, at_customer):
    add_account(app, "amami", branch="115", account_type="4", number="1100026", name_kana="ｱ",
                birth_date=dt.date(1980, 1, 1), phone="09011113333", pin="1234")
    for _ in range(5):
        wrong(at_customer)
    other = FlowActions(app, app.test_client(), "amami")
    other.start()
    other.account(account_type="4")
    assert other.customer().status_code == 303


def test_lock_is_per_union(app, client, customers):
    add_account(app, "maruhachi", branch="115", account_type="1", number="1100026", name_kana="ｱ",
                birth_date=dt.date(1980, 1, 1), phone="09011113333", pin="1234")
    a = FlowActions(app, client, "amami")
    a.start(), a.account()
    for _ in range(5):
        wrong(a)
    m = FlowActions(app, app.test_client(), "maruhachi")
    m.start()
    m.account(branch="115", number="1100026")
    assert m.customer(birth_year="1980", birth_month="01", birth_day="01", phone="09011113333").status_code == 303


def test_threshold_is_the_unions_configuration(app, at_customer):
    import dataclasses
    tenants = app.extensions["tenants"]
    tenants["amami"] = dataclasses.replace(tenants["amami"], lock_threshold=2)
    wrong(at_customer)
    assert messages.LOCKED_NOW in wrong(at_customer)


def test_staff_unlock_lifts_the_lock(app, at_customer, runner):
    for _ in range(5):
        wrong(at_customer)
    result = runner.invoke(args=["locks", "unlock", "--tenant", "amami", "--branch", "115", "--type", "1",
                                 "--number", "1100026"])
    assert result.exit_code == 0 and "unlocked" in result.output
    assert at_customer.customer().status_code == 303


def test_every_failure_and_lock_is_in_the_operation_log(at_customer):
    for _ in range(6):
        wrong(at_customer)
    with at_customer.app.app_context():
        rows = db.session().exec(select(OperationLog).where(OperationLog.event == "identity_check")
                                 .order_by(OperationLog.id)).all()
        assert [r.result for r in rows] == ["fail"] * 5 + ["locked"]
        assert rows[4].detail.endswith("locked") and rows[5].detail == "B84"
        assert all(r.account_number == "1100026" and r.ip for r in rows)


def _parallel_wrong_attempts(app, n: int) -> tuple[int, list]:
    """n threads check a wrong identity at once; returns (#core evaluations, alerts)."""
    app.config.update(IDENTITY_CHECKS_PER_IP="10000 per minute", IDENTITY_FAILURES_PER_CLIENT="10000 per minute",
                      IDENTITY_FAILURES_PER_UNION="10000 per minute")  # the lock alone is under test
    core_check = CountingMismatch()
    barrier = threading.Barrier(n)

    flow = Flow(id=1, tenant="amami", branch="115", account_type="1", account_number="1100026", client_id="c",
                handle_hash="h", step="customer", redirect_uri="https://app.example/cb")

    def attempt(_):
        with app.test_request_context("/amami/flow/customer", method="POST"):
            g.tenant = app.extensions["tenants"]["amami"]
            barrier.wait()
            return check_with_lockout(flow, "identity_check", core_check)[1]

    with ThreadPoolExecutor(max_workers=n) as pool:
        alerts = list(pool.map(attempt, range(n)))
    return core_check.calls, alerts


def _assert_exactly_threshold_evaluated(evaluations, alerts):
    assert evaluations == 5
    messages_seen = [a["message"] for a in alerts]
    assert messages_seen.count(messages.IDENTITY_MISMATCH) == 4
    assert messages_seen.count(messages.LOCKED_NOW) == 1
    assert messages_seen.count(messages.LOCKED) == len(alerts) - 5


def test_hundred_parallel_wrong_attempts_evaluate_at_most_five_sqlite(app):
    _assert_exactly_threshold_evaluated(*_parallel_wrong_attempts(app, 100))


@pytest.mark.postgres
def test_hundred_parallel_wrong_attempts_evaluate_at_most_five_postgres(pg_app):
    _assert_exactly_threshold_evaluated(*_parallel_wrong_attempts(pg_app, 100))


def test_parallel_wrong_attempts_over_http_lock_exactly_once(app, customers):
    actors = []
    for _ in range(12):
        a = FlowActions(app, app.test_client(), "amami")
        a.start(), a.account(), a.get("flow/customer")
        actors.append(a)
    barrier = threading.Barrier(len(actors))

    def attempt(a):
        barrier.wait()
        return text_of(a.post("flow/customer", a.customer_data(birth_year="1999")))

    with ThreadPoolExecutor(max_workers=len(actors)) as pool:
        pages = list(pool.map(attempt, actors))
    assert sum(messages.LOCKED_NOW in p for p in pages) == 1
    assert sum("理由コードはB84です。" in p for p in pages) == 7
    assert sum(messages.IDENTITY_MISMATCH in p for p in pages) == 4


# --- the lock screens (SPEC §3, issue 11) -------------------------------------------------------

def main_of(html: str) -> str:
    return html[html.index("<main"):html.index("</main>")]


def test_lock_screen_says_when_it_lifts_and_shows_the_contact_not_the_form(at_customer):
    for _ in range(4):
        wrong(at_customer)
    main = main_of(wrong(at_customer))  # the fifth: No.3
    assert messages.LOCKED_NOW in main
    assert "このロックは翌日の0時に自動で解除されます。" in main
    assert "奄美信用組合 企画部 ITシステム課" in main and 'href="tel:0997527111"' in main
    assert "平日の午前9時～17時" in main
    assert "お急ぎの場合は、当信用組合にお問合せください。" in main  # 奄美's own 対処方法
    assert 'name="name_kana"' not in main and ">次へ</button>" not in main  # the form is not offered again
    assert ">中止する</button>" in main


def test_a_locked_customer_coming_back_to_two_sees_the_lock_screen(at_customer):
    for _ in range(5):
        wrong(at_customer)
    main = main_of(text_of(at_customer.get("flow/customer")))
    assert messages.LOCKED in main and messages.LOCKED_REASON in main
    assert 'name="name_kana"' not in main and "このロックは翌日の0時に自動で解除されます。" in main


def test_maruhachi_lock_screen_has_its_contact_and_no_amami_advice(maruhachi):
    from test_customer_screen import at_customer as _  # noqa: F401  (same steps for 丸八)

    maruhachi.start()
    maruhachi.account()
    for _ in range(5):
        page = maruhachi.customer(phone="09099999999")
    main = main_of(text_of(page))
    assert messages.LOCKED_NOW in main
    assert "丸八信用組合 管理課" in main and "kanri@maruhachi-shinkumi.jp" in main
    assert "お急ぎの場合は" not in main


@pytest.mark.parametrize("days_ago", [0, 1])
@pytest.mark.parametrize("failures", [0, 4, 5, 6])
def test_is_locked_reads_the_count_as_the_orm_row_says(app, days_ago, failures):
    # is_locked (② and ⑤ ask on every GET) reads two columns with a SELECT built once: it must
    # answer what the account's ORM row says, whatever other accounts' rows hold.
    today = clock.today_jst()
    other = AccountKey("amami", "115", "4", "1100026")
    with app.app_context():
        s = db.session()
        assert not lockout.is_locked(s, KEY, 5)  # no row yet
        s.add(lockout.AccountLock(tenant=KEY.tenant, branch=KEY.branch, account_type=KEY.account_type,
                                  number=KEY.number, day=today - dt.timedelta(days=days_ago), failures=failures))
        s.add(lockout.AccountLock(tenant=other.tenant, branch=other.branch, account_type=other.account_type,
                                  number=other.number, day=today, failures=9))
        s.commit()
        row = s.exec(select(lockout.AccountLock).where(lockout._where(KEY))).one()
        for threshold in (1, 5, 10):
            assert lockout.is_locked(s, KEY, threshold) == (row.day == today and row.failures >= threshold)
