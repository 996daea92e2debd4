#!/usr/bin/env python3
"""tests/support/loadgen.py - a bounded load on the REST gateway, with a
client's retries of safe calls, and an account of every order it placed.

  python3 tests/support/loadgen.py --base http://127.0.0.1:PORT --duration S \\
      --admin-email E --admin-password P [--readers 4] [--buyers 2] [--rate 40] \\
      [--retries 3] [--retry-delay-ms 200] [--settle-s 60] [--report FILE.json]

Setup (not counted): a fresh user registers and logs in, the admin logs in
and gives a few products a large stock, then `loadgen: load started` is
printed. Then, for --duration seconds, --readers threads read products
(list pages and single products) and --buyers threads place orders (one
item, pm_card_visa, a fresh Idempotency-Key each), all together at most
--rate requests a second. An attempt FAILS when the connection fails, no
answer comes within 10 s, or the status is 5xx; it is retried after
--retry-delay-ms, up to --retries times: a GET is safe, and an order is
retried with the same Idempotency-Key, which answers the order a first
attempt made (a 409 IDEMPOTENCY_KEY_IN_USE, while that first attempt is
still at work, is a failed attempt too). Any other 4xx is an error (a
bug), never retried.

After the load, every order is followed until it settles, and the user's
order list is compared with what the client was answered: none lost, none
placed twice. Exit 0 when no request gave up, none erred, and every order
was placed once and PAID; 1 otherwise (one line per reason); 2 when the
setup failed. The report (JSON) has: requests (logical), attempts,
failures (failed attempts), retries, gave_up, errors, max_failure_window_ms
(from a request's first failed attempt to its success), per kind counts,
latency_ms p50/p99, orders_placed, orders_paid, orders_listed, duplicates,
lost, orphans (orders of keys that never got an answer), user_id.
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse
import uuid

ATTEMPT_TIMEOUT_S = 10.0
SHIPPING = {"street": "1 Main St", "city": "Springfield", "state": "IL",
            "zipCode": "62701", "country": "US"}


class Setup(Exception):
    pass


class Client:
    """One keep-alive HTTP/1.1 connection per thread; reconnects on error."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        if u.scheme != "http" or not u.hostname:
            raise Setup("--base must be http://host:port, not %r" % base)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """(status, parsed JSON or None, reason) - status 0 when no answer."""
        h = {"accept": "application/json"}
        h.update(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["content-type"] = "application/json"
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=ATTEMPT_TIMEOUT_S)
            self.conn.request(method, path, body=data, headers=h)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            return 0, None, "%s: %s" % (type(e).__name__, e)
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                return resp.status, None, "a body that is not JSON: %r" % raw[:120]
        return resp.status, parsed, ""

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Pacer:
    """At most `rate` starts a second across every thread."""

    def __init__(self, rate):
        self.gap = 1.0 / rate
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self):
        with self.lock:
            now = time.monotonic()
            at = max(self.next, now)
            self.next = at + self.gap
        if at > now:
            time.sleep(at - now)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = self.attempts = self.failures = self.retries = 0
        self.gave_up = self.errors = 0
        self.max_window_ms = 0.0
        self.kinds = {}
        self.latencies = []
        self.reasons = {}
        self.error_samples = []

    def record(self, kind, attempts, failures, ok, err, latency_ms, window_ms, reasons):
        with self.lock:
            self.requests += 1
            self.attempts += attempts
            self.failures += failures
            self.retries += attempts - 1
            k = self.kinds.setdefault(kind, {"requests": 0, "failures": 0, "retries": 0,
                                             "gave_up": 0, "errors": 0})
            k["requests"] += 1
            k["failures"] += failures
            k["retries"] += attempts - 1
            for r in reasons:
                self.reasons[r] = self.reasons.get(r, 0) + 1
            if err is not None:
                self.errors += 1
                k["errors"] += 1
                if len(self.error_samples) < 5:
                    self.error_samples.append(err)
            elif not ok:
                self.gave_up += 1
                k["gave_up"] += 1
            else:
                self.latencies.append(latency_ms)
                self.max_window_ms = max(self.max_window_ms, window_ms)


def key_in_use(body):
    """A 409 that says the Idempotency-Key's first request is still at work."""
    try:
        return any(d.get("reason") == "IDEMPOTENCY_KEY_IN_USE" for d in body["error"]["details"])
    except (KeyError, TypeError, AttributeError):
        return False


