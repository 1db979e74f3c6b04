"""A WTForms field built from its spec in webapp/fields.py: the customer screens' forms
(flow/forms.py) and the staff console's (staff/forms.py) both build theirs here, so a rule stands
in one place and is checked the same way everywhere."""
from __future__ import annotations

from wtforms.validators import DataRequired, Length, Regexp

from . import fields, messages


def required():
    return DataRequired(message=messages.REQUIRED)


def checks(spec: fields.Spec, *more) -> list:
    """Required, then the spec's length (free text) and character class, then `more`."""
    rules = [required()]
    if spec.too_long:
        rules.append(Length(max=spec.max_length, message=spec.too_long))
    if spec.pattern is not None:
        rules.append(Regexp(spec.pattern, message=spec.message))
    return rules + list(more)


def from_spec(kind, spec: fields.Spec, *more):
    """A form field of `kind` (StringField, TelField, …) with the spec's label, normaliser and checks."""
    return kind(spec.label, filters=[spec.normalise], validators=checks(spec, *more))
