"""The flow's hot writes as prebuilt Core statements (issue 13): each must leave in the database what
the plain ORM code path leaves."""
import datetime as dt

from sqlmodel import Session, select

from webapp import clock, db, oplog
from webapp.flow.models import Flow
from webapp.oplog import OperationLog
from conftest import CSRF_RE
from sql_support import sent, statements_during

LOGGED = [c.key for c in OperationLog.__table__.c if c.key != "id"]


def test_a_written_log_row_holds_what_a_recorded_one_holds(app, client, amami):
    amami.start()
    with Session(app.extensions["db_engine"]) as s:
        flow = s.exec(select(Flow)).one()
    clock.set_now(dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.timezone.utc))
    with app.test_request_context("/amami/flow/customer", environ_base={"REMOTE_ADDR": "198.51.100.7"},
                                  headers={"User-Agent": "Mozilla/5.0 (test)"}):
        s = db.session()
        oplog.record(s, tenant="amami", screen="SOA202", event="identity_check", result="ok", flow=flow,
                     detail="same")
        oplog.write(s, tenant="amami", screen="SOA202", event="identity_check", result="ok", flow=flow,
                    detail="same")
        s.commit()
        s.close()
    with Session(app.extensions["db_engine"]) as s:
        recorded, written = s.exec(select(OperationLog).where(OperationLog.detail == "same")
                                   .order_by(OperationLog.id)).all()
    assert {k: getattr(written, k) for k in LOGGED} == {k: getattr(recorded, k) for k in LOGGED}
    assert written.ip == "198.51.100.7" and written.flow_id == flow.id and written.branch == flow.branch


def _commits_during(app, call):
    from sqlalchemy import event

    commits = []
    engine = app.extensions["db_engine"]
    listener = lambda _conn: commits.append(1)  # noqa: E731
    event.listen(engine, "commit", listener)
    try:
        response = call()
    finally:
        event.remove(engine, "commit", listener)
    return response, len(commits)


def _rows(app, model):
    with Session(app.extensions["db_engine"]) as s:
        return s.exec(select(model)).all()


def test_a_passed_customer_check_is_two_transactions_with_everything_kept(app, amami):
    """② passed: the slots and the entries in one transaction before core banking is asked, the slots
    given back, the log row and the move to ③ in one after (it was four commits)."""
    from webapp.budgets import CheckBudget
    from webapp.lockout import AccountLock

    amami.start()
    amami.account()
    amami.get("flow/customer")
    response, commits = _commits_during(app, lambda: amami.post("flow/customer", amami.customer_data(
        name_kana="ﾃﾞｰﾀ ﾀﾛｳ", email="kept@example.jp", email_confirm="kept@example.jp")))
    assert response.status_code == 303 and response.headers["Location"].endswith("/flow/phone")
    assert commits == 2
    flow = _rows(app, Flow)[0]
    assert (flow.step, flow.name_kana, flow.email, flow.phone_e164) == ("phone", "ﾃﾞｰﾀ ﾀﾛｳ", "kept@example.jp",
                                                                       "+819011113333")
    assert {b.key.split(":")[0]: b.used for b in _rows(app, CheckBudget)} == {"ip": 1, "client": 0, "union": 0}
    assert [lock.failures for lock in _rows(app, AccountLock)] == [0]
    checked = [r for r in _rows(app, OperationLog) if r.event == "identity_check"]
    assert [(r.screen, r.result, r.name_kana) for r in checked] == [("SOA202", "ok", "ﾃﾞｰﾀ ﾀﾛｳ")]


def test_entries_are_kept_when_the_address_budget_refuses_the_check(app, amami):
    app.config.update(IDENTITY_CHECKS_PER_IP="1 per 10 minutes")
    amami.start()
    amami.account()
    assert amami.customer(birth_year="1999").status_code == 200  # a mismatch spends the address's one check
    refused = amami.customer(name_kana="ﾍﾞﾂ ﾅﾏｴ", email="other@example.jp", email_confirm="other@example.jp")
    assert refused.status_code == 429
    flow = _rows(app, Flow)[0]
    assert (flow.step, flow.name_kana, flow.email) == ("customer", "ﾍﾞﾂ ﾅﾏｴ", "other@example.jp")
    assert [(r.result, r.name_kana) for r in _rows(app, OperationLog) if r.event == "identity_check"] == [
        ("fail", "ﾃﾞｰﾀ ﾀﾛｳ"), ("refused", "ﾍﾞﾂ ﾅﾏｴ")]


