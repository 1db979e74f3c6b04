"""操作ログ search: filters, keyset paging that neither skips nor repeats a row, CSV export."""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re

import pytest
from sqlmodel import Session

from webapp import clock, db
from webapp.oplog import OperationLog

from conftest import text_of
from staff_support import app_config, staff  # noqa: F401  (fixtures: fast hashing, amami's operator signed in)


def add_rows(app, n: int, *, tenant="amami", same_time_every=1, **fields):
    base = clock.now() - dt.timedelta(hours=1)
    with app.app_context(), Session(db.engine()) as s:
        for i in range(n):
            values = dict(screen="SOA202", event="identity_check", result="ok", branch="115", account_type="1",
                          account_number="1100026")
            values.update({k: (v(i) if callable(v) else v) for k, v in fields.items()})
            s.add(OperationLog(at=base + dt.timedelta(seconds=i // same_time_every), tenant=tenant, **values))
        s.commit()


def shown_details(response) -> list[str]:
    return re.findall(r"<td>(d-[0-9]+)</td></tr>", text_of(response))


def test_search_by_account_event_app_and_result(app, staff):
    add_rows(app, 3, detail=lambda i: f"d-{i}")
    add_rows(app, 2, account_number="2200031", detail=lambda i: f"d-{100 + i}")
    add_rows(app, 2, event="pin_check", result="fail", client_id="app-x", detail=lambda i: f"d-{200 + i}")
    add_rows(app, 2, tenant="maruhachi", detail=lambda i: f"d-{300 + i}")
    assert shown_details(staff.get("log", query_string={"account": "115-1-2200031"})) == ["d-101", "d-100"]
    assert shown_details(staff.get("log", query_string={"event": "pin_check"})) == ["d-201", "d-200"]
    assert shown_details(staff.get("log", query_string={"client_id": "app-x", "result": "fail"})) == ["d-201", "d-200"]
    everything = shown_details(staff.get("log"))
    assert len(everything) == 7 and not any(d.startswith("d-30") for d in everything)  # never the other union's


def test_search_by_date_range_in_jst(app, staff):
    add_rows(app, 1, detail="d-1")  # 2026-11-18 13:00 JST
    today = clock.today_jst()
    assert shown_details(staff.get("log", query_string={"date_from": today.isoformat(), "date_to": today.isoformat()})) == ["d-1"]
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    assert shown_details(staff.get("log", query_string={"date_from": yesterday, "date_to": yesterday})) == []


def test_keyset_pages_cover_every_row_once_in_order(app, staff):
    add_rows(app, 250, same_time_every=7, detail=lambda i: f"d-{i}")  # ties on `at`: the id decides
    seen, response = [], staff.get("log", query_string={"event": "identity_check"})
    while True:
        seen += shown_details(response)
        m = re.search(r'href="([^"]+)" id="next-page"', text_of(response))
        if not m:
            break
        response = staff.client.get(m.group(1).replace("&amp;", "&"))
    assert seen == [f"d-{i}" for i in reversed(range(250))]


def test_a_malformed_cursor_or_date_is_no_server_error(staff):
    assert staff.get("log", query_string={"after": "'; DROP TABLE x"}).status_code == 200
    assert staff.get("log", query_string={"after": "99999999999999999999.1"}).status_code == 200
    response = staff.get("log", query_string={"date_from": "2026-02-30", "account": "115-1"})
    assert response.status_code == 200
    assert "店番-科目-口座番号の形で入力してください" in text_of(response)
    assert staff.get("log.csv", query_string={"date_from": "x"}).status_code == 400


def test_csv_export_is_utf8_with_bom_japanese_headers_all_rows(app, staff):
    add_rows(app, 7, detail=lambda i: f"d-{i}")
    add_rows(app, 1, detail="=HYPERLINK(\"http://evil\")")
    response = staff.get("log.csv", query_string={"account": "115-1-1100026"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith(codecs.BOM_UTF8)
    table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert table[0][:4] == ["日時(JST)", "画面", "イベント", "結果"]
    assert len(table) == 1 + 8
    details = [row[table[0].index("詳細")] for row in table[1:]]
    assert "'=HYPERLINK(\"http://evil\")" in details  # a cell Excel will not run
    assert re.fullmatch(r"2026-11-18 13:0[0-9]:[0-9]{2}", table[-1][0])  # JST
    page = text_of(staff.get("log", query_string={"event": "log_exported"}))
    assert page.count('<tr class="result-ok"><td>') == 1  # the export itself is in the log, once


def test_csv_export_streams_in_chunks(app, staff, monkeypatch):
    from webapp.staff import logsearch

    monkeypatch.setattr(logsearch, "EXPORT_CHUNK", 10)
    add_rows(app, 35, same_time_every=4, detail=lambda i: f"d-{i}")
    response = staff.get("log.csv", query_string={"event": "identity_check"}, buffered=False)
    chunks = list(response.response)
    assert len(chunks) >= 5  # header, then one piece per 10 rows
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))[1:]
    assert [r[12] for r in rows] == [f"d-{i}" for i in reversed(range(35))]
