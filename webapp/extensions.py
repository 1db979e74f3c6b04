"""Extensions, created unbound here and bound in create_app()."""
from __future__ import annotations

import functools
import logging
import threading
import time
from typing import NamedTuple

import flask_compress
import flask_limiter
import flask_talisman
from flask import current_app, request
from flask.globals import request_ctx
from flask_limiter.util import get_qualified_name, get_remote_address
from flask_mail import Mail
from flask_wtf import CSRFProtect
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import STRATEGIES, FixedWindowRateLimiter
from limits.util import WindowStats
from werkzeug.datastructures import Headers

log = logging.getLogger("renkei.ratelimit")
ALL = object()  # every endpoint may be limited
# Answers on which Retry-After means something (RFC 6585 §4, RFC 9110 §10.2.3; 3xx too, but no limited
# view redirects): only these get it from the limiter (Limiter._limit_headers).
RETRY_AFTER_STATUSES = frozenset({429, 503})


class Counted(NamedTuple):
    """What Limiter.count_limits counted: the limit the X-RateLimit-* headers show and its window
    after this call (Flask-Limiter's choice: the breached one, else the smallest window), and the
    first limit this call reached (None when it passed)."""

    limit: RateLimitItem
    window: WindowStats
    reached: RateLimitItem | None

    def headers(self, status: int) -> list[tuple[str, str]]:
        """The answer's X-RateLimit-* headers, as Flask-Limiter writes them, and its Retry-After
        (seconds to the window's end) on a 429 or 503 only (see Limiter._limit_headers)."""
        reset_at = int(self.window.reset_time + 1)
        headers = [("X-RateLimit-Limit", str(self.limit.amount)), ("X-RateLimit-Remaining", str(self.window.remaining)),
                   ("X-RateLimit-Reset", str(reset_at))]
        if status in RETRY_AFTER_STATUSES:
            headers.append(("Retry-After", str(int(reset_at - time.time()))))
        return headers