def test_a_budget_takes_its_slots_up_to_the_limit_and_starts_again_in_the_next_window(app):
    from webapp import budgets

    spending = [budgets.Budget("ip", "ip:192.0.2.1", "2 per minute", failures_only=False),
                budgets.Budget("union", "union:amami", "3 per minute", failures_only=True)]
    start = dt.datetime(2026, 12, 3, 9, 0, 5, tzinfo=dt.timezone.utc)
    clock.set_now(start)
    with app.app_context():
        s = db.session()
        taken = [budgets.reserve(s, spending) for _ in range(3)]  # the third finds ip spent
        s.commit()
        assert [b and b.name for b in taken] == [None, None, "ip"]
        assert budgets.reserve(s, [budgets.Budget("none", "ip:192.0.2.9", "0 per minute", False)]).name == "none"
        clock.set_now(start + dt.timedelta(minutes=1))
        assert budgets.reserve(s, spending) is None
        s.commit()
        s.close()
    used = {b.key: b.used for b in _rows(app, budgets.CheckBudget)}
    assert used == {"ip:192.0.2.1": 1, "union:amami": 1}


def test_the_budgets_are_taken_in_one_statement_and_a_spent_one_in_the_middle_takes_none(app):
    """② and ⑤ reserve three budgets: one round trip, and all of them or none. On PostgreSQL the
    statement is a transaction of its own (test_pg_budget_rows.py says why), and when a budget is
    spent a second one gives back what the first took; on SQLite the rollback does."""
    from webapp import budgets

    spending = [budgets.Budget("ip", "ip:192.0.2.1", "5 per minute", failures_only=False),
                budgets.Budget("client", "client:amami:app", "1 per minute", failures_only=True),
                budgets.Budget("union", "union:amami", "5 per minute", failures_only=True)]
    clock.set_now(dt.datetime(2026, 12, 3, 9, 0, 5, tzinfo=dt.timezone.utc))
    with app.app_context():
        s = db.session()

        def reserve():
            spent = budgets.reserve(s, spending)
            s.commit()
            return spent

        with sent(app) as seen:
            first = reserve()
        with sent(app) as seen_spent:
            second = reserve()  # the client's one slot is spent
        s.close()

    on_postgres = app.extensions["db_engine"].dialect.name == "postgresql"
    assert first is None and second.name == "client"
    assert [(w.split()[0], alone) for w, alone in seen if not w.startswith(("BEGIN", "COMMIT"))] == [
        ("INSERT", on_postgres)]
    assert [(w.split()[0], alone) for w, alone in seen_spent if not w.startswith(("BEGIN", "COMMIT"))] == (
        [("INSERT", True), ("UPDATE", True), ("UPDATE", True)] if on_postgres else [("INSERT", False)])
    used = {b.key: b.used for b in _rows(app, budgets.CheckBudget)}
    assert used == {"ip:192.0.2.1": 1, "client:amami:app": 1, "union:amami": 1}  # the second took none back


def test_a_client_read_by_its_id_holds_what_the_orm_reads(app, amami):
    from webapp.oauth.models import OAuthClient

    with Session(app.extensions["db_engine"]) as s:
        stored = s.exec(select(OAuthClient)).one()
        expected = {k: getattr(stored, k) for k in (c.key for c in OAuthClient.__table__.c)}
    with app.test_request_context("/amami/oauth/token"):
        read = OAuthClient.by_id(stored.client_id)
        assert OAuthClient.by_id("no-such-client") is None
        db.session().close()
    assert {k: getattr(read, k) for k in expected} == expected
    assert read.redirect_uris == ["https://app.example/cb"] and read.created_at.tzinfo is not None


def test_the_exchanged_token_row_holds_what_the_orm_wrote(app, amami):
    """The code exchange writes its token with a Core INSERT: every column as the ORM object had it."""
    from test_oauth_support import authorized, exchange
    from webapp.oauth.models import Consent, Token, secret_hash

    response = exchange(amami, authorized(amami)["code"], auth="basic")
    assert response.status_code == 200
    body = response.get_json()
    consent, token = _rows(app, Consent)[0], _rows(app, Token)[0]
    assert (token.consent_id, token.client_id, token.scope) == (consent.id, amami.oauth_client["client_id"], "accounts")
    assert token.access_token_hash == secret_hash(body["access_token"])
    assert token.refresh_token_hash == secret_hash(body["refresh_token"])
    assert token.access_expires_at - token.issued_at == dt.timedelta(seconds=body["expires_in"])
    assert token.refresh_expires_at == consent.expires_at and len(token.family) == 32
    assert token.refresh_used_at is None and token.revoked_at is None and token.dpop_jkt is None
    assert exchange(amami, authorized(amami)["code"], auth="basic").status_code == 200  # a second consent's


