"""One POST of one event to an app's server, to the very address targets.py checked.

The connection goes to that IP address while TLS still verifies the certificate for the URL's
host name (SNI and hostname check), so the check and the connection see the same server. Short
timeouts, no redirects followed (a redirect could lead inside), no retries here (the outbox
retries with back-off). Any 2xx answer is a delivery; anything else, or no answer, is retried.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import urllib3
from requests import certs

from ..deliveries import DeliveryFailure
from .targets import TargetRefused, checked_addresses, url_problem

USER_AGENT = "Renkei-Webhooks/1"


def post(url: str, body: bytes, content_type: str, *, sandbox: bool, timeout: float) -> None:
    """Deliver `body` or raise DeliveryFailure (permanent when the URL may never be called)."""
    problem = url_problem(url, sandbox=sandbox)
    if problem:
        raise DeliveryFailure(f"refused: {problem}", permanent=True)
    try:
        address = checked_addresses(url, sandbox=sandbox)[0]
    except TargetRefused as refused:
        raise DeliveryFailure(f"refused: {refused}", permanent=True) from None
    except (OSError, UnicodeError) as error:  # socket.gaierror: the name does not resolve (now)
        raise DeliveryFailure(f"{type(error).__name__}: {error}"[:300]) from None
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
        response = pool.urlopen("POST", path, body=body, redirect=False, assert_same_host=False,
                                preload_content=False,  # the answer's body is never read: only its status counts
                                headers={"Host": host_header, "Content-Type": content_type,
                                         "User-Agent": USER_AGENT})
        response.close()
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise DeliveryFailure(f"{type(error).__name__}: {error}"[:300]) from None
    finally:
        pool.close()
    if not 200 <= response.status < 300:
        raise DeliveryFailure(f"HTTP {response.status} from the app's server")
