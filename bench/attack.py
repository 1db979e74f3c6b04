"""The security review's attacks on identity checks (issue 8), over HTTP against gunicorn with
several workers (the Procfile's shape), printing what got through:

    python bench/attack.py [--workers 2] [--threads 8] [--database-url postgresql://...] [--redis-url redis://...]

1. parallel wrong PINs: 100 wrong PINs at once on one account's ⑤ (from 100 addresses, so only
   the lock stands in the way): how many core banking evaluated (the lock's threshold: 5).
2. one address across accounts: one wrong PIN on each of 60 accounts from one address: how many
   were evaluated before the address was refused (IDENTITY_CHECKS_PER_IP: 30).
3. many addresses: 300 wrong PINs on 300 accounts from 100 addresses (3 each), one app: how many
   were evaluated before the app's failure budget refused the rest (IDENTITY_FAILURES_PER_CLIENT: 200).
4. enumeration timing: ② on an unknown account (No.1) and with a wrong birth date (No.2),
   alternately: the median answer time of each and the difference.

Flows are seeded straight into the database, standing at the screen under attack, each with its
own browser cookie (signed with the server's key); every check then goes through the server as a
browser's would (GET the screen for its CSRF token, POST the entry). Addresses are sent as
`X-Forwarded-For` to a server started with FLASK_PROXY_FIX_X_FOR=1, as behind a load balancer.
The budgets' limits are the product's defaults. How the server is started: bench/harness.py.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import re
import secrets
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor

import harness
import requests

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TENANT = "amami"
CLIENT_ID = "attack-app"
WRONG_PIN = "9999"


@dataclasses.dataclass
class Victim:
    """A flow standing at a screen, as one browser holds it."""
    cookie: str
    number: str


def seed(config: dict, *, step: str, numbers: list[str], accounts: bool = True) -> list[Victim]:
    """Accounts `numbers` (when `accounts`) and one flow on each standing at `step`, with its cookie."""
    from sqlmodel import Session

    from webapp import clock, create_app, db
    from webapp.corebanking import AccountKey, pin_hash
    from webapp.corebanking.models import SandboxAccount
    from webapp.flow.models import Flow

    app = create_app(config)
    victims = []
    with app.test_request_context():
        serializer = app.session_interface.get_signing_serializer(app)
        with Session(db.engine()) as s:
            now = clock.now()
            for number in numbers:
                if accounts:
                    key = AccountKey(TENANT, "115", "1", number)
                    s.add(SandboxAccount(tenant=TENANT, branch="115", account_type="1", number=number,
                                         name_kana="ﾃｽﾄ ﾀﾛｳ", birth_date=dt.date(1980, 1, 1), phone="09011113333",
                                         pin_hash=pin_hash(key, "1234"), cash_card=True, status="active",
                                         balance=1000))
                handle = secrets.token_urlsafe(32)
                s.add(Flow(handle_hash=hashlib.sha256(handle.encode()).hexdigest(), tenant=TENANT, step=step,
                           client_id=CLIENT_ID, redirect_uri="https://app.example/cb", oauth_request={},
                           branch="115", account_type="1", account_number=number, phone_e164="+819011113333",
                           created_at=now, updated_at=now))
                victims.append(Victim(serializer.dumps({"flows": {TENANT: handle}}), number))
            s.commit()
    app.extensions["db_engine"].dispose()
    return victims


class Browser:
    """One attacker's browser on one flow: its cookie, its address."""

    def __init__(self, origin: str, cookie_name: str, victim: Victim, address: str):
        self.origin, self.http = origin, requests.Session()
        self.http.cookies.set(cookie_name, victim.cookie, domain="127.0.0.1", path="/")
        self.http.headers["X-Forwarded-For"] = address

    def submit(self, screen: str, data: dict) -> tuple[int, str, float]:
        """GET the screen, POST `data` with its CSRF token: (status, page, seconds until the answer's
        headers arrived; its body's length differs by outcome, as SPEC's pages do)."""
        url = f"{self.origin}/{TENANT}/flow/{screen}"
        page = self.http.get(url, timeout=30).text
        token = CSRF.search(page)
        if token is None:
            raise RuntimeError(f"no form on {screen}: {page[:300]}")
        response = self.http.post(url, data={"csrf_token": token.group(1), **data}, timeout=30, allow_redirects=False)
        return response.status_code, response.text, response.elapsed.total_seconds()


def evaluated(page: str) -> bool:
    """Core banking was asked: the answer is a mismatch (No.2) or the lock it just caused (No.3)."""
    from webapp import messages

    return messages.IDENTITY_MISMATCH in page or messages.LOCKED_NOW in page