def test_confirming_a_called_attempt_spends_it_without_reading_it_first(app, amami):
    """④'s 「確定する」 after the call: one UPDATE spends the flow's attempt; the attempt is read only when
    that finds nothing to spend (and the webhook's confirmation is logged with the flow's account)."""
    from test_callauth_support import call_from_registered_phone, to_call_screen
    from webapp.callauth.models import USED, CallAttempt

    page = to_call_screen(amami)
    assert call_from_registered_phone(amami, page).status_code == 200
    response, statements = statements_during(app, lambda: amami.post("flow/call", {}))
    assert response.status_code == 303 and response.headers["Location"].endswith("/flow/pin")
    assert not [s for s in statements if s.startswith("SELECT") and "FROM call_attempt" in s]
    assert [a.state for a in _rows(app, CallAttempt)] == [USED]
    inbound = [r for r in _rows(app, OperationLog) if r.event == "inbound_call"]
    assert [(r.result, r.branch, r.name_kana) for r in inbound] == [("ok", "115", "ﾃﾞｰﾀ ﾀﾛｳ")]


def test_pressing_confirm_before_calling_still_reads_the_attempt_and_says_so(app, amami):
    from test_callauth_support import to_call_screen
    from webapp.callauth.models import WAITING, CallAttempt

    to_call_screen(amami)
    response = amami.post("flow/call", {})
    assert response.status_code == 200 and [a.state for a in _rows(app, CallAttempt)] == [WAITING]
    assert [(r.result, r.detail) for r in _rows(app, OperationLog) if r.event == "call_confirm"] == [("fail", WAITING)]


def test_a_flow_read_by_id_holds_what_the_orm_reads(app, amami):
    from webapp.flow import state

    amami.start()
    amami.account()
    with Session(app.extensions["db_engine"]) as s:
        stored = s.exec(select(Flow)).one()
        expected = {k: getattr(stored, k) for k in (c.key for c in Flow.__table__.c)}
    with app.app_context():
        s = db.session()
        read, nothing = state.by_id(s, stored.id), state.by_id(s, stored.id + 1)
        s.close()
    assert {k: getattr(read, k) for k in expected} == expected and nothing is None and state.by_id(None, None) is None


def test_closing_a_flow_at_its_step_loses_to_a_move_or_an_earlier_end(app, amami):
    from webapp.flow import state

    amami.start()
    with Session(app.extensions["db_engine"]) as s:
        flow = s.exec(select(Flow)).one()
        s.expunge(flow)
    with app.app_context():
        s = db.session()
        assert not state.close(s, flow, "consented", at_step="customer")  # it stands at ①
        stale = Flow(**{k: getattr(flow, k) for k in ("id", "step")}, handle_hash="rotated")
        assert not state.close(s, stale, "consented", at_step="account")  # another request rotated its handle
        assert state.close(s, flow, "consented", at_step="account")
        assert not state.close(s, flow, "cancelled")  # ended already
        s.commit()
        s.close()
    ended = _rows(app, Flow)[0]
    assert ended.outcome == "consented" and ended.ended_at is not None and ended.updated_at == ended.ended_at


def test_the_sandbox_identity_checks_read_by_a_core_select_answer_every_case(app):
    """The sandbox's ② and ⑤ checks read their facts with a SELECT built once (no ORM object): each
    answer as before, for a match, a mismatch, no account, no cash card and a closed account."""
    from conftest import add_account
    from webapp.corebanking import AccountCheck, AccountKey
    from webapp.corebanking.sandbox import SandboxCoreBanking

    born = dt.date(1980, 1, 1)
    for number, status, card in (("1000001", "active", True), ("1000002", "active", False),
                                 ("1000003", "closed", True)):
        add_account(app, "amami", branch="115", account_type="1", number=number, name_kana="ﾃｽﾄ", birth_date=born,
                    phone="09011112222", pin="4321", status=status, cash_card=card)
    core = SandboxCoreBanking()
    key = lambda number: AccountKey("amami", "115", "1", number)  # noqa: E731
    with app.test_request_context("/amami/flow/pin"):
        good = core.check_identity(key("1000001"), born, "09011112222")
        assert (good.check, good.phone) == (AccountCheck.OK, "09011112222")
        assert core.check_identity(key("1000001"), born, "09011112223").check is AccountCheck.MISMATCH
        assert core.check_identity(key("1000001"), dt.date(1980, 1, 2), "09011112222").check is AccountCheck.MISMATCH
        assert core.check_pin(key("1000001"), "4321") is AccountCheck.OK
        assert core.check_pin(key("1000001"), "1234") is AccountCheck.MISMATCH
        for unusable in ("1000002", "1000003", "9999999"):
            assert core.check_identity(key(unusable), born, "09011112222").check is AccountCheck.NOT_SERVICEABLE
            assert core.check_pin(key(unusable), "4321") is AccountCheck.NOT_SERVICEABLE
        db.session().close()


