"""Account information API (CONTRACT §6): the consented account, its balance, its transactions.

Every response under /{tenant}/api/v1 carries `x-fapi-interaction-id` (the client's, if it sent a
UUID, else a new one) and every account call is written to the operation log (screen API: client,
account, endpoint, status, interaction id; never the token). Maintenance windows answer 503 with
Retry-After; each client is rate-limited (API_RATE_LIMIT, default 600 per minute) → 429.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
import re

from flask import Blueprint, current_app, g, request
from werkzeug.exceptions import TooManyRequests

from .. import clock, db, logs, maintenance, oplog, tenants
from ..corebanking import ACTIVE, CLOSED, AccountKey, AccountSummary, core
from ..extensions import limiter
from . import history, keys, openapi, problems
from .auth import require_token
from .problems import ApiError, json_response

bp = Blueprint("api", __name__, url_prefix="/<tenant>/api/v1")
bp.url_value_preprocessor(tenants.pull_tenant)
bp.url_defaults(tenants.add_tenant)

PAGE_SIZE = 500  # CONTRACT §6: at most 500 rows a page
DEFAULT_RATE_LIMIT = "600 per minute"
INTERACTION_HEADER = "x-fapi-interaction-id"
_API_PATH = re.compile(r"/([^/]+)/api/v1(?:/|$)")


def rate_limit() -> str:
    return current_app._get_current_object().config.get("API_RATE_LIMIT", DEFAULT_RATE_LIMIT)


def per_client() -> str:
    return "api-client:" + g._get_current_object().api_grant.client_id


def per_app_limit(view):
    """The calling app's limit (API_RATE_LIMIT), one count for each endpoint, on Flask-Limiter's
    storage and keys (`api-client:<client_id>` and the endpoint), counted once the token passed
    (the decorator below require_token): past it, 429 with Retry-After. The answer's X-RateLimit-*
    headers come from this count (_interaction_and_log)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        counted = limiter.count_limits(rate_limit(), per_client(), request._get_current_object().endpoint)
        g._get_current_object().api_rate_limit = counted
        if counted is not None and counted.reached is not None:
            raise TooManyRequests(str(counted.reached))
        return view(*args, **kwargs)

    return wrapper


def page_size() -> int:
    return min(int(current_app._get_current_object().config.get("API_PAGE_SIZE", PAGE_SIZE)), PAGE_SIZE)


# --- every request under the API ---------------------------------------------------------------

@bp.errorhandler(ApiError)
def _api_error(e: ApiError):
    return e.response()


@bp.before_request
def _refuse_during_maintenance():
    if request._get_current_object().endpoint == "api.openapi_document":
        return None  # the document stays readable
    window = maintenance.window_now(g._get_current_object().tenant)
    if window is not None:
        retry = max(1, math.ceil((window.end - clock.now()).total_seconds()))
        return ApiError("maintenance", headers={"Retry-After": str(retry)}).response()
    return None


@bp.after_app_request
def _interaction_and_log(response):
    r = request._get_current_object()  # one context lookup, not one per attribute (every API call)
    match = _API_PATH.match(r.path)
    if match is None:
        return response
    # The same id as the server log's request_id (webapp/logs.py): the client's UUID, else a new one.
    interaction_id = logs.request_id(r.environ)
    headers = response.headers
    headers[INTERACTION_HEADER] = interaction_id
    ctx_g = g._get_current_object()
    counted = ctx_g.get("api_rate_limit")
    if counted is not None:
        for name, value in counted.headers(response.status_code):
            headers.add(name, value)
    tenant = getattr(ctx_g, "tenant", None)
    tenant_id = tenant.id if tenant else match.group(1)
    if r.endpoint != "api.openapi_document" and tenant_id in tenants.all_tenants():
        _log_call(ctx_g, r.endpoint, tenant_id, response.status_code, interaction_id)
    return response


def _log_call(ctx_g, endpoint: str | None, tenant_id: str, status: int, interaction_id: str) -> None:
    grant = ctx_g.get("api_grant")
    account = grant.account if grant else None
    result = ("ok" if status < 400 else "refused" if status in (401, 403, 429)
              else "error" if status >= 500 else "fail")
    detail = f"status={status} interaction={interaction_id}"
    failure = ctx_g.get("api_auth_failure")
    if failure:
        detail += f" reason={failure}"
    db.end_reads()  # a read-only request: nothing of it is pending, and a failed one must not block the log
    oplog.record_committed(tenant=tenant_id, screen="API",
                           event=(endpoint or "unknown").removeprefix("api.")[:40],
                           result=result, detail=detail, client_id=ctx_g.get("api_client_id"),
                           branch=account.branch if account else None,
                           account_type=account.account_type if account else None,
                           account_number=account.number if account else None)


# --- parameters -------------------------------------------------------------------------------

def _param(name: str, required: bool = False) -> str | None:
    values = request._get_current_object().args.getlist(name)  # no proxy lookup: several a call
    if len(values) > 1:
        raise ApiError("invalid_request", f"{name}は1つだけ指定してください。")
    if not values:
        if required:
            raise ApiError("invalid_request", f"{name}を指定してください。")
        return None
    return values[0]


def _serviceable(key: AccountKey) -> AccountSummary:
    """The consented account as the core system knows it, if it may still be served (FAQ 3-Q4)."""
    return _still_served(core().account(key))


