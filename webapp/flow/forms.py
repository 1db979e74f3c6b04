"""Every field rule of screens ①, ② (and the PIN of ⑤), in WTForms. Views never read request.form."""
from __future__ import annotations

import datetime as dt
import re

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectChoice, SelectField, StringField, TelField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Regexp, ValidationError

from .. import clock, messages
from . import normalise

BRANCH_LEN = 3
ACCOUNT_NUMBER_LEN = 7
NAME_MAX = 48
EMAIL_MAX = 64
PHONE_LENGTHS = (10, 11)
PIN_LEN = 4

HALF_KANA = re.compile(r"^[\uFF61-\uFF9F ]+$")


def required():
    return DataRequired(message=messages.REQUIRED)


class AccountForm(FlaskForm):
    """① SOA201 ご利用口座情報入力."""

    branch = StringField("店番", filters=[normalise.digits], validators=[
        required(), Regexp(rf"^[0-9]{{{BRANCH_LEN}}}$", message="半角数字3桁で入力して下さい。")])
    account_type = SelectField("科目", validators=[required()], validate_choice=True)
    account_number = StringField("口座番号", filters=[normalise.digits], validators=[
        required(), Regexp(rf"^[0-9]{{1,{ACCOUNT_NUMBER_LEN}}}$", message="半角数字7桁以内で入力して下さい。")])

    def __init__(self, tenant, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.account_type.choices = [SelectChoice(t.code, t.name) for t in tenant.account_types]

    @property
    def padded_number(self) -> str:
        return self.account_number.data.zfill(ACCOUNT_NUMBER_LEN)


MONTHS = [SelectChoice(f"{m:02d}") for m in range(1, 13)]
DAYS = [SelectChoice(f"{d:02d}") for d in range(1, 32)]
NO_SUCH_DATE = "存在しない日付です。生年月日を確認して下さい。"


def _chosen(field: SelectField) -> bool:
    """The select's value is one of its choices (what WTForms' own choice check asks)."""
    return any(field.data == choice.value for choice in field.choices)


class CustomerForm(FlaskForm):
    """② SOA202 お客様情報入力."""

    name_kana = StringField("お名前", filters=[normalise.half_width_kana], validators=[
        required(), Length(max=NAME_MAX, message=f"{NAME_MAX}文字以内で入力して下さい。"),
        Regexp(HALF_KANA, message="半角カタカナで入力して下さい。")])
    birth_year = StringField("生年月日（西暦 年）", filters=[normalise.digits], validators=[
        required(), Regexp(r"^[0-9]{4}$", message="西暦を半角数字4桁で入力して下さい。")])
    birth_month = SelectField("月", choices=MONTHS, default="01", validators=[required()])
    birth_day = SelectField("日", choices=DAYS, default="01", validators=[required()])
    phone = TelField("電話番号", filters=[normalise.digits], validators=[
        required(), Regexp(r"^[0-9]{10,11}$", message="半角数字10桁または11桁で入力して下さい。")])
    email = EmailField("メールアドレス", filters=[normalise.text], validators=[
        required(), Length(max=EMAIL_MAX, message=f"{EMAIL_MAX}文字以内で入力して下さい。"),
        Email(message="メールアドレスの形式が正しくありません。", check_deliverability=False)])
    email_confirm = EmailField("メールアドレス（確認用）", filters=[normalise.text], validators=[
        required(), Length(max=EMAIL_MAX, message=f"{EMAIL_MAX}文字以内で入力して下さい。"),
        EqualTo("email", message="メールアドレスが一致しません。確認のため同じメールアドレスを入力して下さい。")])

    def validate_birth_year(self, field):
        """The whole date, with its message under the year (the selects show no errors of their own).

        Month and day come from selects, but a request can carry anything: only a value on the
        list is turned into a number (int() takes "99999999999999999999", and date() then overflows).
        """
        if not (field.data and re.fullmatch(r"[0-9]{4}", field.data)):
            return
        if not (_chosen(self.birth_month) and _chosen(self.birth_day)):
            raise ValidationError(NO_SUCH_DATE)
        try:
            born = dt.date(int(field.data), int(self.birth_month.data), int(self.birth_day.data))
        except ValueError:  # 02/30 and the like
            raise ValidationError(NO_SUCH_DATE)
        if born > clock.today_jst():
            raise ValidationError("未来の日付は入力できません。生年月日を確認して下さい。")
        if born.year < 1900:
            raise ValidationError("生年月日を確認して下さい。")

    @property
    def birth_date(self) -> dt.date:
        return dt.date(int(self.birth_year.data), int(self.birth_month.data), int(self.birth_day.data))


class PinForm(FlaskForm):
    """⑤ SOA211 キャッシュカード暗証番号認証. The PIN is never echoed, stored or logged."""

    pin = PasswordField("キャッシュカードの暗証番号", filters=[normalise.digits], validators=[
        required(), Regexp(rf"^[0-9]{{{PIN_LEN}}}$", message="半角数字4桁で入力して下さい。")])


def missing_required(form) -> bool:
    """True when some field failed only because it was empty: the 「エラー」 dialog case."""
    return any(messages.REQUIRED in f.errors for f in form)
