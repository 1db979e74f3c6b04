"""Every customer-facing message, verbatim from the manuals (SPEC.md), in one place.

Texts that state a field's length have `{n}` in place of it: the numbers themselves live in
webapp/fields.py, so a message can never state a length the rule does not keep.
"""

REQUIRED = "必ず入力して下さい。"
MISSING_FIELDS = "入力されていない項目があります。"
DIALOG_TITLE = "エラー"
ERROR_SUMMARY_TITLE = "入力内容をご確認ください"
ERROR_TITLE_PREFIX = "エラー："

# Field rules (screens ①, ②, ⑤): filled in with the numbers webapp/fields.py keeps
DIGITS_EXACTLY = "半角数字{n}桁で入力して下さい。"
DIGITS_AT_MOST = "半角数字{n}桁以内で入力して下さい。"
DIGITS_EITHER = "半角数字{low}桁または{high}桁で入力して下さい。"
YEAR_DIGITS = "西暦（半角数字{n}桁）、または昭和55のような和暦で入力して下さい。"
AT_MOST_CHARACTERS = "{n}文字以内で入力して下さい。"
BIRTH_MONTH_LABEL = "生年月日（月）"
BIRTH_DAY_LABEL = "生年月日（日）"
HALF_WIDTH_KANA_ONLY = "半角カタカナで入力して下さい。"
EMAIL_FORMAT = "メールアドレスの形式が正しくありません。"
EMAIL_MISMATCH = "メールアドレスが一致しません。確認のため同じメールアドレスを入力して下さい。"
NO_SUCH_DATE = "存在しない日付です。生年月日を確認して下さい。"
FUTURE_DATE = "未来の日付は入力できません。生年月日を確認して下さい。"
CHECK_BIRTH_DATE = "生年月日を確認して下さい。"

# Field hints (the grey line under a label)
HINT_DIGITS_EXACTLY = "(半角数字{n}桁)"
HINT_DIGITS_AT_MOST = "(半角数字{n}桁以内)"
HINT_WITH_EXAMPLE = "{hint} (例) {example}"
HINT_DIGITS = "(半角数字)"
HINT_TOTP = "登録した認証アプリに表示されている{n}桁の数字"
HINT_DIGITS_NO_HYPHEN = "(半角数字ハイフン無し)"
HINT_KANA = "ひらがな・カタカナで入力できます (例) ﾃﾞｰﾀ ﾀﾛｳ"
HINT_BIRTH_YEAR = "西暦{n}桁（例 1980）。昭和55・S55 のような和暦でも入力できます"
HINT_EMAIL = "(半角英数字記号)"
HINT_EMAIL_CONFIRM = "(半角英数字記号) 確認のため2回入力してください"

# SPEC §3, checks against the core banking record
ACCOUNT_NOT_SERVICEABLE = "ご指定の口座は、本サービスではお取り扱いできません。"
IDENTITY_MISMATCH = "本人認証情報が誤っています。本人認証項目をご確認のうえ、再度入力して下さい。"
LOCKED_NOW = "お取扱いができなくなりました。詳しくは本サービスのお問合せ窓口へご照会下さい。"
LOCKED = "ただ今お取扱いできません。詳しくは本サービスのお問合せ窓口へご照会下さい。"
LOCKED_REASON = "理由コードはB84です。"
LOCK_LIFTS = "このロックは翌日の0時に自動で解除されます。その後、あらためて操作してください。"


def lock_alert(*, just_locked: bool) -> dict:
    """No.3 (this failure locked the account) or No.4 (B84: it was locked already): the lock screen."""
    if just_locked:
        return {"message": LOCKED_NOW, "locked": True}
    return {"message": LOCKED, "reason": LOCKED_REASON, "locked": True}

# SPEC §3, service-wide conditions
MAINTENANCE = "ただ今の時間はサービスを行っていません。ご了承下さい。"
BUSY = "ただ今受付が混雑しておりますので、しばらくしてからご利用下さい。"
SYSTEM_ERROR = "調整のため連絡ができなくなりました。なお、お急ぎの場合は本サービスのお問合せ窓口へご照会下さい。"
MAINTENANCE_RESUMES = "サービスの再開は{resumes}の予定です。"
MAINTENANCE_RETURN = "連携元画面へ"
UNAVAILABLE = "ご指定のサービスはただ今お取扱できません。なお、お急ぎの場合は本サービスのお問合せ窓口へご照会下さい。"
PAGE_NOT_FOUND = "ページが見つかりません。"
# a form sent from a page whose session ended or that another tab replaced (CSRF check failed)
FORM_EXPIRED = "この画面の有効期限が切れたため、送信できませんでした。お手数ですが、画面を開き直してもう一度操作してください。"
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
CALL_SUPERSEDED_SHORT = "別の画面で電話番号認証が開始されたため、この画面での認証は無効となりました。"
SUPERSEDED_TEXT = CALL_SUPERSEDED_SHORT + "API連携認証の最初に戻って操作してください。"



# ⑥ SOA206 情報連携認可
AGREE_LABEL = "当信用組合のAPI利用規定を確認し、同意します。"
AGREE_REQUIRED = f"「許可する」の前に、API利用規定をご確認のうえ「{AGREE_LABEL}」にチェックを入れて下さい。"
CLIENT_GONE = "連携元アプリの登録が確認できなくなったため、認可できませんでした。お手数ですが、アプリから最初に戻って操作してください。"

CANCEL_CONFIRM = "中止してよろしいですか"
CANCEL_BACK = "戻る"
CANCEL_CONFIRM_TITLE = "（中止の確認）"

