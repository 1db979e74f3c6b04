"""Operation-log search for staff: filters, keyset paging and a streamed CSV export.

Rows come newest first by (at, id). A page is one indexed range scan: `(at, id) < cursor`, never
OFFSET, so page 1,000 costs what page 1 costs and rows written meanwhile do not shift the pages
already read. The indexes (migration 0004) lead with the union and the filter's column, then `at`.
The export reads the same query in chunks of EXPORT_CHUNK rows on a connection of its own and writes
each chunk as it goes: memory stays flat whatever the number of rows.
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import io
import re
from collections.abc import Iterator

from sqlalchemy import and_, or_, select

from .. import clock, fields
from ..oplog import OperationLog

PAGE_SIZE = 100
EXPORT_CHUNK = 5000
_CURSOR = re.compile(r"([0-9]{1,19})\.([0-9]{1,19})\Z")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

# (header, column): Japanese headers for Excel; the columns a staff member reads.
CSV_COLUMNS = (
    ("日時(JST)", OperationLog.at), ("画面", OperationLog.screen), ("イベント", OperationLog.event),
    ("結果", OperationLog.result), ("店番", OperationLog.branch), ("科目", OperationLog.account_type),
    ("口座番号", OperationLog.account_number), ("口座名義カナ", OperationLog.name_kana),
    ("アプリ(client_id)", OperationLog.client_id), ("職員ID", OperationLog.staff_id),
    ("手続ID", OperationLog.flow_id), ("IPアドレス", OperationLog.ip), ("詳細", OperationLog.detail),
    ("ブラウザ", OperationLog.user_agent), ("ログID", OperationLog.id),
)


@dataclasses.dataclass(frozen=True)
class Query:
    tenant: str
    date_from: dt.date | None = None  # JST days, inclusive
    date_to: dt.date | None = None
    account: tuple[str, str, str] | None = None  # (店番, 科目, 口座番号)
    event: str | None = None
    client_id: str | None = None
    result: str | None = None

    def conditions(self) -> list:
        where = [OperationLog.tenant == self.tenant]
        if self.date_from:
            where.append(OperationLog.at >= dt.datetime.combine(self.date_from, dt.time(0), clock.JST))
        if self.date_to:
            where.append(OperationLog.at < dt.datetime.combine(self.date_to + dt.timedelta(days=1), dt.time(0), clock.JST))
        if self.account:
            branch, account_type, number = self.account
            where += [OperationLog.branch == branch, OperationLog.account_type == account_type,
                      OperationLog.account_number == fields.padded_account_number(number)]
        if self.event:
            where.append(OperationLog.event == self.event)
        if self.client_id:
            where.append(OperationLog.client_id == self.client_id)
        if self.result:
            where.append(OperationLog.result == self.result)
        return where


def encode_cursor(at: dt.datetime, row_id: int) -> str:
    return f"{(clock.as_utc(at) - _EPOCH) // dt.timedelta(microseconds=1)}.{row_id}"


def decode_cursor(value: str | None) -> tuple[dt.datetime, int] | None:
    """The position after which the next page starts; None (the first page) for anything malformed."""
    m = _CURSOR.fullmatch(value or "")
    if not m:
        return None
    try:
        return _EPOCH + dt.timedelta(microseconds=int(m[1])), int(m[2])
    except OverflowError:
        return None


def _after(position: tuple[dt.datetime, int]):
    """Rows strictly after `position` in (at desc, id desc). The plain `at <= :at` lets the index's
    range scan start at the cursor (an OR alone makes SQLite scan from the newest row every page)."""
    at, row_id = position
    return and_(OperationLog.at <= at, or_(OperationLog.at < at, OperationLog.id < row_id))


def search(s, query: Query, after: tuple[dt.datetime, int] | None = None,
           size: int = PAGE_SIZE) -> tuple[list[OperationLog], str | None]:
    """One page of rows and the cursor of the next page (None on the last)."""
    stmt = select(OperationLog).where(*query.conditions())
    if after is not None:
        stmt = stmt.where(_after(after))
    rows = list(s.scalars(stmt.order_by(OperationLog.at.desc(), OperationLog.id.desc()).limit(size + 1)))
    if len(rows) > size:
        rows = rows[:size]
        return rows, encode_cursor(rows[-1].at, rows[-1].id)
    return rows, None


def _safe(value) -> str:
    """A cell Excel will not run as a formula (CSV injection: = + - @ and tab/CR at the start)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_csv(engine, query: Query) -> Iterator[bytes]:
    """The whole result as CSV (UTF-8 with BOM, so Excel reads the Japanese; CRLF rows), in chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> bytes:
        data = buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        return data

    writer.writerow([header for header, _ in CSV_COLUMNS])
    yield codecs.BOM_UTF8 + flush()
    columns = [column for _, column in CSV_COLUMNS]
    at_index, id_index = columns.index(OperationLog.at), columns.index(OperationLog.id)
    after = None
    with engine.connect() as conn:
        while True:
            stmt = select(*columns).where(*query.conditions())
            if after is not None:
                stmt = stmt.where(_after(after))
            rows = conn.execute(stmt.order_by(OperationLog.at.desc(), OperationLog.id.desc()).limit(EXPORT_CHUNK)).all()
            for row in rows:
                values = list(row)
                values[at_index] = clock.as_utc(row[at_index]).astimezone(clock.JST).strftime("%Y-%m-%d %H:%M:%S")
                writer.writerow([_safe(v) for v in values])
            if rows:
                yield flush()
            if len(rows) < EXPORT_CHUNK:
                return
            after = (rows[-1][at_index], rows[-1][id_index])

