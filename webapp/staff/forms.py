"""Forms of the staff console. Every POST form carries Flask-WTF's CSRF token; the search forms
(GET, no state change) do not. Fields are normalised once (NFKC, trimmed) and checked with ASCII
classes only."""
from __future__ import annotations

import re
import unicodedata

from flask_wtf import FlaskForm
from wtforms import DateField, PasswordField, SelectChoice, SelectField, StringField, TextAreaField, TimeField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, Optional, Regexp, ValidationError

REQUIRED = "入力してください。"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text(value):
    if value is None:
        return None
    return _CONTROL.sub(" ", unicodedata.normalize("NFKC", str(value))).strip()


def digits(value):
    value = text(value)
    return re.sub(r"[-‐－ー\s]", "", value) if value else value


class LoginForm(FlaskForm):
    email = StringField("メールアドレス", filters=[text], validators=[DataRequired(REQUIRED), Length(max=254)])
    password = PasswordField("パスワード", validators=[DataRequired(REQUIRED), Length(max=200)])


class CodeForm(FlaskForm):
    code = StringField("確認コード（6桁）", filters=[digits], validators=[
        DataRequired(REQUIRED), Regexp(r"[0-9]{6}\Z", message="6桁の数字を入力してください。")])


class SetupForm(FlaskForm):
    password = PasswordField("パスワード（12文字以上）", validators=[
        DataRequired(REQUIRED), Length(min=12, max=200, message="12文字以上で入力してください。")])
    password_confirm = PasswordField("パスワード（確認）", validators=[
        DataRequired(REQUIRED), EqualTo("password", message="パスワードが一致しません。")])
    code = StringField("確認コード（6桁）", filters=[digits], validators=[
        DataRequired(REQUIRED), Regexp(r"[0-9]{6}\Z", message="6桁の数字を入力してください。")])


class AccountSearchForm(FlaskForm):
    """店番・科目・口座番号 (a GET form: it changes nothing)."""
    class Meta:
        csrf = False

    branch = StringField("店番", filters=[digits], validators=[
        DataRequired(REQUIRED), Regexp(r"[0-9]{3}\Z", message="店番は3桁の数字で入力してください。")])
    account_type = SelectField("科目", validators=[InputRequired(REQUIRED)])
    number = StringField("口座番号", filters=[digits], validators=[
        DataRequired(REQUIRED), Regexp(r"[0-9]{1,7}\Z", message="口座番号は7桁以内の数字で入力してください。")])


class ReasonForm(FlaskForm):
    """Every action asks why; the reason goes to the operation log with the staff id."""
    reason = StringField("理由", filters=[text], validators=[
        DataRequired("理由を入力してください。"), Length(max=100, message="理由は100文字以内で入力してください。")])


class MaintenanceForm(ReasonForm):
    start_date = DateField("開始日", validators=[InputRequired(REQUIRED)])
    start_time = TimeField("開始時刻", validators=[InputRequired(REQUIRED)])
    end_date = DateField("終了日", validators=[InputRequired(REQUIRED)])
    end_time = TimeField("終了時刻", validators=[InputRequired(REQUIRED)])


class LogSearchForm(FlaskForm):
    class Meta:
        csrf = False

    date_from = DateField("開始日", validators=[Optional()])
    date_to = DateField("終了日", validators=[Optional()])
    account = StringField("口座（店番-科目-口座番号）", filters=[text], validators=[
        Optional(), Regexp(r"[0-9]{3}-[0-9]{1,2}-[0-9]{1,7}\Z", message="店番-科目-口座番号の形で入力してください（例 115-1-1100026）。")])
    event = StringField("イベント", filters=[text], validators=[Optional(), Length(max=40)])
    client_id = StringField("アプリ（client_id）", filters=[text], validators=[Optional(), Length(max=64)])
    result = SelectField("結果", choices=[SelectChoice("", "すべて")] + [
        SelectChoice(r, r) for r in ("ok", "fail", "refused", "locked", "error")], validators=[Optional()])

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("終了日は開始日以降にしてください。")


class ClientForm(ReasonForm):
    name = StringField("アプリ名", filters=[text], validators=[DataRequired(REQUIRED), Length(max=100)])
    operator = StringField("運営会社", filters=[text], validators=[DataRequired(REQUIRED), Length(max=100)])
    redirect_uris = TextAreaField("戻り先URI（1行に1つ）", validators=[DataRequired(REQUIRED), Length(max=4000)])

