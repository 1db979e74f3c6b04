"""The flow's hot writes as prebuilt Core statements (issue 13): each must leave in the database what
the plain ORM code path leaves."""
import datetime as dt

from sqlmodel import Session, select

from webapp import clock, db, oplog
from webapp.flow.models import Flow
from webapp.oplog import OperationLog

LOGGED = [c.key for c in OperationLog.__table__.c if c.key != "id"]


def test_a_written_log_row_holds_what_a_recorded_one_holds(app, client, amami):
    amami.start()
    with Session(app.extensions["db_engine"]) as s:
        flow = s.exec(select(Flow)).one()
    clock.set_now(dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.timezone.utc))
    with app.test_request_context("/amami/flow/customer", environ_base={"REMOTE_ADDR": "198.51.100.7"},
                                  headers={"User-Agent": "Mozilla/5.0 (test)"}):
        s = db.session()
        oplog.record(s, tenant="amami", screen="SOA202", event="identity_check", result="ok", flow=flow,
                     detail="same")
        oplog.write(s, tenant="amami", screen="SOA202", event="identity_check", result="ok", flow=flow,
                    detail="same")
        s.commit()
        s.close()
    with Session(app.extensions["db_engine"]) as s:
        recorded, written = s.exec(select(OperationLog).where(OperationLog.detail == "same")
                                   .order_by(OperationLog.id)).all()
    assert {k: getattr(written, k) for k in LOGGED} == {k: getattr(recorded, k) for k in LOGGED}
    assert written.ip == "198.51.100.7" and written.flow_id == flow.id and written.branch == flow.branch
