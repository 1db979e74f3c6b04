"""`flask telephony simulate-call`: a correctly signed call posted to a running server (sandbox only)."""
from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from conftest import text_of
from test_callauth_support import attempts, call_log, inbound_calls, pool_number_on, poll, to_call_screen


@pytest.fixture
def running_server(app):
    """The app served over real HTTP on a loopback port, as `flask run` would."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


def test_simulate_call_posts_a_signed_call_that_authenticates(amami, runner, running_server):
    page = to_call_screen(amami)
    number = pool_number_on(page)
    result = runner.invoke(args=["telephony", "simulate-call", "--from", "09011113333", "--to", number,
                                 "--url", running_server])
    assert result.exit_code == 0, result.output
    assert "200 <?xml" in result.output and '<Response><Reject reason="busy"/></Response>' in result.output
    assert [a.state for a in attempts(amami.app)] == ["confirmed"]
    assert "着信を確認しました。" in text_of(poll(amami))


def test_simulate_call_from_a_withheld_number_does_not_authenticate(amami, runner, running_server):
    page = to_call_screen(amami)
    result = runner.invoke(args=["telephony", "simulate-call", "--from", "anonymous", "--to", pool_number_on(page),
                                 "--url", running_server])
    assert result.exit_code == 0, result.output
    assert [a.state for a in attempts(amami.app)] == ["waiting"]
    assert call_log(amami.app, "inbound_call")[0].detail.startswith("withheld")


def test_simulate_call_repeating_a_call_sid_counts_once(amami, runner, running_server):
    page = to_call_screen(amami)
    args = ["telephony", "simulate-call", "--from", "09011113333", "--to", pool_number_on(page),
            "--url", running_server, "--call-sid", "CA" + "ab" * 16]
    assert runner.invoke(args=args).exit_code == 0
    assert runner.invoke(args=args).exit_code == 0
    assert len(inbound_calls(amami.app)) == 1


def test_simulate_call_reports_an_unreachable_server(runner):
    result = runner.invoke(args=["telephony", "simulate-call", "--from", "09011113333", "--to", "0120111001",
                                 "--url", "http://127.0.0.1:9"])
    assert result.exit_code != 0 and "could not reach" in result.output


@pytest.mark.parametrize("app_config", [{"SANDBOX": False}])
def test_simulate_call_does_not_exist_outside_sandbox(amami, runner, running_server, app_config):
    page = to_call_screen(amami)
    result = runner.invoke(args=["telephony", "simulate-call", "--from", "09011113333", "--to", pool_number_on(page),
                                 "--url", running_server])
    assert result.exit_code != 0 and "sandbox" in result.output
    assert inbound_calls(amami.app) == [] and [a.state for a in attempts(amami.app)] == ["waiting"]