@functools.lru_cache(maxsize=16)
def _sorted_limits(text: str) -> tuple[RateLimitItem, ...]:
    """A limit setting's items, smallest window first, parsed once per text (Flask-Limiter's order)."""
    return tuple(sorted(parse_many(text)))


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory storage without its expiry thread.

    MemoryStorage starts a new threading.Timer (10 ms) whenever the last one has run: under load about
    a hundred thread starts a second a worker, each making the request that started it wait until
    the new thread gets the GIL (the largest item of the ④ poll's profile). A counter past its window
    is dropped when read anyway (MemoryStorage.get); the keys nobody reads again are swept here, inline,
    at most once a second."""

    SWEEP_SECONDS = 1.0
    _swept_at = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # MemoryStorage's private hook, called on every count
        now = time.monotonic()
        if now - self._swept_at >= self.SWEEP_SECONDS:
            self._swept_at = now
            self._MemoryStorage__expire_events()

    def hit_in_order(self, windows) -> int | None:
        """Count one in each fixed window `(key, expiry seconds, limit)` in turn, stopping at the
        first that was already full: its index, or None. What FixedWindowRateLimiter.hit on each in
        turn does (`incr(key, expiry) <= limit`: a counter past its expiry starts again, the first
        count of a window sets its expiry), under the same per-key locks, with the stock methods'
        wrappers and look-ups once a request instead of once a window: each `hit` here was ~24k
        instructions of the ④ poll's ~1.3M, which counts two."""
        now = time.time()
        for i, (key, expiry, amount) in enumerate(windows):
            if self.count_in_window(key, expiry, now)[0] > amount:
                return i
        return None

    def count_in_window(self, key: str, expiry: float, now: float | None = None) -> tuple[int, float]:
        """`incr(key, expiry)`: one more in the fixed window `key`, as MemoryStorage counts it (a
        counter past its expiry starts again, the first count of a window sets its expiry), under
        its per-key lock; the count now, and when the window ends (`get_expiry(key)`)."""
        self._MemoryStorage__schedule_expiry()
        now = time.time() if now is None else now
        storage, expirations = self.storage, self.expirations
        with self.locks[key]:
            if expirations.get(key, 0) <= now:
                storage.pop(key, None)
                expirations.pop(key, None)
            count = storage[key] + 1
            storage[key] = count
            if count == 1:
                expirations[key] = now + expiry
            return count, expirations[key]


class Limiter(flask_limiter.Limiter):
    """Flask-Limiter's Limiter, with what it lacks.

    - Each app it is bound to gets its own storage settings (see config._rate_limit_storage).
      The stock `init_app` keeps the first app's key prefix, fallback, swallow and storage options
      for good, and a storage once marked dead stays dead for the next app: the tests bind this
      one module-level limiter to a new app (its own database, its own Redis prefix) per test.
    - Counters a view keeps by hand (`test`/`hit`, e.g. invalid API tokens per address) get the
      same key prefix and the same fall-back to memory as the decorated limits.
    - Counters in memory (`memory://`, and the fall-back) are kept without a timer thread
      (SweptMemoryStorage).
    - Going to memory and back to the storage is logged as a warning on `renkei.ratelimit`
      (Flask-Limiter says so only on its own logger, which has a NullHandler, and says
      "recovered" at INFO): the operator learns that limits went per-process, and when they came back.
    - A request to a view with no limit of its own (every customer screen, the poll) skips
      Flask-Limiter's per-request resolution (≈0.15 ms of the ④ poll's CPU) while no default,
      application, blueprint or fall-back limit exists and the storage answers; the screens' own
      counters are shedding.py's. So does the before-request pass of a view whose limits are all
      its decorator's (the staff login's): with none of those, no meta limit and no hint (a limit
      decorating a function the view calls), Flask-Limiter resolves an empty list there and counts
      the view's limits in the decorator anyway.
    - The account API counts its per-app limit with `count_limits`, on Flask-Limiter's storage
      and keys, without the decorator's per-request machinery.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request_filter(self._has_no_limit)

    def _has_no_limit(self) -> bool:
        if self._storage_dead:  # Flask-Limiter asks the storage again on the requests of unlimited views
            return False
        extensions = current_app.extensions
        limited = extensions.get("rate_limited_endpoints")
        if limited is None:
            limited = extensions["rate_limited_endpoints"] = self._limited_endpoints()
        return limited is not ALL and request.endpoint not in limited

    def _limited_endpoints(self):
        manager = self.limit_manager
        if (manager.default_limits or manager.application_limits or manager._blueprint_limits
                or any(self._in_memory_fallback)):
            return ALL
        return frozenset(endpoint for endpoint, view in current_app.view_functions.items()
                         if get_qualified_name(view) in self._marked_for_limiting
                         or manager.has_hints(endpoint))

    def init_app(self, app) -> None:
        self._storage_options = {}
        self._swallow_errors = None
        self._in_memory_fallback_enabled = False
        self._key_prefix = ""
        self._storage_dead = self._reported_dead = False
        super().init_app(app)
        if type(self._storage) is MemoryStorage:
            self._storage = SweptMemoryStorage()
            self._limiter = STRATEGIES[self._strategy](self._storage)
        if type(getattr(self, "_fallback_storage", None)) is MemoryStorage:
            self._fallback_storage = SweptMemoryStorage()
            self._fallback_limiter = STRATEGIES[self._strategy](self._fallback_storage)
        self._hooks_only_when_kept(app)

    def _hooks_only_when_kept(self, app) -> None:
        """Flask-Limiter's after-request hook (X-RateLimit-* headers, conditional deductions) and its
        teardown (forgetting the request's limits) create the request's limiter context just to find
        it empty when nothing was checked: every request the shortcut above lets through. They are
        replaced by ones that run the stock hook only when this request has a context to act on."""
        stock_headers = flask_limiter.Limiter._Limiter__inject_headers
        after = app.after_request_funcs.get(None, [])
        for i, hook in enumerate(after):
            if isinstance(hook, functools.partial) and hook.func is stock_headers and hook.args[0] is self:
                after[i] = self._inject_headers_when_kept
        teardown = app.teardown_request_funcs.get(None, [])
        for i, hook in enumerate(teardown):
            if hook == self._Limiter__release_context:
                teardown[i] = self._release_context_when_kept

    def _kept(self) -> bool:
        contexts = getattr(request_ctx._get_current_object(), "_limiter_request_context", None)
        return contexts is not None and self in contexts

    def _inject_headers_when_kept(self, response):
        if not self._kept():
            return response
        if response.status_code in RETRY_AFTER_STATUSES or "Retry-After" in response.headers:
            return flask_limiter.Limiter._Limiter__inject_headers(self, response)
        return self._limit_headers(response)

    def _limit_headers(self, response):
        """The X-RateLimit-* headers of an answer that asks no client to wait, without `Retry-After`.

        The stock hook also sets `Retry-After` (seconds to the window's end) on every answer, a 200
        included, where RFC 9110 §10.2.3 gives it a meaning only on 503 and 3xx, and RFC 6585 on
        429: a client honouring it would pause after a good call (the staff login's form shown
        again, tests/test_staff_auth.py). Those answers still get the stock hook's. The account API
        writes its own from its count (Counted.headers)."""
        context = self.context
        limit = context.view_rate_limit
        if (limit is None or context.conditional_deductions or not self.enabled or not self._headers_enabled
                or not self._header_mapping):
            return flask_limiter.Limiter._Limiter__inject_headers(self, response)
        try:
            window = limit.window  # read from the storage, as the stock hook reads it
        except Exception:
            return flask_limiter.Limiter._Limiter__inject_headers(self, response)  # its fallback and logging
        names, headers = self._header_mapping, response.headers
        headers.add(names[flask_limiter.HeaderNames.LIMIT], str(limit.limit.amount))
        headers.add(names[flask_limiter.HeaderNames.REMAINING], str(window[1]))
        headers.add(names[flask_limiter.HeaderNames.RESET], str(int(window[0] + 1)))
        return response

    def _release_context_when_kept(self, exc=None) -> None:
        if self._kept():
            self._Limiter__release_context(exc)

    def _nothing_before_the_view(self) -> bool:
        """Whether Flask-Limiter's before-request pass would count nothing for this request: no
        default, application, blueprint or fall-back limit, the storage answering, and the endpoint
        without hinted limits (those of a decorated function that is not the view). What is left,
        the view's own decorated limits, Flask-Limiter counts in the decorator, not in that pass."""
        if self._storage_dead:
            return False
        extensions = current_app._get_current_object().extensions  # every request: no proxy lookup
        limited = extensions.get("rate_limited_endpoints")
        if limited is None:
            limited = extensions["rate_limited_endpoints"] = self._limited_endpoints()
        return limited is not ALL and not self.limit_manager.has_hints(request._get_current_object().endpoint or "")

    def _check_request_limit(self, callable_name=None, in_middleware=True) -> None:
        if in_middleware and not self._meta_limits and self._nothing_before_the_view():
            # The stock hook would find this request filtered (a view without limits: the filter
            # above), or resolve no limit before the view (see _nothing_before_the_view), then still
            # work out the exemption scope and evaluate an empty list: nothing counted, nothing kept.
            return
        try:
            super()._check_request_limit(callable_name=callable_name, in_middleware=in_middleware)
        finally:
            self._report_storage_state()

    def count_limits(self, text: str, *identifiers: str) -> Counted | None:
        """Count one call of `identifiers` against each limit of `text` (a setting such as
        "600 per minute" or "5 per hour; 2 per minute"), the smallest window first, stopping at the
        first one reached (RATELIMIT_FAIL_ON_FIRST_BREACH, the default): what Flask-Limiter's
        decorator does for a view's plain limits, on the same keys (its `key_for` of the identifiers
        after the key prefix), with the same fall-back to memory while the storage is away.

        The decorator also made a per-request limiter context, a RequestLimit per limit, the
        after-request hook's work and a teardown: ~15 % of a `/accounts` call's instructions
        (bench/README, round 21). Here the caller gets what the answer's X-RateLimit-* headers
        show (the breached limit, else the smallest window's), and the limit reached, if any.
        None when the storage failed and errors are swallowed: nothing counted, nothing shown."""
        prefix = self._key_prefix
        keys = (prefix, *identifiers) if prefix else identifiers
        shown = breached = None
        try:
            for item in _sorted_limits(text):
                within, window = self._count_keeping_window(item, keys)
                if shown is None:
                    shown = Counted(item, window, None)
                if not within:
                    self.logger.info("ratelimit %s (%s) exceeded at endpoint: %s", item, identifiers[0],
                                     identifiers[-1])
                    breached = Counted(item, window, breached.reached if breached else item)
                    if self._fail_on_first_breach:
                        break
        except Exception:
            if self._in_memory_fallback_enabled and not self._storage_dead:
                self.logger.warning("Rate limit storage unreachable - falling back to in-memory storage")
                self._storage_dead = True
                return self.count_limits(text, *identifiers)  # in memory now, from the first limit
            if self._swallow_errors:
                log.exception("rate limit storage failed: %s not counted", text)
                return None
            raise
        finally:
            self._report_storage_state()
        return breached or shown

    def _count_keeping_window(self, item: RateLimitItem, keys) -> tuple[bool, WindowStats]:
        """`limiter.hit` of one limit, and its window as the hit left it (what
        `limiter.get_window_stats` reads, without reading it again): with fixed windows in memory
        or in Redis, from the count itself (in Redis one script, no GET and TTL after it); else
        stock `hit`, then `get_window_stats`."""
        counting = self.limiter
        if type(counting) is FixedWindowRateLimiter and type(counting.storage) is SweptMemoryStorage:
            count, ends = counting.storage.count_in_window(item.key_for(*keys), item.get_expiry())
        elif (script := self._redis_script("_counted_window", self.COUNT_IN_WINDOW)) is not None:
            # limits' own incr script, then the key's TTL: RedisStorage.incr, then its get_expiry
            count, ttl = script([self._storage.prefixed_key(item.key_for(*keys))], [item.get_expiry(), 1])
            ends = max(ttl, 0) + time.time()
        else:
            within = counting.hit(item, *keys, cost=1)
            return within, counting.get_window_stats(item, *keys)
        return count <= item.amount, WindowStats(ends, max(0, item.amount - count))

    COUNT_IN_WINDOW = """
    -- limits' incr_expire.lua (KEYS[1]: the window's counter; ARGV[1]: its window in seconds,
    -- ARGV[2]: the amount), and the counter's TTL as RedisStorage.get_expiry reads it.
    local current = redis.call("incrby", KEYS[1], ARGV[2])
    if tonumber(current) == tonumber(ARGV[2]) then
        redis.call("expire", KEYS[1], ARGV[1])
    end
    return {current, redis.call("ttl", KEYS[1])}
    """

    def _report_storage_state(self) -> None:
        if self._storage_dead == self._reported_dead:
            return
        self._reported_dead = self._storage_dead
        if self._storage_dead:
            log.warning("rate limit storage unreachable: limits now count in this process's memory only")
        else:
            log.warning("rate limit storage answers again: limits count there again")

    def test(self, limit: RateLimitItem, *identifiers: str) -> bool:
        """True while `limit` is not yet reached for the identifiers (nothing counted)."""
        return self._counter("test", limit, identifiers)

    def hit(self, limit: RateLimitItem, *identifiers: str) -> bool:
        """Count one against `limit`; False when it was already reached."""
        return self._counter("hit", limit, identifiers)

    def hit_in_order(self, counts) -> int | None:
        """Count one against each `(limit, *identifiers)` of `counts` in turn, stopping at the first
        that was already reached: its index, or None when none was. The same counting as
        `all(hit(limit, *identifiers) for …)`, the refused one counted and those after it not; in
        Redis, with Flask-Limiter's fixed windows, as one script call (FIXED_WINDOWS_IN_ORDER, the
        same INCRBY and EXPIRE per key as limits' own script, on the same keys): one round trip a
        request instead of one a limit. In this process's memory (`memory://`, and the fall-back
        while Redis is away), SweptMemoryStorage.hit_in_order: the same counting in one call. Anywhere
        else (another strategy or Redis deployment), `hit` on each in turn."""
        script = self._fixed_windows_script()
        if script is None:
            counting = self.limiter  # the fall-back's while the storage is away
            if type(counting) is FixedWindowRateLimiter and type(counting.storage) is SweptMemoryStorage:
                prefix = current_app._get_current_object().config.get("RATELIMIT_KEY_PREFIX")
                try:
                    return counting.storage.hit_in_order([
                        (limit.key_for(*((prefix, *identifiers) if prefix else identifiers)), limit.get_expiry(),
                         limit.amount) for limit, *identifiers in counts])
                finally:
                    self._report_storage_state()
            for i, (limit, *identifiers) in enumerate(counts):
                if not self.hit(limit, *identifiers):
                    return i
            return None
        prefix = current_app.config.get("RATELIMIT_KEY_PREFIX")
        storage = self._storage
        keys, args = [], []
        for limit, *identifiers in counts:
            keys.append(storage.prefixed_key(limit.key_for(*((prefix, *identifiers) if prefix else identifiers))))
            args += (limit.get_expiry(), limit.amount)
        try:
            refused = int(script(keys, args))
        except Exception:
            if self._in_memory_fallback_enabled and not self._storage_dead:
                self._storage_dead = True
                self._report_storage_state()
                return self.hit_in_order(counts)  # in memory now
            if self._swallow_errors:
                log.exception("rate limit storage failed: %d limits not counted", len(keys))
                return None
            raise
        return refused - 1 if refused else None

    FIXED_WINDOWS_IN_ORDER = """
    -- KEYS[i]: a fixed window's counter; ARGV[2i - 1]: its window in seconds, ARGV[2i]: its limit.
    for i, key in ipairs(KEYS) do
        local current = redis.call("incrby", key, 1)
        if current == 1 then
            redis.call("expire", key, ARGV[2 * i - 1])
        end
        if current > tonumber(ARGV[2 * i]) then
            return i
        end
    end
    return 0
    """

    def _fixed_windows_script(self):
        """FIXED_WINDOWS_IN_ORDER on this app's Redis, or None where `hit_in_order` counts limit by limit."""
        return self._redis_script("_in_order", self.FIXED_WINDOWS_IN_ORDER)

    def _redis_script(self, name: str, source: str):
        """The Lua script `source` on this app's Redis (registered once a storage: no round trip;
        redis-py loads it on first use), or None unless the limits count in Redis, in fixed windows."""
        storage = self._storage
        if (self._storage_dead or type(storage) is not RedisStorage
                or type(self._limiter) is not FixedWindowRateLimiter):
            return None
        scripts = getattr(self, "_registered_scripts", None)
        if scripts is None or scripts[0] is not storage:
            scripts = self._registered_scripts = (storage, {})
        script = scripts[1].get(name)
        if script is None:
            script = scripts[1][name] = storage.get_connection().register_script(source)
        return script

    def _counter(self, operation: str, limit: RateLimitItem, identifiers) -> bool:
        prefix = current_app._get_current_object().config.get("RATELIMIT_KEY_PREFIX")
        keys = (prefix, *identifiers) if prefix else identifiers
        try:
            return getattr(self.limiter, operation)(limit, *keys)
        except Exception:
            if self._in_memory_fallback_enabled and not self._storage_dead:
                self._storage_dead = True
                return getattr(self.limiter, operation)(limit, *keys)
            if self._swallow_errors:
                log.exception("rate limit storage failed: %s not counted", limit)
                return True
            raise
        finally:
            self._report_storage_state()


class Talisman(flask_talisman.Talisman):
    """Flask-Talisman, with the headers worked out once instead of on every request.

    Stock Talisman resolves its options per request (`_get_local_options`, four times: a new dict
    and eight `setdefault`s each time) and rebuilds the CSP string, in three hooks. With no per-view
    options (`@talisman(...)`), no nonce and no forced https, the answer is the same for every
    response: the headers before HSTS, HSTS when the request came over https (per request, as
    stock), then Referrer-Policy, set in Talisman's own order by Talisman's own setters, once per
    app. Any of those three features in use: the stock hooks run (STOCK).
    tests/test_request_pipeline.py compares the headers of many routes with stock Talisman's."""

    STOCK = "stock"

    def _headers_for(self, app):
        fixed = app.extensions.get("talisman_headers")
        if fixed is None:
            fixed = app.extensions["talisman_headers"] = self._work_out_headers(app)
        return fixed

    def _work_out_headers(self, app):
        if (self.force_https or self.content_security_policy_nonce_in
                or any(hasattr(view, "talisman_view_options") for view in app.view_functions.values())):
            return self.STOCK
        scratch = Headers()
        options = self._get_local_options()  # the defaults: no view has options of its own
        self._set_feature_policy_headers(scratch, options)
        self._set_permissions_policy_headers(scratch, options)
        self._set_document_policy_headers(scratch, options)
        self._set_frame_options_headers(scratch, options)
        self._set_content_security_policy_headers(scratch, options)
        hsts = None
        if self.strict_transport_security:  # the value of stock `_set_hsts_headers`
            hsts = f"max-age={self.strict_transport_security_max_age}"
            if self.strict_transport_security_include_subdomains:
                hsts += "; includeSubDomains"
            if self.strict_transport_security_preload:
                hsts += "; preload"
        before = tuple((name, name.lower(), value) for name, value in scratch.items())
        return before, hsts, self.referrer_policy

    def _force_https(self):
        if self._headers_for(current_app._get_current_object()) is self.STOCK:
            return super()._force_https()
        if self.session_cookie_secure and not self.app.debug:  # what stock does on every request
            self.app.config["SESSION_COOKIE_SECURE"] = True
        return None

    def _make_nonce(self):
        if self._headers_for(current_app._get_current_object()) is self.STOCK:
            super()._make_nonce()

    def _set_response_headers(self, response):
        fixed = self._headers_for(current_app._get_current_object())
        if fixed is self.STOCK:
            return super()._set_response_headers(response)
        before, hsts, referrer = fixed
        headers = response.headers
        # What stock's `headers[name] = value` does, where `Headers.set` scans the whole list (a
        # lower() a header) for each of the ten names: a name the response has is replaced, any
        # other added at the end, telling the two apart by one pass over the list.
        present = {name.lower() for name, _ in headers}

        def put(name: str, key: str, value: str) -> None:
            if key in present:
                headers[name] = value
            else:
                headers.add(name, value)
                present.add(key)

        for name, key, value in before:
            put(name, key, value)
        if hsts is not None:
            r = request._get_current_object()
            if r.is_secure or r.headers.get("X-Forwarded-Proto", "http") == "https":
                put("Strict-Transport-Security", "strict-transport-security", hsts)
        put("Referrer-Policy", "referrer-policy", referrer)
        return response


class CSRF(CSRFProtect):
    """Flask-WTF's CSRFProtect, asking the request's method first.

    Its before-request hook works out the view's and blueprint's exemptions, then finds a GET has
    nothing to check; neither step writes anything, so asking the method first answers the same."""

    def protect(self, apply_exemptions=False):
        # _get_current_object(): an attribute read through Flask's proxies costs ~6 times as much
        # (bench/README, round 26), and every request passes here.
        if apply_exemptions and (request._get_current_object().method
                                 not in current_app._get_current_object().config["WTF_CSRF_METHODS"]):
            return
        super().protect(apply_exemptions)


class Compress(flask_compress.Compress):
    """Flask-Compress, reading the response's headers once and compressing a whole body itself.

    Its hook reads Vary with `Headers.get` and writes it with `Headers.set`, then tests
    `"Content-Encoding" in headers` and the Content-Length: each a scan of every header, and a
    missing name (Vary, Content-Encoding: most responses) costs a KeyError raised and caught inside
    Werkzeug, ~2.5 µs each. Here one pass finds what it needs. Vary is written as the stock hook
    writes it. A response the stock hook would leave uncompressed whatever the request says (already
    encoded, not 2xx, or shorter than COMPRESS_MIN_SIZE) is answered here.

    A whole body (not a stream) with no validator (ETag, Last-Modified) and no cache backend is
    compressed here too, by the stock hook's own `_compress_data`, with the headers it would give.
    The stock hook then also reads the body's ETag, parses its Content-Type again and hands the
    response to Werkzeug's `make_conditional`, which for a response with no validator only adds a
    Date header: gunicorn drops an app's Date (and Server) and sends its own (its `hop_headers`), so
    that header is left out here. That path was ~130 µs of a 4.5 KB page's ~170 µs of compression
    (bench/README, round 27). Any other response goes on to the stock hook, which then finds Vary as
    it would have left it. tests/test_compression.py compares the two on many kinds of response and
    request."""

    def after_request(self, response):
        if not response:
            return super().after_request(response)
        headers = response.headers
        vary = length = content_type = None
        encoded = validated = False
        for name, value in headers:
            key = name.lower()
            if key == "vary":
                if vary is None:  # the first, as Headers.get reads it
                    vary = value
            elif key == "content-length":
                if length is None:
                    length = value
            elif key == "content-type":
                if content_type is None:
                    content_type = value
            elif key == "content-encoding":
                encoded = True
            elif key == "etag" or key == "last-modified":
                validated = True
        if vary is None:
            headers.add("Vary", "Accept-Encoding")  # what `set` does for a name the response lacks
        elif not vary:
            headers["Vary"] = "Accept-Encoding"
        elif "accept-encoding" not in vary.lower():
            headers["Vary"] = f"{vary}, Accept-Encoding"
        status = response.status_code
        if encoded or status < 200 or status >= 300:
            return response
        app = current_app._get_current_object()
        if length is not None:
            try:
                counted = int(length)
            except ValueError:  # Werkzeug's content_length reads no number there: the stock hook decides
                counted = None
            if counted is not None and counted < app.config["COMPRESS_MIN_SIZE"]:
                return response
        if (validated or self.cache is not None or response.is_streamed
                or not response.automatically_set_content_length):
            return super().after_request(response)
        if not content_type or content_type.partition(";")[0].strip() not in self.compress_mimetypes_set:
            return response  # the stock hook's mimetype test: nothing it compresses
        algorithm = flask_compress.flask_compress._choose_algorithm(
            self.enabled_algorithms, request._get_current_object().environ.get("HTTP_ACCEPT_ENCODING", ""))
        if algorithm is None:
            return response
        response.direct_passthrough = False
        headers.add("Content-Encoding", algorithm)  # before the length, as the stock hook puts it
        if algorithm == "zstd":
            response.set_data(self._zstd(response.get_data(), app.config["COMPRESS_ZSTD_LEVEL"]))
        else:
            response.set_data(flask_compress.flask_compress._compress_data(app, response.get_data(), algorithm))
        return response

    _zstd_lock = threading.Lock()
    _zstd_kept: dict = {}  # level: a compressor between two frames

    def _zstd(self, data: bytes, level: int) -> bytes:
        """What `zstd.compress(data, level)` gives (the stock hook's call), from a compressor kept for
        the next answer. `compress` makes a compressor, and zstd its tables, for every page: of a
        4.5 KB page's ~350 k instructions in zstd, ~100 k were that (bench/README, round 27). A kept
        one starts each frame from its last one's tables. Each call is one whole frame; the
        compressor goes back only once its frame is whole, so a frame an error broke off never
        reaches the next answer."""
        zstd = flask_compress.flask_compress.compression.zstd
        with self._zstd_lock:
            compressor = self._zstd_kept.pop(level, None) or zstd.ZstdCompressor(level=level)
            compressed = compressor.compress(data, mode=zstd.ZstdCompressor.FLUSH_FRAME)
            self._zstd_kept[level] = compressor
        return compressed


compress = Compress()
csrf = CSRF()
limiter = Limiter(key_func=get_remote_address)
mail = Mail()
talisman = Talisman()
