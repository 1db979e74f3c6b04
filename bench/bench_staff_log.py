"""Benchmark: the staff console's operation-log search and CSV export on 1,000,000 rows.

    python bench/bench_staff_log.py [--rows 1000000] [--database-url postgresql://...]
                                    (default: a temp SQLite file, built with `flask db upgrade`)

Loads ROWS log rows for one union (30 days, 2,000 accounts, a handful of events and apps; a tenth
for the other union), then times the first page (100 rows) of the searches staff make — everything,
one account, one event, one app, a one-day range, failures of one event — as the console runs them
(logsearch.search, the median of 5), and the CSV export of every row of the union (time, bytes,
and the Python heap's peak, tracemalloc). Goals: first page < 100 ms; export streamed, memory flat.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
import resource

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EVENTS = ("flow_started", "account_entered", "identity_check", "phone_confirmed", "call_confirm", "pin_check",
          "consented", "api_call")
RESULTS = ("ok",) * 8 + ("fail", "refused")


def load(app, rows: int) -> None:
    from sqlalchemy import insert

    from webapp import clock, db
    from webapp.oplog import OperationLog

    start = clock.now() - dt.timedelta(days=30)
    step = dt.timedelta(days=30) / rows
    batch = []
    engine = db.engine()
    began = time.perf_counter()
    with engine.begin() as conn:
        for i in range(rows):
            account = i % 2000
            batch.append({
                "at": start + step * i, "tenant": "maruhachi" if i % 10 == 9 else "amami", "flow_id": i // 8,
                "branch": "115", "account_type": "1", "account_number": f"{1100000 + account:07d}",
                "screen": "SOA202", "event": EVENTS[i % len(EVENTS)], "result": RESULTS[(i // 7) % len(RESULTS)],
                "client_id": f"app-{i % 5}", "ip": f"10.0.{(i // 256) % 256}.{i % 256}",
                "user_agent": "Mozilla/5.0 (bench)", "detail": None})
            if len(batch) == 20_000:
                conn.execute(insert(OperationLog), batch)
                batch.clear()
        if batch:
            conn.execute(insert(OperationLog), batch)
    print(f"loaded {rows:,} rows in {time.perf_counter() - began:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None,
                        help="default: a temporary SQLite file; a PostgreSQL URL: a scratch database beside it")
    args = parser.parse_args()

    import harness

    with harness.scratch_beside(args.database_url) as url:
        measure(args.rows, url)


def measure(rows: int, url: str | None) -> None:
    from webapp import clock, create_app, db
    from webapp.staff import logsearch

    folder = tempfile.mkdtemp(prefix="bench-staff-log-")
    url = url or f"sqlite:///{folder}/bench.sqlite3"
    app = create_app({"TESTING": True, "SECRET_KEY": "bench-secret-0123456789abcdef0123456789",
                      "DATABASE_URL": url})
    with app.app_context():
        from webapp import migrate

        migrate.upgrade()  # the migrations' indexes, as production has them
        load(app, rows)
        if url.startswith("postgresql"):
            with db.engine().begin() as conn:
                conn.exec_driver_sql("ANALYZE operation_log")
        else:
            with db.engine().begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        today = clock.today_jst()
        searches = {
            "everything": logsearch.Query("amami"),
            "one account": logsearch.Query("amami", account=("115", "1", "1100042")),
            "one event": logsearch.Query("amami", event="pin_check"),
            "one app": logsearch.Query("amami", client_id="app-3"),
            "one day": logsearch.Query("amami", date_from=today - dt.timedelta(days=10),
                                       date_to=today - dt.timedelta(days=10)),
            "failed pin checks": logsearch.Query("amami", event="pin_check", result="fail"),
            "account + 3 days": logsearch.Query("amami", account=("115", "1", "1100042"),
                                                date_from=today - dt.timedelta(days=5), date_to=today - dt.timedelta(days=3)),
        }
        print(f"first page ({logsearch.PAGE_SIZE} rows), median of 5, {url.split(':')[0]}:")
        for name, query in searches.items():
            times = []
            for _ in range(5):
                s = db.session()
                began = time.perf_counter()
                rows, cursor = logsearch.search(s, query)
                times.append((time.perf_counter() - began) * 1000)
                s.close()
                from flask import g
                g.pop("db_session", None)
            began = time.perf_counter()
            if cursor:
                logsearch.search(db.session(), query, logsearch.decode_cursor(cursor))
            next_ms = (time.perf_counter() - began) * 1000
            print(f"  {name:18s} {statistics.median(times):7.1f} ms  ({len(rows)} rows; next page {next_ms:.1f} ms)")

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        began = time.perf_counter()
        size = chunks = 0
        for chunk in logsearch.export_csv(db.engine(), logsearch.Query("amami")):
            size += len(chunk)
            chunks += 1
        elapsed = time.perf_counter() - began
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"CSV export of every amami row: {elapsed:.1f} s, {size / 1e6:.1f} MB in {chunks} chunks "
              f"(chunk {logsearch.EXPORT_CHUNK} rows); peak RSS {rss_before:.0f} MB before, {rss_after:.0f} MB after")
        # The Python heap's peak while exporting (tracemalloc slows the run, so it is a second pass on 50,000 rows).
        tracemalloc.start()
        for n, _chunk in enumerate(logsearch.export_csv(db.engine(), logsearch.Query("amami"))):
            if n * logsearch.EXPORT_CHUNK >= 50_000:
                break
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"Python heap peak while exporting: {peak / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
