"""Every customer-facing message, verbatim from the manuals (SPEC.md), in one place."""

REQUIRED = "必ず入力して下さい。"
MISSING_FIELDS = "入力されていない項目があります。"
DIALOG_TITLE = "エラー"

# SPEC §3, checks against the core banking record
ACCOUNT_NOT_SERVICEABLE = "ご指定の口座は、本サービスではお取り扱いできません。"
IDENTITY_MISMATCH = "本人認証情報が誤っています。本人認証項目をご確認のうえ、再度入力して下さい。"
LOCKED_NOW = "お取扱いができなくなりました。詳しくは本サービスのお問合せ窓口へご照会下さい。"
LOCKED = "ただ今お取扱いできません。詳しくは本サービスのお問合せ窓口へご照会下さい。"
LOCKED_REASON = "理由コードはB84です。"

# SPEC §3, service-wide conditions
MAINTENANCE = "ただ今の時間はサービスを行っていません。ご了承下さい。"
BUSY = "ただ今受付が混雑しておりますので、しばらくしてからご利用下さい。"
SYSTEM_ERROR = "調整のため連絡ができなくなりました。なお、お急ぎの場合は本サービスのお問合せ窓口へご照会下さい。"
UNAVAILABLE = "ご指定のサービスはただ今お取扱できません。なお、お急ぎの場合は本サービスのお問合せ窓口へご照会下さい。"

# Flow
NO_FLOW = "API連携認証の有効な手続きがありません。お手数ですが、アプリから最初に戻って操作してください。"
CANCELLED_TITLE = "API連携認証の中止"
CANCELLED = "API連携認証を中止しました。"
