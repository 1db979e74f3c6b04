"""Staff read the operation log: every step of a flow, per account, never a secret."""
import json



def _rows(runner, *args):
    result = runner.invoke(args=["log", "show", "--tenant", "amami", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_staff_see_an_accounts_steps_newest_first_in_jst(amami, runner):
    amami.start(), amami.account()
    amami.customer(birth_year="1999")
    amami.customer()
    rows = _rows(runner, "--account", "115-1-1100026")
    assert [(r["event"], r["result"]) for r in rows[:3]] == [("identity_check", "ok"), ("identity_check", "fail"),
                                                              ("account_entered", "ok")]
    assert rows[0]["at"].endswith("+09:00") and rows[0]["name_kana"] == "ﾃﾞｰﾀ ﾀﾛｳ"
    assert all(r["tenant"] == "amami" for r in rows)


def test_other_accounts_and_unions_are_not_shown(amami, maruhachi, runner):
    amami.start(), amami.account()
    maruhachi.start(), maruhachi.account()
    assert {r["account_number"] for r in _rows(runner, "--account", "115-1-1100026")} == {"1100026"}
    assert all(r["tenant"] == "amami" for r in _rows(runner))


def test_a_badly_written_account_gets_a_clear_message(runner):
    result = runner.invoke(args=["log", "show", "--tenant", "amami", "--account", "1151100026"])
    assert result.exit_code == 2 and "店番-科目-口座番号" in result.output
