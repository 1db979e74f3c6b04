"""The OpenAPI 3.1 document of the account API, per union (`GET /{tenant}/api/v1/openapi.json`).

Built from the same constants the views use (error catalogue, page size), the union's own
configuration (history window, 認可期間, account types) and the field specs (webapp/fields.py),
and kept true by tests that validate real responses against it (openapi-core) and fuzz
the live app with it (schemathesis).
"""
from __future__ import annotations

from ..fields import ACCOUNT_NUMBER, BRANCH, NAME_KANA
from ..oauth import issuer
from .problems import CATALOGUE

JSON = "application/json"


def _list_of(key: str, item: str) -> dict:
    """An answer that is one list: {"<key>": [<item>, …]}."""
    return {"type": "object", "additionalProperties": False, "required": [key],
            "properties": {key: {"type": "array", "items": _ref(item)}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error_response(description: str, codes: list[str], headers: dict | None = None) -> dict:
    return {
        "description": description + " errorCode: " + ", ".join(f"`{c}`" for c in codes) + ".",
        "headers": {"x-fapi-interaction-id": {"$ref": "#/components/headers/InteractionId"}, **(headers or {})},
        "content": {JSON: {"schema": _ref("Error")}},
    }


def _ok(description: str, schema: str) -> dict:
    return {
        "description": description,
        "headers": {"x-fapi-interaction-id": {"$ref": "#/components/headers/InteractionId"}},
        "content": {JSON: {"schema": _ref(schema)}},
    }


def _codes(status: int) -> list[str]:
    return [code for code, (s, _) in CATALOGUE.items() if s == status]


def _account_errors(with_params: bool) -> dict:
    bad_request = ["invalid_request"] + (["invalid_date", "date_from_too_old", "invalid_date_range",
                                          "invalid_next_item_key"] if with_params else [])
    return {
        "400": {"$ref": "#/components/responses/BadRequest"} if not with_params
        else _error_response("The request is malformed.", bad_request,
                             {"WWW-Authenticate": {"$ref": "#/components/headers/WWWAuthenticate"}}),
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Forbidden"},
        "404": {"$ref": "#/components/responses/NotFound"},
        "405": {"$ref": "#/components/responses/MethodNotAllowed"},
        "429": {"$ref": "#/components/responses/TooManyRequests"},
        "500": {"$ref": "#/components/responses/ServerError"},
        "503": {"$ref": "#/components/responses/ServiceUnavailable"},
    }


def _digits_pattern(spec) -> str:
    """The field's digits at their stored (padded) length."""
    return f"^[0-9]{{{spec.max_length}}}$"


def document(tenant, page_size: int, rate_limit: str) -> dict:
    base = issuer(tenant.id)
    months = tenant.history_months
    account_types = ", ".join(f"{t.code} {t.name}" for t in tenant.account_types)
    account_id_param = {
        "name": "accountId", "in": "query", "required": True,
        "description": "The `accountId` from `GET /accounts` (opaque; stable for your app and this account).",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$"},
    }
    interaction_param = {"$ref": "#/components/parameters/InteractionId"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{tenant.name} 口座情報API",
            "version": "1.0.0",
            "description": (
                "Account information API for fintech apps: the account a customer linked through "
                "API連携認証, its balance, and its transactions of about the last "
                f"{months} months.\n\n"
                f"Get an access token with OAuth 2.0 (authorization code + PKCE S256) from `{base}` "
                f"(metadata: `/.well-known/oauth-authorization-server/{tenant.id}`), scope `accounts`, "
                "and send it as `Authorization: Bearer <token>`. A token covers exactly the account "
                f"of its consent ({tenant.consent_days} days).\n\n"
                "JSON is camelCase; amounts are integers in yen; dates are `YYYY-MM-DD` in JST. "
                "Every response carries `x-fapi-interaction-id` (yours if you send a UUID). Errors are "
                "`{\"errorCode\", \"errorMessage\"}`; branch on `errorCode`, never on the message. "
                f"Each app may call each endpoint up to {rate_limit} (429 with Retry-After beyond); an "
                "answer counted against it carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and "
                "`X-RateLimit-Reset` (Unix time the window ends). During the union's maintenance "
                "windows every call answers 503 with Retry-After."
            ),
        },
        "servers": [{"url": f"{base}/api/v1"}],
        "security": [{"bearerAuth": []}, {"dpopAuth": []}],
        "paths": {
            "/accounts": {
                "get": {
                    "operationId": "listAccounts",
                    "summary": "口座一覧: the account(s) linked by this token's consent",
                    "parameters": [interaction_param],
                    "responses": {"200": _ok("The consented account.", "AccountsResponse"),
                                  **_account_errors(False)},
                },
            },
            "/accounts/balances": {
                "get": {
                    "operationId": "getBalances",
                    "summary": "残高照会",
                    "parameters": [account_id_param, interaction_param],
                    "responses": {"200": _ok("The account's balance now.", "BalancesResponse"),
                                  **_account_errors(False)},
                },
            },
            "/accounts/transactions": {
                "get": {
                    "operationId": "getTransactions",
                    "summary": "入出金明細照会",
                    "description": (
                        "Transactions dated dateFrom..dateTo (inclusive), **newest first** by (transaction "
                        f"date desc, booking order desc), at most {page_size} a page. When `hasNext` is true, "
                        "ask again with `nextItemKey` (and the same or no dateFrom/dateTo) for the next page; "
                        "paging never skips or repeats a row, even when new transactions are booked between "
                        f"pages. dateFrom may reach back {months} months from today (JST)."
                    ),
                    "parameters": [
                        account_id_param,
                        {"name": "dateFrom", "in": "query", "required": False,
                         "description": f"Oldest date, default today minus {months} months; older is `date_from_too_old`.",
                         "schema": {"type": "string", "format": "date"}},
                        {"name": "dateTo", "in": "query", "required": False,
                         "description": "Newest date, default today (JST).",
                         "schema": {"type": "string", "format": "date"}},
                        {"name": "nextItemKey", "in": "query", "required": False,
                         "description": "The `nextItemKey` of the previous page (opaque).",
                         "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,100}$"}},
                        interaction_param,
                    ],
                    "responses": {"200": _ok("One page of transactions.", "TransactionsResponse"),
                                  **_account_errors(True)},
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApiDocument",
                    "summary": "This document (no authentication)",
                    "security": [],
                    "responses": {
                        "200": {"description": "OpenAPI 3.1 document.",
                                "headers": {"x-fapi-interaction-id": {"$ref": "#/components/headers/InteractionId"}},
                                "content": {JSON: {"schema": {"type": "object"}}}},
                        "405": {"$ref": "#/components/responses/MethodNotAllowed"},
                    },
                },
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http", "scheme": "bearer",
                    "description": "An access token (scope `accounts`) from the union's OAuth 2.0 token endpoint "
                                   f"`{base}/oauth/token` (RFC 6750).",
                },
                "dpopAuth": {
                    "type": "http", "scheme": "DPoP",
                    "description": "A DPoP-bound access token (a FAPI 2.0 client's, `token_type` DPoP) as "
                                   "`Authorization: DPoP <token>`, with a `DPoP` proof header for each request "
                                   "(RFC 9449: `htm`, `htu`, `iat`, a fresh `jti`, `ath`; ES256 or PS256).",
                },
            },
            "parameters": {
                "InteractionId": {
                    "name": "x-fapi-interaction-id", "in": "header", "required": False,
                    "description": "Your id for this call, a UUID: echoed back and kept in the union's log "
                                   "(any other value is replaced by a new UUID).",
                    "schema": {"type": "string"},
                },
            },
            "headers": {
                "InteractionId": {
                    "description": "The request's x-fapi-interaction-id if it was a UUID, else a new one.",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                },
                "WWWAuthenticate": {
                    "description": "RFC 6750 challenge: `Bearer realm=\"…\"`, with `error=\"invalid_token\"`, "
                                   "`\"invalid_request\"` or `\"insufficient_scope\"` when it applies "
                                   "(`DPoP realm=\"…\", …` for a DPoP-bound token, RFC 9449 §7.1).",
                    "schema": {"type": "string"},
                },
                "WWWAuthenticateChallenge": {
                    "description": "RFC 6750 challenge: `Bearer realm=\"…\"` when no token was sent, with "
                                   "`error=\"invalid_token\"` when the token is not good; `DPoP realm=\"…\", "
                                   "error=\"invalid_token\" | \"invalid_dpop_proof\", algs=\"ES256 PS256\"` "
                                   "for a DPoP-bound token without its proof (RFC 9449 §7.1).",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^(Bearer|DPoP) "},
                },
                "RetryAfter": {
                    "description": "Seconds to wait before trying again.",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                },
            },
            "responses": {
                "BadRequest": _error_response("The request is malformed.", ["invalid_request"],
                                              {"WWW-Authenticate": {"$ref": "#/components/headers/WWWAuthenticate"}}),
                "Unauthorized": _error_response(
                    "No access token, or it is invalid, expired or revoked (or its consent is).",
                    _codes(401), {"WWW-Authenticate": {"$ref": "#/components/headers/WWWAuthenticateChallenge"}}),
                "Forbidden": _error_response(
                    "The token lacks scope `accounts`, or the consented account is closed or has moved to "
                    "another branch (the customer must link it again).",
                    _codes(403), {"WWW-Authenticate": {"$ref": "#/components/headers/WWWAuthenticate"}}),
                "NotFound": _error_response("The accountId is not the account of this token's consent.",
                                            ["account_not_found", "not_found"]),
                "MethodNotAllowed": _error_response("Only GET is supported.", ["method_not_allowed"]),
                "TooManyRequests": _error_response("Your app's rate limit is exhausted.", ["too_many_requests"],
                                                   {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}),
                "ServerError": _error_response("An unexpected failure (the message carries an incident id).",
                                               ["server_error"]),
                "ServiceUnavailable": _error_response(
                    "The union's maintenance window (Retry-After: until it ends), or core banking is unavailable.",
                    _codes(503)),
            },
            "schemas": {
                "Error": {
                    "type": "object", "additionalProperties": False,
                    "required": ["errorCode", "errorMessage"],
                    "properties": {
                        "errorCode": {"type": "string", "description": "Stable, machine-readable; see each response."},
                        "errorMessage": {"type": "string"},
                    },
                },
                "Account": {
                    "type": "object", "additionalProperties": False,
                    "required": ["accountId", "branchNo", "accountTypeCode", "accountTypeName", "accountNo",
                                 "accountName"],
                    "properties": {
                        "accountId": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$"},
                        "branchNo": {"type": "string", "pattern": _digits_pattern(BRANCH), "description": BRANCH.label},
                        "accountTypeCode": {"type": "string", "enum": [t.code for t in tenant.account_types],
                                            "description": f"科目: {account_types}"},
                        "accountTypeName": {"type": "string"},
                        "accountNo": {"type": "string", "pattern": _digits_pattern(ACCOUNT_NUMBER),
                                      "description": ACCOUNT_NUMBER.label},
                        "accountName": {"type": "string", "maxLength": NAME_KANA.max_length,
                                        "description": "口座名義 (half-width kana)"},
                    },
                },
                "AccountsResponse": _list_of("accounts", "Account"),
                "Balance": {
                    "type": "object", "additionalProperties": False,
                    "required": ["accountId", "balance", "withdrawableAmount", "currencyCode", "baseDate",
                                 "baseTime"],
                    "properties": {
                        "accountId": {"type": "string"},
                        "balance": {"type": "integer", "description": "残高 (yen)"},
                        "withdrawableAmount": {"type": "integer", "description": "支払可能残高 (yen)"},
                        "currencyCode": {"const": "JPY"},
                        "baseDate": {"type": "string", "format": "date", "description": "JST"},
                        "baseTime": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\\+09:00$",
                                     "description": "hh:mm:ss+09:00 (JST), e.g. 14:00:00+09:00"},
                    },
                },
                "BalancesResponse": _list_of("balances", "Balance"),
                "Transaction": {
                    "type": "object", "additionalProperties": False,
                    "required": ["itemKey", "transactionDate", "valueDate", "transactionType", "amount", "remarks",
                                 "balance"],
                    "properties": {
                        "itemKey": {"type": "string", "description": "Unique and stable within the account (opaque)."},
                        "transactionDate": {"type": "string", "format": "date"},
                        "valueDate": {"type": "string", "format": "date", "description": "起算日"},
                        "transactionType": {"type": "string", "enum": ["1", "2"], "description": "1 入金, 2 出金"},
                        "amount": {"type": "integer", "minimum": 0},
                        "remarks": {"type": "string", "description": "摘要"},
                        "balance": {"type": "integer", "description": "残高 after this transaction"},
                    },
                },
                "TransactionsResponse": {
                    "type": "object", "additionalProperties": False,
                    "required": ["accountId", "currencyCode", "dateFrom", "dateTo", "hasNext", "nextItemKey",
                                 "count", "transactions"],
                    "properties": {
                        "accountId": {"type": "string"},
                        "currencyCode": {"const": "JPY"},
                        "dateFrom": {"type": "string", "format": "date"},
                        "dateTo": {"type": "string", "format": "date"},
                        "hasNext": {"type": "boolean"},
                        "nextItemKey": {"type": ["string", "null"], "description": "null when hasNext is false"},
                        "count": {"type": "integer", "minimum": 0, "maximum": page_size},
                        "transactions": {"type": "array", "maxItems": page_size, "items": _ref("Transaction")},
                    },
                },
            },
        },
    }
