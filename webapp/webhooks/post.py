"""Calls from the union's servers to an app's server, to the very address targets.py checked: one
POST of one event (`post`), and the GET of a FAPI 2.0 client's JWK Set at its `jwks_uri` (`fetch`).

The connection goes to that IP address while TLS still verifies the certificate for the URL's
host name (SNI and hostname check), so the check and the connection see the same server (a name
re-resolving in between, DNS rebinding, changes nothing). Short timeouts, no redirects followed (a
redirect could lead inside), no retries here (the outbox retries with back-off). A POST's answer
body is never read; a GET's is read up to a size limit and a deadline, then given up.
"""
from __future__ import annotations

import contextlib
import time
from urllib.parse import urlsplit

from ..deliveries import DeliveryFailure
from .targets import TargetRefused, checked_addresses, url_problem

USER_AGENT = "Renkei-Webhooks/1"
_CHUNK = 16 * 1024


class CallRefused(Exception):
    """The URL may never be called (its scheme, its host's addresses): retrying will not help."""


class CallFailed(Exception):
    """No good answer this time: the name did not resolve, no connection, a timeout, too big."""


@contextlib.contextmanager
def _opened(url: str, method: str, headers: dict, *, body: bytes | None, sandbox: bool, timeout: float):
    """The answer (body not read yet) of one request to the checked address, its connection closed
    on leaving; raises CallRefused/CallFailed."""
    # Imported here: a web worker calls out only for a FAPI 2.0 client's jwks_uri, and urllib3 with
    # requests (for its CA bundle) is ~2-6 MB of every worker's memory otherwise.
    import urllib3
    from requests import certs

    problem = url_problem(url, sandbox=sandbox)
    if problem:
        raise CallRefused(problem)
    try:
        address = checked_addresses(url, sandbox=sandbox)[0]
    except TargetRefused as refused:
        raise CallRefused(str(refused)) from None
    except (OSError, UnicodeError) as error:  # socket.gaierror: the name does not resolve (now)
        raise CallFailed(f"{type(error).__name__}: {error}"[:300]) from None
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    options = dict(timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False, maxsize=1)
    if https:
        pool = urllib3.HTTPSConnectionPool(address, port, server_hostname=parts.hostname,
                                           assert_hostname=parts.hostname, cert_reqs="CERT_REQUIRED",
                                           ca_certs=certs.where(), **options)
    else:
        pool = urllib3.HTTPConnectionPool(address, port, **options)
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if ":" in parts.hostname:
        host_header = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        response = pool.urlopen(method, path, body=body, redirect=False, assert_same_host=False,
                                preload_content=False, headers={"Host": host_header, "User-Agent": USER_AGENT, **headers})
        try:
            yield response
        finally:
            response.close()
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise CallFailed(f"{type(error).__name__}: {error}"[:300]) from None
    finally:
        pool.close()


def post(url: str, body: bytes, content_type: str, *, sandbox: bool, timeout: float) -> None:
    """Deliver `body` or raise DeliveryFailure (permanent when the URL may never be called)."""
    try:
        with _opened(url, "POST", {"Content-Type": content_type}, body=body, sandbox=sandbox,
                     timeout=timeout) as response:
            status = response.status  # the answer's body is never read: only its status counts
    except CallRefused as refused:
        raise DeliveryFailure(f"refused: {refused}", permanent=True) from None
    except CallFailed as failed:
        raise DeliveryFailure(str(failed)) from None
    if not 200 <= status < 300:
        raise DeliveryFailure(f"HTTP {status} from the app's server")


def fetch(url: str, accept: str, *, sandbox: bool, timeout: float, max_bytes: int) -> bytes:
    """The body of a 200 answer to a GET of `url`, at most `max_bytes`, all of it within `timeout`
    seconds; CallRefused or CallFailed otherwise."""
    deadline = time.monotonic() + timeout
    with _opened(url, "GET", {"Accept": accept}, body=None, sandbox=sandbox, timeout=timeout) as response:
        if response.status != 200:
            raise CallFailed(f"HTTP {response.status}")
        body = bytearray()
        while chunk := response.read1(_CHUNK):  # what has arrived: a slow drip still meets the deadline
            body += chunk
            if len(body) > max_bytes:
                raise CallFailed(f"more than {max_bytes} bytes")
            if time.monotonic() > deadline:
                raise CallFailed(f"no whole answer within {timeout} s")
        return bytes(body)