def call(client, args, stats, kind, method, path, body=None, headers=None):
    """A logical request with the client's retries; the answer's JSON, or None."""
    first_fail = None
    failures = 0
    reasons = []
    for attempt in range(1, args.retries + 2):
        t0 = time.monotonic()
        status, parsed, why = client.request(method, path, body, headers)
        if 200 <= status < 300 and not why:
            done = time.monotonic()
            window = (done - first_fail) * 1000 if first_fail is not None else 0.0
            stats.record(kind, attempt, failures, True, None, (done - t0) * 1000, window, reasons)
            return parsed
        if status == 409 and key_in_use(parsed):
            why = "409 IDEMPOTENCY_KEY_IN_USE"  # the key's first attempt is at work
        elif 400 <= status < 500:
            err = "%s %s: %d %s" % (method, path, status, json.dumps(parsed)[:200])
            stats.record(kind, attempt, failures, False, err, 0, 0, reasons)
            return None
        failures += 1
        reasons.append(why if status == 409 else str(status) if status else why.split(":")[0])
        if first_fail is None:
            first_fail = t0
        if attempt <= args.retries:
            time.sleep(args.retry_delay_ms / 1000.0)
    stats.record(kind, args.retries + 1, failures, False, None, 0, 0, reasons)
    return None


def setup_call(client, method, path, body=None, headers=None, want=(200, 201)):
    for _ in range(3):
        status, parsed, why = client.request(method, path, body, headers)
        if status in want:
            return parsed
        if status and status < 500:
            raise Setup("%s %s: %d %s" % (method, path, status, json.dumps(parsed)[:300]))
        time.sleep(0.5)
    raise Setup("%s %s: no answer (%s)" % (method, path, why or status))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--admin-email", required=True)
    ap.add_argument("--admin-password", required=True)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--buyers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=40)
    ap.add_argument("--retries", type=int, default=3)
    ap.add_argument("--retry-delay-ms", type=int, default=200)
    ap.add_argument("--settle-s", type=float, default=60)
    ap.add_argument("--report")
    args = ap.parse_args()
    if args.duration <= 0 or args.rate <= 0 or args.retries < 0 or args.readers < 0 \
            or args.buyers < 1:
        print("loadgen: --duration and --rate must be > 0, --retries >= 0, --buyers >= 1",
              file=sys.stderr)
        return 2
    try:
        return run(args)
    except Setup as e:
        print("loadgen: setup failed: %s" % e, file=sys.stderr)
        return 2


