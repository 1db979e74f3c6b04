"""Accounts and balances: only the consented account, under an opaque stable accountId; a closed or
moved account refuses existing tokens too (FAQ 3-Q4)."""
from __future__ import annotations

import pytest

from test_api_support import ApiActions, add_client, api, grant_token, second_account, set_account  # noqa: F401


def test_accounts_lists_only_the_consented_account_in_contract_shape(app, client, customers):
    second_account(app, "amami")  # same customer's other account: not consented, never shown
    api = ApiActions(app, client, "amami")
    response = api.get("accounts")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    (account,) = response.get_json()["accounts"]
    assert account == {"accountId": account["accountId"], "branchNo": "115", "accountTypeCode": "1",
                       "accountTypeName": "普通預金", "accountNo": "1100026", "accountName": "ﾃﾞｰﾀ ﾀﾛｳ"}
    assert "ﾃﾞｰﾀ ﾀﾛｳ" in response.get_data(as_text=True)  # UTF-8 text, readable in curl


def test_account_id_is_stable_for_one_app_and_unrelated_between_apps(app, client, customers):
    first = ApiActions(app, client, "amami")
    again = ApiActions(app, client, "amami", client_id=first.grant["client_id"])  # the customer re-consents
    other_app = ApiActions(app, client, "amami")
    account_id = first.account_id()
    assert again.account_id() == account_id
    assert other_app.account_id() != account_id
    assert "1100026" not in account_id and str(first.grant["consent_id"]) != account_id
    assert len(account_id) == 22


def test_account_id_follows_its_key_at_once(api):
    """The ids are kept per key (keys._account_id): a new API_ID_KEY gives new ones on the next call,
    the old ones are no longer found, and going back to the old key gives the old ids back."""
    def listed() -> str:
        return api.get("accounts").get_json()["accounts"][0]["accountId"]

    api.app.config["API_ID_KEY"] = "k" * 32
    old = listed()
    api.app.config["API_ID_KEY"] = "n" * 32
    new = listed()
    assert new != old and len(new) == 22
    assert api.get("accounts/balances", accountId=old).status_code == 404
    assert api.get("accounts/balances", accountId=new).status_code == 200
    api.app.config["API_ID_KEY"] = "k" * 32
    assert listed() == old


def test_balances_of_the_consented_account(api):
    set_account(api.app, "amami", balance=1234567, withdrawable=1200000)
    response = api.get("accounts/balances", accountId=api.account_id())
    assert response.status_code == 200
    assert response.get_json() == {"balances": [{
        "accountId": api.account_id(), "balance": 1234567, "withdrawableAmount": 1200000,
        "currencyCode": "JPY", "baseDate": "2026-11-18", "baseTime": "14:00:00+09:00"}]}


def test_withdrawable_amount_defaults_to_the_balance(api):
    set_account(api.app, "amami", balance=5000, withdrawable=None)
    balance = api.get("accounts/balances", accountId=api.account_id()).get_json()["balances"][0]
    assert balance["withdrawableAmount"] == 5000


@pytest.mark.parametrize("path", ["accounts/balances", "accounts/transactions"])
def test_unknown_account_id_gets_404(api, path):
    response = api.get(path, accountId="A" * 22)
    assert response.status_code == 404
    assert response.get_json()["errorCode"] == "account_not_found"


def test_account_id_given_to_another_app_gets_404(app, client, customers):
    mine = ApiActions(app, client, "amami")
    theirs = ApiActions(app, client, "amami")
    response = mine.get("accounts/balances", accountId=theirs.account_id())
    assert response.status_code == 404
    assert response.get_json()["errorCode"] == "account_not_found"


def test_other_account_of_the_same_customer_is_out_of_reach(app, client, customers):
    other = second_account(app, "amami")
    client_id = add_client(app, "amami")
    mine = ApiActions(app, client, "amami", client_id=client_id)
    other_token = grant_token(app, "amami", client_id=client_id, account=other)["token"]
    other_id = mine.get("accounts", token=other_token).get_json()["accounts"][0]["accountId"]
    assert mine.get("accounts/balances", accountId=other_id).status_code == 404


@pytest.mark.parametrize("query", [{}, {"accountId": "short"}, {"accountId": ["A" * 22, "B" * 22]}])
def test_missing_malformed_or_repeated_account_id_gets_400(api, query):
    response = api.get("accounts/balances", **query)
    assert response.status_code == 400
    assert response.get_json()["errorCode"] == "invalid_request"


@pytest.mark.parametrize("status,code", [("closed", "account_closed"), ("moved", "account_moved")])
def test_closed_or_moved_account_refuses_existing_tokens_with_its_own_code(api, status, code):
    account_id = api.account_id()
    set_account(api.app, "amami", status=status)
    for path, params in (("accounts", {}), ("accounts/balances", {"accountId": account_id}),
                         ("accounts/transactions", {"accountId": account_id})):
        response = api.get(path, **params)
        assert response.status_code == 403, path
        assert response.get_json()["errorCode"] == code


def test_balances_reads_the_account_once_a_call_and_afresh_on_the_next(api, monkeypatch):
    """Its check that the account is still served and its balance come from one read of the core's
    account (sandbox._facts, kept for the request); the next call reads it again."""
    from webapp import db as dbmodule
    from webapp.corebanking import sandbox

    account_id = api.account_id()
    reads = []
    real = dbmodule.first_read
    monkeypatch.setattr(dbmodule, "first_read", lambda stmt, params: (
        stmt is sandbox._ACCOUNT_FACTS and reads.append(params)) or real(stmt, params))
    first = api.get("accounts/balances", accountId=account_id)
    assert first.status_code == 200 and len(reads) == 1
    set_account(api.app, "amami", balance=4321, withdrawable=4000)
    second = api.get("accounts/balances", accountId=account_id).get_json()["balances"][0]
    assert (second["balance"], second["withdrawableAmount"]) == (4321, 4000) and len(reads) == 2
    set_account(api.app, "amami", status="closed")
    assert api.get("accounts/balances", accountId=account_id).get_json()["errorCode"] == "account_closed"


def test_maruhachi_serves_its_own_account_under_its_own_issuer(app, client, customers):
    api = ApiActions(app, client, "maruhachi")
    (account,) = api.get("accounts").get_json()["accounts"]
    assert (account["branchNo"], account["accountNo"], account["accountTypeName"]) == ("201", "0012345", "普通預金")