def test_a_queued_mail_row_holds_what_is_stored_when_added_and_when_found(app):
    from mail_support import completed_flow
    from webapp.mail import MailOutbox, queue_completion_mail
    from webapp.oauth.models import Consent, OAuthClient

    flow_id = completed_flow(app)
    columns = [c.key for c in MailOutbox.__table__.c]
    returned = []
    with app.test_request_context("/amami/flow/consent"):
        for _ in range(2):  # added, then found (a retry queues nothing new)
            s = db.session()
            flow = s.get(Flow, flow_id)
            consent = s.exec(select(Consent).where(Consent.flow_id == flow_id)).one()
            client = s.exec(select(OAuthClient).where(OAuthClient.client_id == flow.client_id)).one()
            row = queue_completion_mail(s, tenant=app.extensions["tenants"]["amami"], flow=flow, consent=consent,
                                        client=client)
            returned.append({k: getattr(row, k) for k in columns})
            s.commit()
    stored = _rows(app, MailOutbox)
    assert len(stored) == 1
    assert returned == [{k: getattr(stored[0], k) for k in columns}] * 2


def test_the_consent_and_code_rows_of_allow_hold_what_the_orm_wrote(app, amami):
    from test_oauth_support import allow, at_consent, query
    from webapp.mail import MailOutbox
    from webapp.oauth.models import AuthorizationCode, Consent, secret_hash

    at_consent(amami)
    clock.set_now(clock.now())  # frozen: the rows' times are this instant
    response = allow(amami)
    assert response.status_code == 303
    code = query(response.headers["Location"])["code"]
    consent, stored_code, mail = _rows(app, Consent)[0], _rows(app, AuthorizationCode)[0], _rows(app, MailOutbox)[0]
    flow = _rows(app, Flow)[0]
    now = clock.now()
    assert {k: getattr(consent, k) for k in ("tenant", "client_id", "branch", "account_type", "account_number",
                                             "scope", "flow_id", "granted_at", "expires_at", "revoked_at")} == {
        "tenant": "amami", "client_id": amami.oauth_client["client_id"], "branch": "115", "account_type": "1",
        "account_number": "1100026", "scope": "accounts", "flow_id": flow.id, "granted_at": now,
        "expires_at": now + dt.timedelta(days=app.extensions["tenants"]["amami"].consent_days), "revoked_at": None}
    assert stored_code.code_hash == secret_hash(code) and stored_code.consent_id == consent.id
    assert (stored_code.issued_at, stored_code.expires_at, stored_code.used_at) == (now, now + dt.timedelta(seconds=60),
                                                                                   None)
    assert (mail.consent_id, mail.flow_id, mail.kind) == (consent.id, flow.id, "consent_completed")
    consented = [r for r in _rows(app, OperationLog) if r.event == "consented"]
    assert [r.detail for r in consented] == [f"consent {consent.id} until {consent.expires_at.date().isoformat()}"]


