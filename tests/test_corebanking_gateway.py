"""The core-banking gateway adapter (webapp/corebanking/gateway.py): what it asks, what it makes of
each answer, and that anything but a well-formed 200 is CoreUnavailable (SPEC §3 No.4).
The customer-facing faults (slow, down, back) are in test_faults.py, through the real server."""
from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import threading

import pytest

from webapp.corebanking import AccountCheck, AccountKey, CoreUnavailable, Transaction
from webapp.corebanking.gateway import GatewayCoreBanking

KEY = AccountKey("amami", "115", "1", "1100026")


class Gateway:
    """A stub gateway: answers each operation with `answers[path]` = (status, body) and records requests."""

    def __init__(self):
        self.answers, self.asked = {}, []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.asked.append((self.path, body, self.headers.get("Authorization")))
                status, answer = stub.answers.get(self.path, (404, {}))
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/core"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def gateway():
    stub = Gateway()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


def test_identity_check_posts_the_key_and_entries_with_the_token(gateway):
    gateway.answers["/core/identity/check"] = (200, {"result": "ok", "phone": "09011113333"})
    result = GatewayCoreBanking(gateway.url, token="t0ken").check_identity(KEY, dt.date(1980, 1, 1), "09011113333")
    assert (result.check, result.phone) == (AccountCheck.OK, "09011113333")
    assert gateway.asked == [("/core/identity/check", {"tenant": "amami", "branch": "115", "accountType": "1",
                                                        "number": "1100026", "birthDate": "1980-01-01",
                                                        "phone": "09011113333"}, "Bearer t0ken")]


@pytest.mark.parametrize("result", ["mismatch", "not_serviceable"])
def test_pin_check_gives_the_gateways_verdict(gateway, result):
    gateway.answers["/core/pin/check"] = (200, {"result": result})
    assert GatewayCoreBanking(gateway.url).check_pin(KEY, "1234") is AccountCheck(result)


@pytest.mark.parametrize("answer", [(500, {"result": "ok"}), (404, {}), (200, b"<html>"), (200, {"result": "maybe"}),
                                    (200, ["ok"])])
def test_anything_but_a_well_formed_200_is_core_unavailable(gateway, answer):
    gateway.answers["/core/pin/check"] = answer
    with pytest.raises(CoreUnavailable):
        GatewayCoreBanking(gateway.url).check_pin(KEY, "1234")


def test_a_refused_connection_is_core_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens
    with pytest.raises(CoreUnavailable):
        GatewayCoreBanking(f"http://127.0.0.1:{port}").check_pin(KEY, "1234")


def test_a_silent_gateway_is_core_unavailable_after_the_timeout():
    with socket.socket() as s:  # accepts connections (the backlog) and never answers
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        with pytest.raises(CoreUnavailable, match="no answer within 0.3s"):
            GatewayCoreBanking(f"http://127.0.0.1:{s.getsockname()[1]}", timeout=0.3).check_pin(KEY, "1234")


def test_account_balance_and_transactions(gateway):
    gateway.answers.update({
        "/core/accounts/get": (200, {"account": {"nameKana": "ﾃﾞｰﾀ ﾀﾛｳ", "status": "active"}}),
        "/core/accounts/balance": (200, {"balance": {"balance": 1200, "withdrawable": 1000,
                                                     "asOf": "2026-11-18T14:00:00+09:00"}}),
        "/core/accounts/transactions": (200, {"transactions": [
            {"seq": 7, "date": "2026-11-01", "valueDate": "2026-11-02", "type": "2", "amount": 500,
             "remarks": "ATM", "balance": 1200}]}),
    })
    core = GatewayCoreBanking(gateway.url)
    account = core.account(KEY)
    assert (account.name_kana, account.status) == ("ﾃﾞｰﾀ ﾀﾛｳ", "active")
    balance = core.balance(KEY)
    assert (balance.balance, balance.withdrawable) == (1200, 1000)
    assert balance.as_of == dt.datetime(2026, 11, 18, 5, 0, tzinfo=dt.timezone.utc)
    assert core.account_and_balance(KEY) == (account, balance)  # the two questions
    rows = core.transactions(KEY, dt.date(2026, 8, 18), dt.date(2026, 11, 18), (dt.date(2026, 11, 3), 9), 500)
    assert rows == [Transaction(7, dt.date(2026, 11, 1), dt.date(2026, 11, 2), "2", 500, "ATM", 1200)]
    assert gateway.asked[-1][1] == {"tenant": "amami", "branch": "115", "accountType": "1", "number": "1100026",
                                    "dateFrom": "2026-08-18", "dateTo": "2026-11-18",
                                    "after": ["2026-11-03", 9], "limit": 500}


def test_an_unknown_account_is_none(gateway):
    gateway.answers.update({"/core/accounts/get": (200, {"account": None}),
                            "/core/accounts/balance": (200, {"balance": None})})
    core = GatewayCoreBanking(gateway.url)
    assert core.account(KEY) is None and core.balance(KEY) is None
    asked = len(gateway.asked)
    assert core.account_and_balance(KEY) == (None, None)  # the API's balances: no balance asked for
    assert [path for path, *_ in gateway.asked[asked:]] == ["/core/accounts/get"]


def test_the_url_setting_selects_the_gateway(app_config_gateway):
    from webapp.corebanking import core

    with app_config_gateway.app_context():
        chosen = core()
        assert isinstance(chosen, GatewayCoreBanking)
        assert (chosen.url, chosen.timeout) == ("http://gateway.invalid/core", 2.5)


@pytest.fixture
def app_config_gateway(tmp_path):
    from conftest import make_app

    app = make_app(f"sqlite:///{tmp_path / 'gw.sqlite3'}", CORE_BANKING_URL="http://gateway.invalid/core/",
                   CORE_BANKING_TIMEOUT_SECONDS="2.5")
    yield app
    app.extensions["db_engine"].dispose()
