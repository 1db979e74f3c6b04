"""Every customer-facing message, verbatim from the manuals (SPEC.md), in one place."""

REQUIRED = "必ず入力して下さい。"
MISSING_FIELDS = "入力されていない項目があります。"
DIALOG_TITLE = "エラー"
ERROR_SUMMARY_TITLE = "入力内容をご確認ください"
ERROR_TITLE_PREFIX = "エラー："

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
MAINTENANCE_RESUMES = "サービスの再開は{resumes}の予定です。"
MAINTENANCE_RETURN = "連携元画面へ"
UNAVAILABLE = "ご指定のサービスはただ今お取扱できません。なお、お急ぎの場合は本サービスのお問合せ窓口へご照会下さい。"

# Flow
NO_FLOW = "API連携認証の有効な手続きがありません。お手数ですが、アプリから最初に戻って操作してください。"
CANCELLED_TITLE = "API連携認証の中止"
CANCELLED = "API連携認証を中止しました。"
CANCEL_CONFIRM = "中止してよろしいですか"
CANCEL_BACK = "戻る"
CANCEL_CONFIRM_TITLE = "（中止の確認）"

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
CALL_SUPERSEDED_SHORT = "別の画面で電話番号認証が開始されたため、この画面での認証は無効となりました。"
CALL_RETRY_HOW = "「もう一度電話番号認証を行う」を押すと、新しい認証先電話番号が表示されます。あらためてお電話ください。"
CALL_NO_RETRY_LEFT = "電話番号認証をやり直せる回数を超えました。「最初に戻る」を押して、API連携認証の最初から操作してください。"
CALL_GUIDANCE = (
    "お届け出電話番号のスマートフォンでこの画面を開いている場合は、上のボタンを押して電話をかけてください。",
    "別の端末でこの画面を開いている場合は、この画面を開いたまま、お届け出電話番号の電話から上記の番号にお電話ください。",
    "アプリを閉じてしまった場合は、アプリから最初に操作してください。",
)


def call_time_ran_out(seconds: int) -> str:
    return f"お電話の受付時間（{seconds}秒）が過ぎました。"
