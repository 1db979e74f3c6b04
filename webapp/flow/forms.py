"""The WTForms forms of screens ①, ② (and the PIN of ⑤). Views never read request.form.

Each field's rule (label, length, character class, normaliser, message) is its spec in
webapp/fields.py; a form only puts the specs together and adds what spans fields (the date).
"""
from __future__ import annotations

import datetime as dt

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectChoice, SelectField, StringField, TelField
from wtforms.validators import Email, EqualTo, ValidationError

from .. import clock, fields, messages
from ..forms import from_spec, required
from ..fields import ACCOUNT_NUMBER, ACCOUNT_TYPE, BIRTH_YEAR, BRANCH, EMAIL, EMAIL_CONFIRM, NAME_KANA, PHONE, PIN


class AccountForm(FlaskForm):
    """① SOA201 ご利用口座情報入力."""

    branch = from_spec(StringField, BRANCH)
    account_type = SelectField(ACCOUNT_TYPE.label, validators=[required()], validate_choice=True)
    account_number = from_spec(StringField, ACCOUNT_NUMBER)

    def __init__(self, tenant, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.account_type.choices = [SelectChoice(t.code, t.name) for t in tenant.account_types]

    @property
    def padded_number(self) -> str:
        return fields.padded_account_number(self.account_number.data)


MONTHS = [SelectChoice(f"{m:02d}") for m in range(1, 13)]
DAYS = [SelectChoice(f"{d:02d}") for d in range(1, 32)]
UNCHOSEN = [SelectChoice("", "--")]


def _chosen(field: SelectField) -> bool:
    """The select's value is one of its choices (what WTForms' own choice check asks)."""
    return any(field.data == choice.value for choice in field.choices)


class CustomerForm(FlaskForm):
    """② SOA202 お客様情報入力."""

    name_kana = from_spec(StringField, NAME_KANA)
    birth_year = from_spec(StringField, BIRTH_YEAR)
    # Month and day start unchosen (「--」): a customer who types only the year gets 「必ず入力して
    # 下さい。」, not a mismatch that counts toward the lock (issue 11).
    birth_month = SelectField(messages.BIRTH_MONTH_LABEL, choices=UNCHOSEN + MONTHS, default="", validators=[required()])
    birth_day = SelectField(messages.BIRTH_DAY_LABEL, choices=UNCHOSEN + DAYS, default="", validators=[required()])
    phone = from_spec(TelField, PHONE)
    email = from_spec(EmailField, EMAIL, Email(message=EMAIL.message, check_deliverability=False))
    email_confirm = from_spec(EmailField, EMAIL_CONFIRM, EqualTo("email", message=messages.EMAIL_MISMATCH))

    def validate_birth_year(self, field):
        """The whole date, with its message under the year (the selects show no errors of their own).

        Month and day come from selects, but a request can carry anything: only a value on the
        list is turned into a number (int() takes "99999999999999999999", and date() then overflows).
        """
        if not BIRTH_YEAR.accepts(field.data):
            return
        if not (self.birth_month.data and self.birth_day.data):
            return  # their own required-field message says what is missing
        if not (_chosen(self.birth_month) and _chosen(self.birth_day)):
            raise ValidationError(messages.NO_SUCH_DATE)
        try:
            born = dt.date(int(field.data), int(self.birth_month.data), int(self.birth_day.data))
        except ValueError:  # 02/30 and the like
            raise ValidationError(messages.NO_SUCH_DATE)
        if born > clock.today_jst():
            raise ValidationError(messages.FUTURE_DATE)
        if born.year < fields.EARLIEST_BIRTH_YEAR:
            raise ValidationError(messages.CHECK_BIRTH_DATE)

    @property
    def birth_date(self) -> dt.date:
        return dt.date(int(self.birth_year.data), int(self.birth_month.data), int(self.birth_day.data))


class PinForm(FlaskForm):
    """⑤ SOA211 キャッシュカード暗証番号認証. The PIN is never echoed, stored or logged."""

    pin = from_spec(PasswordField, PIN)


def missing_required(form) -> bool:
    """True when some field failed only because it was empty: the 「エラー」 dialog case."""
    return any(messages.REQUIRED in f.errors for f in form)