def run(args):
    c = Client(args.base)
    email = "load-%s@example.com" % uuid.uuid4().hex[:12]
    password = "load-password-1"
    user = setup_call(c, "POST", "/v1/auth/register",
                      {"email": email, "password": password, "firstName": "Load",
                       "lastName": "Gen"})
    user_id = user.get("id") if isinstance(user, dict) else None
    if not user_id:
        raise Setup("register answered no user id: %r" % user)
    tok = setup_call(c, "POST", "/v1/auth/login", {"email": email, "password": password})
    admin = setup_call(c, "POST", "/v1/auth/login",
                       {"email": args.admin_email, "password": args.admin_password})
    auth = {"authorization": "Bearer " + tok["accessToken"]}
    admin_auth = {"authorization": "Bearer " + admin["accessToken"]}
    page = setup_call(c, "GET", "/v1/products?pageSize=8")
    products = [p["id"] for p in page.get("products", [])]
    if not products:
        raise Setup("GET /v1/products lists no product")
    for pid in products:
        setup_call(c, "PUT", "/v1/inventory/" + pid, {"available": 1000000}, admin_auth)
    c.close()
    print("loadgen: load started", flush=True)

    stats = Stats()
    pacer = Pacer(args.rate)
    end = time.monotonic() + args.duration
    placed = {}  # Idempotency-Key -> order id, or None when no attempt was answered
    placed_lock = threading.Lock()

    def reader(n):
        cl = Client(args.base)
        i = n
        while time.monotonic() < end:
            pacer.wait()
            i += 1
            if i % 2:
                call(cl, args, stats, "read", "GET",
                     "/v1/products?pageSize=5&page=%d" % (1 + i % 4))
            else:
                call(cl, args, stats, "read", "GET", "/v1/products/" + products[i % len(products)])
        cl.close()

    def buyer(n):
        cl = Client(args.base)
        i = n
        while time.monotonic() < end:
            pacer.wait()
            i += 1
            key = str(uuid.uuid4())
            hdr = dict(auth)
            hdr["idempotency-key"] = key
            body = {"items": [{"productId": products[i % len(products)], "quantity": 1}],
                    "shippingAddress": SHIPPING, "paymentMethodId": "pm_card_visa"}
            order = call(cl, args, stats, "order", "POST", "/v1/orders", body, hdr)
            with placed_lock:
                placed[key] = order.get("id") if isinstance(order, dict) else None
        cl.close()

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(args.readers)]
    threads += [threading.Thread(target=buyer, args=(n,)) for n in range(args.buyers)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load_s = time.monotonic() - t_start

    # every order the client was answered: settled, PAID
    c = Client(args.base)
    ids = {oid for oid in placed.values() if oid}
    status_of = {}
    deadline = time.monotonic() + args.settle_s
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        for oid in list(pending):
            st, o, _ = c.request("GET", "/v1/orders/" + oid, headers=auth)
            if st == 200 and isinstance(o, dict):
                status_of[oid] = o.get("status")
                if o.get("status") != "PENDING_PAYMENT":
                    pending.discard(oid)
        if pending:
            time.sleep(0.3)
    listed = []
    pg = 1
    while True:
        st, body, why = c.request("GET", "/v1/users/%s/orders?pageSize=100&page=%d" % (user_id, pg),
                                  headers=auth)
        if st != 200 or not isinstance(body, dict):
            raise Setup("listing the orders: %s %s" % (st, why))
        batch = body.get("orders", [])
        listed += [o["id"] for o in batch]
        if len(batch) < 100:
            break
        pg += 1
    c.close()

    listed_set = set(listed)
    duplicates = len(listed) - len(listed_set)
    lost = sorted(ids - listed_set)
    extra = listed_set - ids
    unanswered = sum(1 for v in placed.values() if v is None)
    # an order the client never got an id for may come only from a key
    # whose every attempt failed, at most one per such key
    orphans = len(extra)
    duplicates += max(0, orphans - unanswered)
    paid = sum(1 for oid in ids if status_of.get(oid) == "PAID")
    lat = sorted(stats.latencies)

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else 0

    report = {
        "duration_s": round(load_s, 2), "requests": stats.requests, "attempts": stats.attempts,
        "failures": stats.failures, "retries": stats.retries, "gave_up": stats.gave_up,
        "errors": stats.errors, "max_failure_window_ms": round(stats.max_window_ms, 1),
        "failure_reasons": stats.reasons, "kinds": stats.kinds,
        "latency_ms": {"p50": pct(0.50), "p99": pct(0.99)},
        "orders_placed": len(ids), "orders_paid": paid, "orders_listed": len(listed),
        "duplicates": duplicates, "lost": len(lost), "orphans": orphans,
        "unsettled": sorted(oid for oid in ids if status_of.get(oid) != "PAID")[:10],
        "error_samples": stats.error_samples, "user_id": user_id,
    }
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)
    print("loadgen: %d requests in %.1f s (%d reads, %d orders): %d attempts failed, %d retries, "
          "%d given up, %d errors; longest failure before success %.0f ms; p50 %.1f ms, p99 %.1f ms"
          % (stats.requests, load_s, stats.kinds.get("read", {}).get("requests", 0),
             stats.kinds.get("order", {}).get("requests", 0), stats.failures, stats.retries,
             stats.gave_up, stats.errors, stats.max_window_ms, pct(0.5), pct(0.99)))
    print("loadgen: orders: %d placed, %d PAID, %d listed, %d duplicates, %d lost, %d orphans"
          % (len(ids), paid, len(listed), duplicates, len(lost), orphans))
    if stats.reasons:
        print("loadgen: failed attempts by cause: %s" % json.dumps(stats.reasons, sort_keys=True))
    bad = []
    if stats.gave_up:
        bad.append("%d requests failed after every retry" % stats.gave_up)
    if stats.errors:
        bad.append("%d requests answered 4xx: %s" % (stats.errors, "; ".join(stats.error_samples)))
    if duplicates:
        bad.append("%d orders placed twice" % duplicates)
    if lost:
        bad.append("%d orders lost: %s" % (len(lost), ", ".join(lost[:5])))
    if paid != len(ids):
        bad.append("%d orders not PAID: %s" % (len(ids) - paid, ", ".join(
            "%s=%s" % (o, status_of.get(o)) for o in report["unsettled"][:5])))
    for b in bad:
        print("loadgen: FAIL: " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
