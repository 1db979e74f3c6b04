"""The README's FAPI 2.0 example runs as written: its Python block is executed against the app,
with `requests` answered by the test client and the customer's ①–⑥ walked when it asks for the URL."""
from __future__ import annotations

import json
import pathlib
import sys
import textwrap
import time
import types
from urllib.parse import urlsplit

from joserfc.jwk import ECKey

from conftest import FlowActions
from fapi2_support import public_jwks, register_fapi2_client
from test_oauth_support import REDIRECT_URI, allow, at_consent
from webapp import clock

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## FAPI 2.0\n"):]
    section = section[:section.index("\n## ", 5)]
    start = section.index("```python\n") + len("```python\n")
    return textwrap.dedent(section[start:section.index("```", start)])


class Answer:
    def __init__(self, response):
        self.status_code, self.headers, self._response = response.status_code, response.headers, response

    def json(self):
        return self._response.get_json()

    def raise_for_status(self):
        assert self.status_code < 400, self._response.get_data(as_text=True)


def requests_through(client) -> types.ModuleType:
    """A `requests` whose get/post reach the app through the test client."""
    def path(url):
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    module = types.ModuleType("requests")
    module.get = lambda url, timeout=None, headers=None: Answer(client.get(path(url), headers=headers or {}))
    module.post = lambda url, data=None, headers=None, timeout=None: Answer(
        client.post(path(url), data=data, headers=headers or {}))
    return module


def test_readme_fapi2_example_runs_from_par_to_the_dpop_bound_api_call(app, client, customers, tmp_path, monkeypatch):
    key = ECKey.generate_key("P-256")
    (tmp_path / "private-key.json").write_text(json.dumps(key.as_dict(private=True)))
    client_id = register_fapi2_client(app, "amami", tmp_path, key)["client_id"]
    assert public_jwks(key)["keys"][0]["x"] == key.as_dict()["x"]
    for name, value in {"RENKEI_BASE_URL": "https://renkei.test", "RENKEI_TENANT": "amami", "CLIENT_ID": client_id,
                        "REDIRECT_URI": REDIRECT_URI, "KEY_FILE": str(tmp_path / "private-key.json")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(sys.modules, "requests", requests_through(client))
    monkeypatch.setattr(time, "time", lambda: clock.now().timestamp())  # the example's clock is the app's
    printed = []

    def customer_comes_back(_prompt):
        authorize_url = printed[0][-1]
        customer = FlowActions.__new__(FlowActions)
        customer.app, customer.client, customer.tenant, customer.csrf = app, client, "amami", None
        customer.start = lambda **_: (client.get(urlsplit(authorize_url).path + "?" + urlsplit(authorize_url).query),
                                      customer.get("flow/account"))[1]
        at_consent(customer)
        return allow(customer).headers["Location"]

    namespace = {"__name__": "readme_example", "print": lambda *args: printed.append(args),
                 "input": customer_comes_back}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    status, body = printed[-1]
    assert status == 200 and body["accounts"][0]["accountNo"] == "1100026"
    assert namespace["tokens"]["token_type"] == "DPoP"
