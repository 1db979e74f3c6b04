"""Both unions from one codebase: configuration plus template overrides, never `if tenant ==`."""
import pytest
from jinja2 import ChoiceLoader, DictLoader

from conftest import text_of
from webapp.tenants import load_tenants


def test_both_unions_are_configured(app):
    tenants = app.extensions["tenants"]
    assert set(tenants) == {"amami", "maruhachi"}
    assert [t.name for t in tenants["amami"].account_types] == ["普通預金", "貯蓄預金"]
    assert [t.name for t in tenants["maruhachi"].account_types] == ["普通預金"]
    assert tenants["amami"].contact.phone == "0997-52-7111"
    assert tenants["maruhachi"].contact.email == "kanri@maruhachi-shinkumi.jp"
    assert tenants["amami"].lock_threshold == tenants["maruhachi"].lock_threshold == 5


def test_a_unions_template_override_shows_only_for_that_union(app, amami, maruhachi):
    app.jinja_env.loader = ChoiceLoader([
        DictLoader({"tenants/amami/partials/footer.html": "<footer>AMAMI-TEST-THEME {{ screen_id }}</footer>"}),
        app.jinja_env.loader,
    ])
    app.jinja_env.cache.clear()
    assert "AMAMI-TEST-THEME SOA201" in text_of(amami.start())
    assert "AMAMI-TEST-THEME" not in text_of(maruhachi.start())


def test_config_file_must_match_its_name(tmp_path):
    (tmp_path / "other.toml").write_text((__import__("pathlib").Path(__file__).parents[1] / "webapp/tenants/amami.toml")
                                         .read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ValueError, match="does not match"):
        load_tenants(tmp_path)