def _still_served(acct: AccountSummary | None) -> AccountSummary:
    if acct is None:
        raise ApiError("account_not_found")
    if acct.status == CLOSED:
        raise ApiError("account_closed")
    if acct.status != ACTIVE:
        raise ApiError("account_moved")
    return acct


def _requested_account(check_served: bool = True) -> tuple[str, AccountKey]:
    """accountId from the query: the one account this token's consent covers, else 404; and unless
    the caller checks it itself, one the core system still serves."""
    grant = g._get_current_object().api_grant
    given = _param("accountId", required=True)
    if not keys.ACCOUNT_ID_RE.fullmatch(given):
        raise ApiError("invalid_request", "accountIdの形式が正しくありません。")
    if not keys.same_account_id(given, grant.client_id, grant.account):
        raise ApiError("account_not_found")
    if check_served:
        _serviceable(grant.account)
    return given, grant.account


# --- endpoints --------------------------------------------------------------------------------

@bp.get("/openapi.json")
def openapi_document():
    response = json_response(openapi.document(g.tenant, page_size(), rate_limit()))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/accounts")
@require_token("accounts")
@per_app_limit
def accounts():
    ctx_g = g._get_current_object()
    grant = ctx_g.api_grant
    acct = _serviceable(grant.account)
    key = grant.account
    return json_response({"accounts": [{
        "accountId": keys.account_id(grant.client_id, key),
        "branchNo": key.branch,
        "accountTypeCode": key.account_type,
        "accountTypeName": ctx_g.tenant.account_type_name(key.account_type) or "",
        "accountNo": key.number,
        "accountName": acct.name_kana,
    }]})


@bp.get("/accounts/balances")
@require_token("accounts")
@per_app_limit
def balances():
    account_id, key = _requested_account(check_served=False)
    found, balance = core().account_and_balance(key)  # one question where the core can answer it so
    _still_served(found)
    if balance is None:
        raise ApiError("account_not_found")
    as_of = balance.as_of.astimezone(clock.JST)
    return json_response({"balances": [{
        "accountId": account_id,
        "balance": balance.balance,
        "withdrawableAmount": balance.withdrawable,
        "currencyCode": "JPY",
        "baseDate": as_of.date().isoformat(),
        "baseTime": as_of.strftime("%H:%M:%S+09:00"),
    }]})


@bp.get("/accounts/transactions")
@require_token("accounts")
@per_app_limit
def transactions():
    """Newest first by (date desc, seq desc); keyset pages of at most 500 (see history.py, keys.py)."""
    account_id, key = _requested_account()
    date_from = history.parse_date("dateFrom", _param("dateFrom"))
    date_to = history.parse_date("dateTo", _param("dateTo"))
    tenant = g._get_current_object().tenant
    today, months = clock.today_jst(), tenant.history_months
    after = None
    next_key = _param("nextItemKey")
    if next_key is not None:
        position = keys.decode_next(tenant.id, account_id, next_key)
        if position is None or (date_from not in (None, position.date_from)) \
                or (date_to not in (None, position.date_to)):
            raise ApiError("invalid_next_item_key")
        date_from, date_to = history.resolve(position.date_from, position.date_to, today, months, continuing=True)
        after = position.last
    else:
        date_from, date_to = history.resolve(date_from, date_to, today, months)
    size = page_size()
    written = core().transactions_json(key, date_from, date_to, after, size + 1) if problems.orjson else None
    if written is not None:  # each row already the JSON object _transaction_rows would make of it
        has_next = len(written) > size
        written = written[:size]
        count, last = len(written), _position(written[-1]) if has_next else None
        listed = problems.orjson.Fragment(b"[" + b",".join(written) + b"]")
    else:
        rows = core().transactions(key, date_from, date_to, after, size + 1)
        has_next = len(rows) > size
        rows = rows[:size]
        count, last = len(rows), rows[-1].position if has_next else None
        listed = _transaction_rows(rows)
    return json_response({
        "accountId": account_id,
        "currencyCode": "JPY",
        "dateFrom": date_from.isoformat(),
        "dateTo": date_to.isoformat(),
        "hasNext": has_next,
        "nextItemKey": keys.encode_next(tenant.id, account_id, keys.PagePosition(date_from, date_to, last))
        if has_next else None,
        "count": count,
        "transactions": listed,
    })


def _position(written: bytes) -> tuple:
    """A written row's (date, seq), the position Transaction.position gives: its itemKey is
    YYYYMMDD-seq (_transaction_rows)."""
    row = problems.orjson.loads(written)
    return dt.date.fromisoformat(row["transactionDate"]), int(row["itemKey"].rpartition("-")[2])


def _transaction_rows(rows) -> list[dict]:
    """The page's rows as the contract names them. Dates go to json_response as date objects (orjson
    writes them as YYYY-MM-DD, as isoformat() does), and a page's ~500 rows share a handful of
    dates, so each date's itemKey prefix is formatted once: this loop was most of a page's CPU."""
    day_keys: dict = {}
    out = []
    for t in rows:
        day = t.date
        prefix = day_keys.get(day)
        if prefix is None:
            prefix = day_keys[day] = f"{day:%Y%m%d}-"
        out.append({
            "itemKey": prefix + str(t.seq),
            "transactionDate": day,
            "valueDate": t.value_date,
            "transactionType": t.type,
            "amount": t.amount,
            "remarks": t.remarks,
            "balance": t.balance,
        })
    return out
