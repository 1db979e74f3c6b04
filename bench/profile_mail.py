"""Profile, in one process, what the mail courier does for each completion mail: `send_these([id])`,
the claim, the sandbox transport's send and the mark-sent (webapp/deliveries.py). Prints the time and
function calls a mail, cProfile's top lines and, on PostgreSQL, the commands psycopg sent besides
the statements (a BEGIN or COMMIT each: a round trip).

    python bench/profile_mail.py [--mails 400] [--top 15] [--database-url URL]

A sender's cost is a flow's too: the courier thread runs in the worker that served ⑥, on its GIL.
--database-url defaults to a temporary SQLite file; with a PostgreSQL URL the run is in a scratch
database made beside that one and dropped after (harness.workspace).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import harness


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from sqlmodel import Session

    from webapp import clock, create_app, db
    from webapp.mail import send_these
    from webapp.mail.models import MailOutbox

    with harness.workspace(args, MAIL_SUPPRESS_SEND=True, LOG_LEVEL="WARNING") as ws:
        app = create_app(ws.app_config())
        with app.app_context():
            db.create_all(app)
            now = clock.now()
            total = args.warmup + args.mails
            with Session(db.engine()) as s:
                rows = [MailOutbox(tenant="amami", flow_id=i, consent_id=i, kind="consent_completed",
                                   sender="noreply@example.jp", recipient=f"c{i}@example.jp", subject="件名",
                                   body="本文\n", message_id=f"<{i}@example.jp>", next_attempt_at=now, created_at=now)
                        for i in range(total)]
                s.add_all(rows)
                s.commit()
                ids = [row.id for row in rows]
            for outbox_id in ids[:args.warmup]:
                send_these([outbox_id])
            profile = cProfile.Profile()
            started, cpu = time.perf_counter(), time.process_time()
            profile.enable()
            for outbox_id in ids[args.warmup:]:
                assert send_these([outbox_id]).sent == 1
            profile.disable()
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    stats = pstats.Stats(profile)
    n = args.mails
    print(f"=== {ws.engine}: {n} mails, {wall / n * 1e3:.2f} ms a mail, CPU {cpu / n * 1e3:.2f} ms, "
          f"{stats.total_calls / n:,.0f} function calls a mail (profiled)")
    commands = sum(v[1] for k, v in stats.stats.items() if "psycopg" in k[0] and k[2] == "_exec_command")
    if ws.engine.startswith("postgresql"):
        print(f"psycopg commands besides the statements (BEGIN, COMMIT, ROLLBACK): {commands / n:.1f} a mail")
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
