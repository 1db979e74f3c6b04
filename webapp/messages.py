"""Every customer-facing message, verbatim from the manuals (SPEC.md), in one place.

Texts that state a field's length are functions of that length: the numbers themselves live in
webapp/fields.py, so a message can never state a length the rule does not keep.
"""

REQUIRED = "必ず入力して下さい。"
MISSING_FIELDS = "入力されていない項目があります。"
DIALOG_TITLE = "エラー"

# Field rules (screens ①, ②, ⑤): webapp/fields.py binds them to each field's numbers


def digits_exactly(n: int) -> str:
    return f"半角数字{n}桁で入力して下さい。"


def digits_at_most(n: int) -> str:
    return f"半角数字{n}桁以内で入力して下さい。"


def digits_either(low: int, high: int) -> str:
    return f"半角数字{low}桁または{high}桁で入力して下さい。"


def year_digits(n: int) -> str:
    return f"西暦を半角数字{n}桁で入力して下さい。"


def at_most_characters(n: int) -> str:
    return f"{n}文字以内で入力して下さい。"


HALF_WIDTH_KANA_ONLY = "半角カタカナで入力して下さい。"
EMAIL_FORMAT = "メールアドレスの形式が正しくありません。"
EMAIL_MISMATCH = "メールアドレスが一致しません。確認のため同じメールアドレスを入力して下さい。"
NO_SUCH_DATE = "存在しない日付です。生年月日を確認して下さい。"
FUTURE_DATE = "未来の日付は入力できません。生年月日を確認して下さい。"
CHECK_BIRTH_DATE = "生年月日を確認して下さい。"

# Field hints (the grey line under a label)


def hint_digits(n: int) -> str:
    return f"(半角数字{n}桁)"


HINT_DIGITS = "(半角数字)"
HINT_DIGITS_NO_HYPHEN = "(半角数字ハイフン無し)"
HINT_KANA = "(半角カタカナ) (例) ﾃﾞｰﾀ ﾀﾛｳ"
HINT_EMAIL = "(半角英数字記号)"
HINT_EMAIL_CONFIRM = "(半角英数字記号) 確認のため2回入力してください"

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
PAGE_NOT_FOUND = "ページが見つかりません。"
# the same conditions answered as JSON (API, token endpoints, webhooks): errorMessage
TOO_MANY_REQUESTS = "リクエストが多すぎます。しばらくしてから再度お試しください。"
RESOURCE_NOT_FOUND = "指定されたリソースは存在しません。"

# Flow
NO_FLOW = "API連携認証の有効な手続きがありません。お手数ですが、アプリから最初に戻って操作してください。"
CANCELLED_TITLE = "API連携認証の中止"
CANCELLED = "API連携認証を中止しました。"

# The authorization request, before any screen (an error page, never a redirect)
UNKNOWN_CLIENT = "連携元アプリを確認できませんでした（client_id が正しくありません）。"
UNKNOWN_REDIRECT = "連携元アプリの戻り先を確認できませんでした（redirect_uri が登録と一致しません）。"
BAD_AUTHORIZATION_REQUEST = "連携元アプリからの要求を受け付けられませんでした（要求の形式が正しくありません）。"

# ④ SOA209 電話番号認証, from the manual
WAITING_TEXT = "認証先電話番号へのお電話をお待ちしています。"
PRESSED_TOO_EARLY = "認証中（認証着信待ち）"
CALL_SEEN = "着信を確認しました。「確定する」ボタンを押してください。"
WITHHELD_SEEN = ("非通知の着信がありました。非通知設定を解除していただくか、"
                 "架電時に「186」をつけてお電話ください。")
SUPERSEDED_TEXT = ("別の画面で電話番号認証が開始されたため、この画面での認証は無効となりました。"
                   "API連携認証の最初に戻って操作してください。")


def expired_text(seconds: int) -> str:
    """The manual's message, with the configured window (`PHONE_AUTH_WINDOW_SECONDS`)."""
    return (f"{seconds}秒経過後の架電・「確定する」ボタン選択は無効となります。"
            "API連携認証の最初に戻って操作してください。")


# ⑥ SOA206 情報連携認可
AGREE_LABEL = "当信用組合のAPI利用規定を確認し、同意します。"
AGREE_REQUIRED = f"「許可する」の前に、API利用規定をご確認のうえ「{AGREE_LABEL}」にチェックを入れて下さい。"
CLIENT_GONE = "連携元アプリの登録が確認できなくなったため、認可できませんでした。お手数ですが、アプリから最初に戻って操作してください。"
