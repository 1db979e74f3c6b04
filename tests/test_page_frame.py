"""A page's frame (its linked files, logo, FAQ link) and its union's template overrides are found once
and kept (issue 13); kept per union and per script root, so no page ever shows another's."""
import re

from jinja2 import ChoiceLoader, DictLoader

from conftest import text_of

LINKS = re.compile(r'(?:href|src)="([^"]+)"')


def links(response) -> list[str]:
    return [u for u in LINKS.findall(text_of(response)) if not u.startswith(("http", "tel:", "mailto:", "#"))]


def test_each_union_keeps_its_own_logo_theme_and_faq_link(client):
    for _ in range(2):  # the second round is served from what the first kept
        amami, maruhachi = links(client.get("/amami/faq")), links(client.get("/maruhachi/faq"))
        assert any(u.startswith("/static/tenants/amami/logo.") for u in amami)
        assert any(u.startswith("/amami/theme.") for u in amami) and "/amami/faq" in amami
        assert not any("maruhachi" in u for u in amami)
        assert any(u.startswith("/static/tenants/maruhachi/logo.") for u in maruhachi)
        assert "/maruhachi/faq" in maruhachi and not any("amami" in u for u in maruhachi)


def test_a_page_under_a_script_root_links_its_files_under_that_root(client):
    plain = links(client.get("/amami/faq"))
    mounted = links(client.get("/amami/faq", base_url="http://localhost/portal"))
    assert mounted == ["/portal" + u for u in plain]
    assert links(client.get("/amami/faq")) == plain  # and the plain root's are not taken over


def test_a_new_override_shows_at_once_while_templates_auto_reload(app, amami):
    app.jinja_env.auto_reload = True
    assert "RELOADED-OVERRIDE" not in text_of(amami.start())
    app.jinja_env.loader = ChoiceLoader([
        DictLoader({"tenants/amami/partials/footer.html": "<footer>RELOADED-OVERRIDE</footer>"}),
        app.jinja_env.loader,
    ])
    assert "RELOADED-OVERRIDE" in text_of(amami.get("flow/account"))


def test_without_auto_reload_an_override_is_looked_up_once(app, amami, monkeypatch):
    app.jinja_env.auto_reload = False
    amami.start()
    looked_up = []
    select = app.jinja_env.select_template
    monkeypatch.setattr(app.jinja_env, "select_template", lambda names, *a, **k: looked_up.append(names) or
                        select(names, *a, **k))
    assert amami.get("flow/account").status_code == 200
    assert looked_up == []


def test_templates_take_their_macros_from_the_module_jinja_would_import(app):
    """`macros` (render.macros) is macros.html's module as `{% from 'macros.html' import … %}` gives it,
    made once: the import's per-render check of the context's globals (~135 function calls a screen)
    is gone, and the screens' bytes are the same (test_screen_html.py)."""
    from webapp import render

    app.jinja_env.auto_reload = False
    with app.app_context():
        module = render.macros(app)
        assert module is app.jinja_env.get_template("macros.html").module
        assert render.macros(app) is module
        assert callable(module.render_field) and callable(module.csrf)


def test_an_edit_to_the_macros_shows_at_once_while_templates_auto_reload(app, amami):
    app.jinja_env.auto_reload = True
    assert "RELOADED-MACRO" not in text_of(amami.start())
    source = app.jinja_env.loader.get_source(app.jinja_env, "macros.html")[0]
    app.jinja_env.loader = ChoiceLoader([
        DictLoader({"macros.html": source.replace("[必須]", "[必須]RELOADED-MACRO")}),
        app.jinja_env.loader,
    ])
    assert "RELOADED-MACRO" in text_of(amami.get("flow/account"))


def test_no_customer_template_imports_the_macros_per_render(app):
    """Every template outside staff/ takes its macros from `macros`; an import would bring the check back."""
    import pathlib

    root = pathlib.Path(app.root_path).parent / "templates"
    importing = [str(p.relative_to(root)) for p in root.rglob("*.html")
                 if "staff" not in p.relative_to(root).parts and "import 'macros.html'" not in p.read_text()
                 and "from 'macros.html'" in p.read_text()]
    assert importing == []


def test_a_unions_override_of_a_mail_template_is_its_mail_and_found_once(app, amami, monkeypatch):
    """The completion mail takes the union's own subject where it has one (mail/…, overridable per
    union like a screen), found once and kept: no loader search for each mail ⑥ queues."""
    from mail_support import outbox
    from test_oauth_support import authorized

    app.jinja_env.auto_reload = False
    app.jinja_env.loader = ChoiceLoader([
        DictLoader({"tenants/amami/mail/completion_subject.txt": "【あまみ】{{ client_name }}との連携"}),
        app.jinja_env.loader,
    ])
    authorized(amami)
    looked_up = []
    select_template = app.jinja_env.select_template
    monkeypatch.setattr(app.jinja_env, "select_template", lambda names, *a, **k: looked_up.append(names) or
                        select_template(names, *a, **k))
    authorized(amami)
    subjects = [mail.subject for mail in outbox(app)]
    assert len(subjects) == 2 and all(subject.startswith("【あまみ】") for subject in subjects)
    assert looked_up == []
