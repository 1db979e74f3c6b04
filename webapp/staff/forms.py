"""Forms of the staff console. Every POST form carries Flask-WTF's CSRF token; the search forms
(GET, no state change) do not. Fields are normalised once (NFKC, trimmed) and checked with ASCII
classes only."""
from __future__ import annotations

from flask import abort
from flask_wtf import FlaskForm
from wtforms import DateField, PasswordField, SelectChoice, SelectField, StringField, TextAreaField, TimeField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, Optional, Regexp, ValidationError

from .. import fields, messages
from ..fields import STAFF_EMAIL, STAFF_REASON, TOTP_CODE, text
from ..forms import from_spec

REQUIRED = messages.STAFF_REQUIRED
PASSWORD_MIN = 12


class LoginForm(FlaskForm):
    email = from_spec(StringField, STAFF_EMAIL)
    password = PasswordField("パスワード", validators=[DataRequired(REQUIRED), Length(max=200)])


class CodeForm(FlaskForm):
    code = from_spec(StringField, TOTP_CODE)


class SetupForm(FlaskForm):
    password = PasswordField(messages.STAFF_PASSWORD_LABEL.format(n=PASSWORD_MIN), validators=[
        DataRequired(REQUIRED),
        Length(min=PASSWORD_MIN, max=200, message=messages.STAFF_PASSWORD_TOO_SHORT.format(n=PASSWORD_MIN))])
    password_confirm = PasswordField("パスワード（確認）", validators=[
        DataRequired(REQUIRED), EqualTo("password", message=messages.STAFF_PASSWORD_MISMATCH)])
    code = from_spec(StringField, TOTP_CODE)


class AccountSearchForm(FlaskForm):
    """店番・科目・口座番号 (a GET form: it changes nothing)."""
    class Meta:
        csrf = False

    branch = from_spec(StringField, fields.BRANCH)
    account_type = SelectField("科目", validators=[InputRequired(REQUIRED)])
    number = from_spec(StringField, fields.ACCOUNT_NUMBER)

    @property
    def padded_number(self) -> str:
        return fields.padded_account_number(self.number.data)


def errors_text(form) -> str:
    """A form's messages in one line, for the page's error box."""
    return " ".join(e for errors in form.errors.values() for e in errors)


def reason_for(found) -> "ReasonForm":
    """The posted reason for an action on `found`; 404 when there is nothing to act on."""
    if found is None:
        abort(404)
    return ReasonForm()


class ReasonForm(FlaskForm):
    """Every action asks why; the reason goes to the operation log with the staff id."""
    reason = from_spec(StringField, STAFF_REASON)


class MaintenanceForm(ReasonForm):
    start_date = DateField("開始日", validators=[InputRequired(REQUIRED)])
    start_time = TimeField("開始時刻", validators=[InputRequired(REQUIRED)])
    end_date = DateField("終了日", validators=[InputRequired(REQUIRED)])
    end_time = TimeField("終了時刻", validators=[InputRequired(REQUIRED)])


# 店番-科目-口座番号, each part by its field's rule
LOG_ACCOUNT = (rf"{fields.BRANCH.pattern.pattern.strip('^$')}-[0-9]{{1,{fields.ACCOUNT_TYPE.max_length}}}"
               rf"-{fields.ACCOUNT_NUMBER.pattern.pattern.strip('^$')}\Z")


class LogSearchForm(FlaskForm):
    class Meta:
        csrf = False

    date_from = DateField("開始日", validators=[Optional()])
    date_to = DateField("終了日", validators=[Optional()])
    account = StringField("口座（店番-科目-口座番号）", filters=[text], validators=[
        Optional(), Regexp(LOG_ACCOUNT, message=messages.STAFF_LOG_ACCOUNT_FORMAT)])
    event = StringField("イベント", filters=[text], validators=[Optional(), Length(max=40)])
    client_id = StringField("アプリ（client_id）", filters=[text], validators=[Optional(), Length(max=64)])
    result = SelectField("結果", choices=[SelectChoice("", "すべて")] + [
        SelectChoice(r, r) for r in ("ok", "fail", "refused", "locked", "error")], validators=[Optional()])

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(messages.STAFF_DATE_ORDER)


class ClientForm(ReasonForm):
    name = StringField("アプリ名", filters=[text], validators=[DataRequired(REQUIRED), Length(max=100)])
    operator = StringField("運営会社", filters=[text], validators=[DataRequired(REQUIRED), Length(max=100)])
    redirect_uris = TextAreaField("戻り先URI（1行に1つ）", validators=[DataRequired(REQUIRED), Length(max=4000)])

