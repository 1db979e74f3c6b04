"""Profile, in one process (Flask's test client, no server), the account API calls issue 13 names:
`/accounts`, `/accounts/balances` and a 500-row transactions page; prints cProfile's top lines.

    python bench/profile_api.py [--calls 200] [--top 25] [--sort tottime|cumulative] [--only accounts ...]
                                [--dpop] [--database-url postgresql://...]

The account, its 10,000 transactions and the token are bench/bench_transactions.py's seed (a Bearer
token of an oauth2 client; --dpop binds it to a key and sends a fresh proof each call, the proof
made outside the profiler). Each kind is called --calls times after a few unprofiled warm-up calls;
every call writes its operation-log row, as in production. Per call times are the profiler's wall
clock and this process's CPU time divided by the calls, so they include its own overhead; the
function calls a request are the steadiest figure on a busy machine.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time

import harness
from bench_transactions import seed

KINDS = ("accounts", "balances", "transactions")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--only", nargs="+", default=KINDS, choices=KINDS)
    parser.add_argument("--dpop", action="store_true", help="a DPoP-bound token (a FAPI 2.0 client's)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--dump", metavar="DIR", help="also write each profile to DIR/KIND.prof (pstats, snakeviz)")
    args = parser.parse_args()

    from webapp import clock, create_app

    clock.set_now(None)
    with harness.workspace(args, API_RATE_LIMIT="100000000 per minute", LOG_LEVEL="WARNING") as ws:
        config = ws.app_config(GLOBAL_REQUEST_LIMIT="100000000 per second", REQUESTS_PER_IP="100000000 per second")
        token, account_id = seed(config)
        app = create_app(config)
        proof = _dpop_binding(app, ws) if args.dpop else None
        paths = {"accounts": "/amami/api/v1/accounts",
                 "balances": f"/amami/api/v1/accounts/balances?accountId={account_id}",
                 "transactions": f"/amami/api/v1/accounts/transactions?accountId={account_id}"}
        web = app.test_client()

        def headers(path):
            if proof is None:
                return {"Authorization": f"Bearer {token}"}
            return {"Authorization": f"DPoP {token}", "DPoP": proof("GET", path, token)}

        for kind in args.only:
            for _ in range(5):  # warm-up: first-call imports and caches stay out of the figures
                r = web.get(paths[kind], headers=headers(paths[kind]))
                assert r.status_code == 200, (kind, r.status_code, r.get_data(as_text=True)[:300])
            profile, total, cpu = cProfile.Profile(), 0.0, 0.0
            for _ in range(args.calls):
                h = headers(paths[kind])
                started, cpu_started = time.perf_counter(), time.process_time()
                profile.enable()
                r = web.get(paths[kind], headers=h)
                profile.disable()
                total += time.perf_counter() - started
                cpu += time.process_time() - cpu_started
                assert r.status_code == 200, (kind, r.status_code)
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            print(f"=== {kind}: {args.calls} calls, {total / args.calls * 1000:.2f} ms a call, CPU "
                  f"{cpu / args.calls * 1000:.2f} ms, {stats.total_calls // args.calls:,} function calls (profiled)")
            stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
            text = out.getvalue()
            print(text[text.find("   ncalls"):].rstrip())
            if args.dump:
                profile.dump_stats(f"{args.dump}/{kind}.prof")
    return 0


def _dpop_binding(app, ws):
    """Bind the seeded token to a new EC key (as the token endpoint does for a FAPI 2.0 client);
    returns proof(method, path, token) → a DPoP proof header for one call."""
    import base64
    import hashlib
    import json
    import secrets

    from cryptography.hazmat.primitives.asymmetric import ec
    from sqlalchemy import update

    from webapp import db
    from webapp.oauth import dpop
    from webapp.oauth.models import Token

    key = ec.generate_private_key(ec.SECP256R1())
    from joserfc import jwk, jws  # the library webapp.oauth.dpop verifies with

    private = jwk.ECKey.import_key(key)
    public = private.as_dict(private=False)
    jkt = private.thumbprint()
    with app.app_context(), db.engine().begin() as conn:
        conn.execute(update(Token).values(dpop_jkt=jkt))

    def proof(method: str, path: str, token: str) -> str:
        ath = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
        claims = {"htm": method, "htu": ws.origin + path.split("?")[0], "iat": int(time.time()),
                  "jti": secrets.token_urlsafe(16), "ath": ath}
        return jws.serialize_compact({"typ": "dpop+jwt", "alg": "ES256", "jwk": public},
                                     json.dumps(claims).encode(), private)

    _ = dpop  # noqa: F841 (imported so a missing module fails here, not mid-profile)
    return proof


if __name__ == "__main__":
    sys.exit(main())
