from conftest import text_of


def test_authorize_opens_screen_one(amami):
    page = amami.start()
    assert page.status_code == 200
    assert "API連携認証（ご利用口座情報入力）" in text_of(page)
    assert "画面ID : SOA201" in text_of(page)


def test_correct_entries_reach_phone_screen(amami):
    response = amami.through_customer()
    assert response.headers["Location"].endswith("/amami/flow/phone")
    assert "（電話番号の確認）" in text_of(amami.get("flow/phone"))