def test_an_authorization_request_reads_its_client_once_and_starts_the_flow_as_stored(app, amami, monkeypatch):
    from webapp.flow import state

    started = []
    real_start = state.start

    def start(*args, **kwargs):
        started.append(real_start(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(state, "start", start)
    response, statements = statements_during(app, lambda: amami.client.get(
        "/amami/oauth/authorize", query_string=amami.authorize_params()))
    assert response.status_code == 303
    assert len([s for s in statements if s.startswith("SELECT") and "FROM oauth_client" in s]) == 1
    stored = _rows(app, Flow)[0]
    assert {c.key: getattr(started[0], c.key) for c in Flow.__table__.c} == \
        {c.key: getattr(stored, c.key) for c in Flow.__table__.c}
    assert stored.purpose == "authorize" and stored.oauth_request["scope"] == "accounts" and stored.branch is None


def _transaction_ends_during(app, call):
    """(what `call()` returned, "commit" or "rollback" for each transaction the app's engine ended meanwhile)."""
    from sqlalchemy import event

    ends = []
    engine = app.extensions["db_engine"]
    listeners = {name: (lambda _conn, name=name: ends.append(name)) for name in ("commit", "rollback")}
    for name, listener in listeners.items():
        event.listen(engine, name, listener)
    try:
        response = call()
    finally:
        for name, listener in listeners.items():
            event.remove(engine, name, listener)
    return response, ends


def test_the_first_call_screen_opens_its_attempt_and_shows_what_it_inserted(app, amami):
    """④'s first GET opens the flow's attempt (its INSERT and log row in one commit) and shows it from
    what it inserted, the id by RETURNING: no ORM object before the INSERT or after it, no read back,
    and its one transaction ends in a COMMIT. (A read after the commit was a transaction of its own
    that the request's end rolled back; on PostgreSQL psycopg forgets every statement it prepared on
    the connection at a ROLLBACK.) A later GET reads it and shows the same page."""
    from test_callauth_support import to_phone_screen
    from webapp.callauth.models import WAITING, CallAttempt

    to_phone_screen(amami)
    assert amami.post("flow/phone", {}).status_code == 303
    (first, statements), ends = _transaction_ends_during(
        app, lambda: statements_during(app, lambda: amami.get("flow/call")))
    assert first.status_code == 200
    attempt_reads = [s for s in statements if s.startswith("SELECT") and "FROM call_attempt" in s]
    assert len(attempt_reads) == 1, attempt_reads  # this phone's waiting attempts (the pool)
    assert "call_attempt.phone_e164 = " in attempt_reads[0]
    assert [s.split()[0] for s in statements if not s.startswith(("SELECT", "BEGIN", "ROLLBACK"))] == [
        "INSERT", "INSERT"]  # the attempt, its log row
    assert ends == ["commit"]
    [attempt] = _rows(app, CallAttempt)
    assert attempt.state == WAITING
    assert [r.event for r in _rows(app, OperationLog) if r.event.startswith("call_attempt")] == ["call_attempt_started"]
    again = amami.get("flow/call")  # a later GET reads the attempt without opening it
    # The same page but for the CSRF token, which is signed with the current second (itsdangerous):
    # two GETs on either side of a second's end differ there (seen in a CI run).
    assert CSRF_RE.sub("", again.get_data(as_text=True)) == CSRF_RE.sub("", first.get_data(as_text=True))
    assert len(_rows(app, CallAttempt)) == 1


def _flow_sent_to_the_call_screen(app, amami) -> Flow:
    """The customer's flow, detached, once ③ has sent it to ④ (no attempt opened yet)."""
    from test_callauth_support import to_phone_screen

    to_phone_screen(amami)
    assert amami.post("flow/phone", {}).status_code == 303
    with Session(app.extensions["db_engine"]) as s:
        flow = s.exec(select(Flow)).one()
        s.expunge(flow)
    return flow


def test_the_attempt_the_first_call_screen_opens_is_the_row_it_wrote(app, amami):
    """What open_shown_attempt gives from its INSERT is what shown_attempt reads of that row."""
    from webapp.callauth import service

    flow = _flow_sent_to_the_call_screen(app, amami)
    with app.test_request_context("/amami/flow/call"):
        opened = service.open_shown_attempt(db.session(), flow, app.extensions["tenants"]["amami"])
    with app.test_request_context("/amami/flow/call"):
        read = service.shown_attempt(flow.id)
    assert tuple(opened) == tuple(read)
    assert opened._fields == read._fields


def test_a_first_call_screen_that_lost_the_race_shows_the_attempt_the_other_request_opened(app, amami):
    """Two first GETs of ④ at once: the one whose INSERT finds the flow's attempt already there opens
    none and logs nothing, and shows that attempt."""
    from webapp.callauth import service
    from webapp.callauth.models import CallAttempt

    flow = _flow_sent_to_the_call_screen(app, amami)
    with app.test_request_context("/amami/flow/call"):
        tenant = app.extensions["tenants"]["amami"]
        won = service.open_attempt(db.session(), flow, tenant)
        shown = service.open_shown_attempt(db.session(), flow, tenant)
        assert (shown.id, shown.pool_number, shown.state, shown.expires_at) == (
            won.id, won.pool_number, won.state, won.expires_at)
    assert len(_rows(app, CallAttempt)) == 1
    assert [r.event for r in _rows(app, OperationLog) if r.event.startswith("call_attempt")] == ["call_attempt_started"]
