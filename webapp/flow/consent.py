"""⑥ SOA206 情報連携認可: the customer allows (許可する) or refuses (拒否する) the client's access.

The screen names the client's registered operator, the scope, the union's 認可期間 and the ご注意
list. 許可する works only with the API利用規定 box ticked; unticked, the screen says so (never a
400). 許可する grants in one transaction (oauth.consents.grant_consent) and sends the browser back to
the client with the code (303); 拒否する posts to the cancel screen, which ends the flow "denied"
and returns `error=access_denied` to the client.
"""
from __future__ import annotations

from flask import g
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired

from .. import db, messages, oplog
from ..messages import AGREE_LABEL, AGREE_REQUIRED, CLIENT_GONE
from ..mail import kick
from ..oauth.consents import AccountLocked, ClientGone, grant_consent
from ..oauth.models import OAuthClient
from .render import go, screen
from .state import end, flow_step, no_flow_response
from .views import bp


class ConsentForm(FlaskForm):
    agree = BooleanField(AGREE_LABEL, validators=[DataRequired(message=AGREE_REQUIRED)])


@bp.route("/consent", methods=["GET", "POST"])
@flow_step("consent")
def consent():
    flow = g.flow
    client = OAuthClient.by_id(flow.client_id)
    form = ConsentForm()
    alert = None
    if form.validate_on_submit():
        try:
            granted = grant_consent(flow, g.tenant, client)
        except AccountLocked:
            s = db.session()
            oplog.record(s, tenant=flow.tenant, screen="SOA206", event="consent", result="locked", flow=flow,
                         detail="B84")
            s.commit()
            alert = {"message": messages.LOCKED, "reason": messages.LOCKED_REASON}
        except ClientGone as gone:
            s = db.session()
            oplog.record(s, tenant=flow.tenant, screen="SOA206", event="consent", result="refused", flow=flow,
                         detail=f"client gone: {gone}"[:200])
            s.commit()
            end(flow, "client_gone")  # its redirect URI can no longer be trusted: no way back, no code
            return screen("consent_client_gone", "consent_client_gone", status=400, message=CLIENT_GONE)
        else:
            if granted is None:
                return no_flow_response()
            if granted.outbox_id is not None:
                kick(granted.outbox_id)
            return go(granted.location)
    return screen("consent", "consent_form", form=form, client=client, alert=alert)