# 連携中のアプリ (CONTRACT §10)
LINKS_TITLE = "連携中のアプリ"
LINKS_START_LEAD = ("お客様の口座と連携しているアプリを確認し、連携を解除することができます。"
                    "ご本人確認のため、API連携認証と同じ手順（口座情報・お客様情報の入力、電話番号認証、"
                    "キャッシュカード暗証番号の入力）を行います。")
LINKS_START = "本人確認へ進む"
LINKS_LEAD = "お客様の口座と連携しているアプリの一覧です。連携を解除すると、そのアプリは口座情報・明細情報を取得できなくなります。"
LINKS_NONE = "連携中のアプリはありません。"
LINKS_NEVER_USED = "まだ利用されていません"
LINK_REVOKE = "連携を解除する"
LINK_REVOKE_CONFIRM = "「{app}」との連携を解除してよろしいですか"
LINK_REVOKE_NOTE = "解除するとすぐに、このアプリは口座情報・明細情報を取得できなくなります。再び連携するには、アプリから改めてAPI連携認証を行ってください。"
LINK_REVOKED = "「{app}」との連携を解除しました。ご入力いただいたメールアドレスにお知らせをお送りします。"
LINK_NOT_FOUND = "ご指定の連携は見つかりませんでした。すでに解除されたか、認可期間が過ぎた可能性があります。"
LINKS_FINISH = "終了する"
LINKS_FINISHED = "連携中のアプリの確認を終了しました。"

# The manuals' error tables (エラー事例): what each message means and what the customer does
# (対処方法), for each union's FAQ section 「エラーメッセージが表示されたとき」. A union's own advice
# for a locked account (奄美: 「お急ぎの場合は…」) is its configuration: [faq] locked_advice.
IDENTITY_ERRORS = (
    (ACCOUNT_NOT_SERVICEABLE, "入力いただいた科目、口座番号が現在ご利用中の口座と一致しない。",
     "キャッシュカードや通帳を参照し、正しい科目、口座番号を入力する。"),
    (IDENTITY_MISMATCH, "科目、口座番号は正しいが、その他の情報に誤りがある。",
     "当信用組合に届けている情報を正しく入力する。"),
    (LOCKED_NOW, "上記No.2のエラーを規定回数繰り返したことでロックされ、当日中はAPI連携認証操作が行えなくなった状態。",
     "アカウントロックは翌日0時に自動解除されますので、その後改めて操作する。"),
    (f"{LOCKED} {LOCKED_REASON}", "アカウントロック（上記No.3）された状態で、API連携認証を行った。", None),
)
SERVICE_ERRORS = (
    (MAINTENANCE, "当信用組合システムのサービス時間外（「3. サービスについて」の(Q1)の時間）です。",
     "上記の時間を避けて、改めて操作する。"),
    (BUSY, "金融機関API対象アプリの取引が集中している。", "しばらくしてから、改めて操作する。"),
    (SYSTEM_ERROR, "システムエラーです。",
     "しばらくしてから、改めて操作し、それでも改善しない場合は、お問合せ窓口へご照会下さい。"),
    (UNAVAILABLE, "当信用組合のシステムまたは電話番号認証のシステムが、一時的にご利用いただけない状態です。",
     "しばらくしてから、改めて操作し、それでも改善しない場合は、お問合せ窓口へご照会下さい。"),
)

# ④ SOA209: the window, its renewal (「もう一度電話番号認証を行う」) and the call button (issue 11)
CALL_BUTTON = "{number} に電話をかける"
CALL_DEADLINE = "{clock} までにお電話ください"
CALL_SECONDS_LEFT = "残り {seconds} 秒"
CALL_RETRY = "もう一度電話番号認証を行う"
CALL_RESTART = "最初に戻る"
CALL_RETRY_HOW = "「もう一度電話番号認証を行う」を押すと、新しい認証先電話番号が表示されます。あらためてお電話ください。"
CALL_NO_RETRY_LEFT = "電話番号認証をやり直せる回数を超えました。「最初に戻る」を押して、API連携認証の最初から操作してください。"
CALL_GUIDANCE = (
    "お届け出電話番号のスマートフォンでこの画面を開いている場合は、上のボタンを押して電話をかけてください。",
    "別の端末でこの画面を開いている場合は、この画面を開いたまま、お届け出電話番号の電話から上記の番号にお電話ください。",
    "アプリを閉じてしまった場合は、アプリから最初に操作してください。",
)
CALL_TIME_RAN_OUT = "お電話の受付時間（{seconds}秒）が過ぎました。"


# The staff console (for a union's staff, not customers; kept here with the rest)
STAFF_REQUIRED = "入力してください。"
STAFF_PASSWORD_LABEL = "パスワード（{n}文字以上）"
STAFF_PASSWORD_TOO_SHORT = "{n}文字以上で入力してください。"
STAFF_PASSWORD_MISMATCH = "パスワードが一致しません。"
STAFF_LOG_ACCOUNT_FORMAT = "店番-科目-口座番号の形で入力してください（例 115-1-1100026）。"
STAFF_DATE_ORDER = "終了日は開始日以降にしてください。"
STAFF_BAD_CODE = "確認コードが正しくありません。認証アプリに表示されている{digits}桁の数字を入力してください。"
STAFF_CODE_LEAD = "認証アプリに表示されている{digits}桁の確認コードを入力してください。"
STAFF_TOTP_HOWTO = ("スマートフォンの認証アプリ（Google Authenticator、Microsoft Authenticator など）で次のQRコードを"
                    "読み取ってください。読み取れない場合は、下のキーを手入力してください（時間ベース、{digits}桁、30秒）。")