def parallel_pins(ws, origin, cookie_name, n=100) -> dict:
    victim = seed(ws.app_config(), step="pin", numbers=["5000001"])[0]
    browsers = [Browser(origin, cookie_name, victim, f"10.1.{i // 250}.{i % 250 + 1}") for i in range(n)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda b: b.submit("pin", {"pin": WRONG_PIN}), browsers))
    return {"attempts": n, "evaluated": sum(evaluated(page) for _, page, _ in answers)}


def one_address(ws, origin, cookie_name, n=60) -> dict:
    victims = seed(ws.app_config(), step="pin", numbers=[f"51{i:05d}" for i in range(n)])
    browsers = [Browser(origin, cookie_name, v, "10.2.0.1") for v in victims]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda b: b.submit("pin", {"pin": WRONG_PIN}), browsers))
    return {"attempts": n, "evaluated": sum(evaluated(page) for _, page, _ in answers),
            "refused": sum(status == 429 for status, _, _ in answers)}


def many_addresses(ws, origin, cookie_name, addresses=100, each=3) -> dict:
    victims = seed(ws.app_config(), step="pin", numbers=[f"52{i:05d}" for i in range(addresses * each)])
    browsers = [Browser(origin, cookie_name, v, f"10.3.{i % addresses // 250}.{i % addresses % 250 + 1}")
                for i, v in enumerate(victims)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda b: b.submit("pin", {"pin": WRONG_PIN}), browsers))
    return {"attempts": len(browsers), "addresses": addresses, "evaluated": sum(evaluated(p) for _, p, _ in answers),
            "refused": sum(status == 429 for status, _, _ in answers)}


def enumeration(ws, origin, cookie_name, pairs=40) -> dict:
    """② on unknown accounts and on known ones with a wrong birth date, alternately, one address each pair."""
    known = seed(ws.app_config(), step="customer", numbers=[f"53{i:05d}" for i in range(pairs)])
    unknown = seed(ws.app_config(), step="customer", numbers=[f"54{i:05d}" for i in range(pairs)], accounts=False)
    entry = {"name_kana": "ﾃｽﾄ ﾀﾛｳ", "birth_year": "1999", "birth_month": "01", "birth_day": "01",
             "phone": "09011113333", "email": "a@example.jp", "email_confirm": "a@example.jp"}
    times = {"No.1": [], "No.2": []}
    for i in range(pairs):
        for label, victim in (("No.1", unknown[i]), ("No.2", known[i])):
            status, _, seconds = Browser(origin, cookie_name, victim, f"10.4.{i // 250}.{i % 250 + 1}").submit(
                "customer", entry)
            if status not in (200, 303):
                raise RuntimeError(f"{label}: status {status}")
            times[label].append(seconds)
    no1, no2 = statistics.median(times["No.1"]), statistics.median(times["No.2"])
    return {"pairs": pairs, "No.1 median ms": round(no1 * 1000, 2), "No.2 median ms": round(no2 * 1000, 2),
            "difference ms": round((no1 - no2) * 1000, 2)}


SCENARIOS = {"parallel-pins": parallel_pins, "one-address": one_address, "many-addresses": many_addresses,
             "enumeration": enumeration}


def run(args: argparse.Namespace, scenarios=tuple(SCENARIOS)) -> dict:
    """Each scenario against its own fresh server and database; their figures by name."""
    results = {}
    for name in scenarios:
        settings = {"PROXY_FIX_X_FOR": "1"}
        if args.redis_url:
            settings["RATELIMIT_STORAGE_URI"] = args.redis_url
        with harness.workspace(args, **settings) as ws:
            from webapp import create_app, db

            app = create_app(ws.app_config())
            db.create_all(app)
            app.extensions["db_engine"].dispose()
            with harness.serve(ws, args):
                cookie_name = "renkei"  # the http origin: no __Host- prefix
                results[name] = SCENARIOS[name](ws, ws.origin, cookie_name)
    return results  # with --database-url each scenario had a scratch database of its own (harness.workspace)


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file per scenario; a "
                        "PostgreSQL URL: a scratch database beside it per scenario")
    parser.add_argument("--redis-url", default=None, help="rate-limit storage (default: memory://, per worker)")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="default: all")
    return parser.parse_args(argv)


def main() -> int:
    args = arguments()
    store = args.redis_url or "memory://"
    print(f"gunicorn gthread {args.workers}x{args.threads}, {args.database_url or 'SQLite'}, limits storage {store}")
    for name, figures in run(args, args.scenario or tuple(SCENARIOS)).items():
        print(f"  {name:15} " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
