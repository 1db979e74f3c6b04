"""Imports every table so SQLModel.metadata (and so Alembic) knows them all."""
from .budgets import CheckBudget  # noqa: F401
from .callauth.models import CallAttempt, InboundCall  # noqa: F401
from .corebanking.models import SandboxAccount, SandboxTransaction  # noqa: F401
from .flow.models import Flow  # noqa: F401
from .lockout import AccountLock  # noqa: F401
from .mail.models import MailOutbox  # noqa: F401
from .oauth.models import AuthorizationCode, Consent, OAuthClient, PushedRequest, SeenJti, Token  # noqa: F401
from .oplog import OperationLog  # noqa: F401
from .maintenance import MaintenanceChanges, MaintenanceWindow  # noqa: F401
from .staff.models import StaffAccount, StaffSession, StaffSetupToken  # noqa: F401
from .webhooks.models import SigningKey, WebhookOutbox  # noqa: F401
