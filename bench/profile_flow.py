"""Profile, in one process (Flask's test client, no server), the requests of a flow: the authorization
request, each screen's GET (① account … ⑥ consent; ① also as an htmx partial, account_htmx), the POSTs of ① ② ③ ④ ⑤ ⑥, ④'s status poll, the
telephony webhook and the token endpoint, and `/healthz` for scale; prints cProfile's top lines for
each, with the SQL statements and commits a request runs.

    python bench/profile_flow.py [--flows 60] [--warmup 1] [--top 25] [--sort tottime|cumulative]
                                 [--only poll ...] [--statements]

Each flow goes ①→⑥ and the token as a customer would; only the named requests run under the
profiler (each screen's GET 3 times a flow, ④'s after the one that opens its call attempt, which is
call_open; the poll 5 times), and none of the first --warmup flows' (whose templates are compiled then). ②'s identity check answers without its 0.1 s
floor (IDENTITY_CHECK_SECONDS=0) so the profile shows the work, not the sleep. Per request times
are the profiler's wall clock and this process's CPU time divided by the calls, so they include its
own overhead; the function calls a request are the steadiest figure on a busy machine.
--statements counts the SQL statements and commits a request and lists the last request's, in order
(COMMIT and ROLLBACK included); its listeners add their own calls to the profile. On PostgreSQL it
also counts the commands psycopg sent the server (every statement, the pool's pre-ping and the
BEGIN, COMMIT and ROLLBACK SQLAlchemy's events do not see: each one a round trip), and with Redis
the commands redis-py sent (each EVALSHA of a rate-limit hit one round trip; a pipeline one), both
read from the profile's own call counts. Redis is the app's usual: REDIS_URL in the environment.
"""
from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import io
import os
import pstats
import re
import secrets
import sys
import tempfile
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import harness
from bench_flow import BIRTH, NAME, PIN, REDIRECT_URI, TENANT, customer, seed

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TEL = re.compile(r'class="button call-button" href="tel:([0-9]+)"')
SCREENS = ("account", "customer", "phone", "call", "pin", "consent")
KINDS = ("authorize",) + SCREENS + ("account_htmx", "account_post", "customer_post", "phone_post", "call_open", "poll",
                                   "webhook", "call_post", "pin_post", "consent_post", "token", "healthz")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=1, help="flows run first, unprofiled")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--only", nargs="+", default=KINDS, choices=KINDS)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--dump", metavar="DIR", help="also write each profile to DIR/KIND.prof (pstats, snakeviz)")
    parser.add_argument("--statements", action="store_true", help="list the SQL of each kind's last request")
    args = parser.parse_args()

    from webapp import clock, create_app
    from webapp.callauth.twilio import compute_signature

    clock.set_now(None)
    with tempfile.TemporaryDirectory() as tmp, harness.workspace(args, PHONE_AUTH_WINDOW_SECONDS=3600,
                                                                 IDENTITY_CHECK_SECONDS=0, LOG_LEVEL="WARNING",
                                                                 MAIL_SUPPRESS_SEND=True) as ws:
        config = ws.app_config(GLOBAL_REQUEST_LIMIT="100000000 per second", REQUESTS_PER_IP="100000000 per second",
                               TOKEN_REQUESTS_PER_CLIENT="100000000 per second",
                               IDENTITY_CHECKS_PER_IP="100000000 per minute",
                               IDENTITY_FAILURES_PER_CLIENT="100000000 per minute",
                               IDENTITY_FAILURES_PER_UNION="100000000 per minute")
        client_app = seed(config, args.warmup + args.flows)
        app = create_app(config)
        profiles = {k: cProfile.Profile() for k in KINDS}
        spent = {k: [0.0, 0, 0.0] for k in KINDS}
        sql = {k: [0, 0] for k in KINDS}  # statements, commits
        listed = {k: [] for k in KINDS}  # the last request's statements
        running = []  # the kind being profiled, if any

        if args.statements:  # the listeners' own calls land in the profile: off unless asked for
            from sqlalchemy import event

            engine = app.extensions["db_engine"]

            @event.listens_for(engine, "before_cursor_execute")
            def _statement(_conn, _cursor, statement, *_args):
                if running:
                    sql[running[0]][0] += 1
                    listed[running[0]].append(" ".join(statement.split())[:160])

            @event.listens_for(engine, "commit")
            def _commit(_conn):
                if running:
                    sql[running[0]][1] += 1
                    listed[running[0]].append("COMMIT")

            @event.listens_for(engine, "rollback")
            def _rollback(_conn):
                if running:
                    listed[running[0]].append("ROLLBACK")

        def profiled(kind, call):
            if kind not in args.only or warming_up:
                return call()
            p = profiles[kind]
            listed[kind] = []
            running.append(kind)
            started, cpu = time.perf_counter(), time.process_time()
            p.enable()
            try:
                return call()
            finally:
                p.disable()
                running.clear()
                spent[kind][0] += time.perf_counter() - started
                spent[kind][1] += 1
                spent[kind][2] += time.process_time() - cpu

        for i in range(args.warmup + args.flows):
            warming_up = i < args.warmup
            c = customer(i)
            web = app.test_client()
            csrf = {}

            def get(path, **kw):
                r = web.get(path, **kw)
                m = CSRF.search(r.get_data(as_text=True))
                if m:
                    csrf["v"] = m.group(1)
                return r

            def post(path, data=None, **kw):
                r = web.post(path, data={"csrf_token": csrf.get("v"), **(data or {})}, **kw)
                assert r.status_code == 303, (path, r.status_code, r.get_data(as_text=True)[:300])
                return r

            verifier = secrets.token_urlsafe(48)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            profiled("authorize", lambda: web.get(f"/{TENANT}/oauth/authorize?" + urlencode({
                "response_type": "code", "client_id": client_app["client_id"], "redirect_uri": REDIRECT_URI,
                "scope": "accounts", "state": "st", "code_challenge": challenge, "code_challenge_method": "S256"})))
            flow = f"/{TENANT}/flow"
            def screen(step):
                for _ in range(3):
                    page = profiled(step, lambda: get(f"{flow}/{step}"))
                    assert page.status_code == 200, (step, page.status_code)
                return page

            screen("account")
            for _ in range(3):  # ① as htmx asks for it: the partial only
                assert profiled("account_htmx", lambda: get(f"{flow}/account", headers={"HX-Request": "true"})
                                ).status_code == 200
            for _ in range(3):  # the bare route, for scale
                assert profiled("healthz", lambda: web.get("/healthz")).status_code == 200
            profiled("account_post", lambda: post(f"{flow}/account", {
                "branch": c["branch"], "account_type": c["account_type"], "account_number": c["number"]}))
            screen("customer")
            profiled("customer_post", lambda: post(f"{flow}/customer", {
                "name_kana": NAME, "birth_year": str(BIRTH.year), "birth_month": "01", "birth_day": "01",
                "phone": c["phone"], "email": "b@example.jp", "email_confirm": "b@example.jp"}))
            screen("phone")
            profiled("phone_post", lambda: post(f"{flow}/phone"))
            assert profiled("call_open", lambda: get(f"{flow}/call")).status_code == 200  # opens the call attempt
            page = screen("call")
            pool = TEL.search(page.get_data(as_text=True)).group(1)
            for _ in range(5):
                assert profiled("poll", lambda: web.get(f"{flow}/call/status",
                                                        headers={"HX-Request": "true"})).status_code == 200
            url = ws.origin + "/telephony/inbound"
            params = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32,
                      "From": "+81" + c["phone"][1:], "To": "+81" + pool[1:], "CallStatus": "ringing",
                      "Direction": "inbound"}
            hook = profiled("webhook", lambda: app.test_client().post("/telephony/inbound", data=params, headers={
                "X-Twilio-Signature": compute_signature(url, params.items(), harness.TOKEN)}))
            assert hook.status_code == 200, hook.status_code
            profiled("call_post", lambda: post(f"{flow}/call"))
            screen("pin")
            profiled("pin_post", lambda: post(f"{flow}/pin", {"pin": PIN}))
            screen("consent")
            allowed = profiled("consent_post", lambda: post(f"{flow}/consent", {"agree": "y"}))
            code = parse_qs(urlsplit(allowed.headers["Location"]).query)["code"][0]
            basic = base64.b64encode(f"{client_app['client_id']}:{client_app['client_secret']}".encode()).decode()
            token = profiled("token", lambda: app.test_client().post(f"/{TENANT}/oauth/token", headers={
                "Authorization": f"Basic {basic}"}, data={"grant_type": "authorization_code", "code": code,
                                                          "redirect_uri": REDIRECT_URI, "code_verifier": verifier}))
            assert token.status_code == 200, token.get_data(as_text=True)
        for kind in args.only:
            total, calls, cpu = spent[kind]
            out = io.StringIO()
            stats = pstats.Stats(profiles[kind], stream=out)
            print(f"=== {kind}: {calls} requests, {total / max(calls, 1) * 1000:.2f} ms a request, CPU "
                  f"{cpu / max(calls, 1) * 1000:.2f} ms, {stats.total_calls // max(calls, 1):,} function calls "
                  "(profiled)")
            if args.statements:
                pg, redis = round_trips(stats)
                print(f"{sql[kind][0] / max(calls, 1):.1f} SQL statements and {sql[kind][1] / max(calls, 1):.1f} "
                      f"commits a request; {pg / max(calls, 1):.1f} PostgreSQL commands and "
                      f"{redis / max(calls, 1):.1f} Redis commands a request; the last one's:")
                print("\n".join("    " + line for line in listed[kind]))
            stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
            text = out.getvalue()
            print(text[text.find("   ncalls"):].rstrip())
            if args.dump:
                os.makedirs(args.dump, exist_ok=True)
                profiles[kind].dump_stats(f"{args.dump}/{kind}.prof")
    return 0


def round_trips(stats: pstats.Stats) -> tuple[int, int]:
    """(commands sent to PostgreSQL, commands sent to Redis) in a profile: psycopg sends a statement in
    `Cursor.execute` (prepared or not) and BEGIN, COMMIT or ROLLBACK in `_exec_command` (a generator,
    so the profile counts its send and its resumption with the answer: two a command); redis-py sends
    a command in `Redis._execute_command` and a pipeline in `Pipeline.execute`."""
    pg = redis = 0
    for (path, _line, name), (_cc, ncalls, *_rest) in stats.stats.items():
        path = path.replace("\\", "/")
        if path.endswith("/psycopg/cursor.py") and name == "execute":
            pg += ncalls
        elif path.endswith("/psycopg/_connection_base.py") and name == "_exec_command":
            pg += ncalls // 2
        elif path.endswith("/redis/client.py") and name in ("_execute_command", "execute"):
            redis += ncalls
    return pg, redis


if __name__ == "__main__":
    sys.exit(main())
