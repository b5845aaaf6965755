#!/usr/bin/env python3
"""The HTTP API under load, by hand, never in CI. Loopback only (docs/BENCHMARKS.md).

  http-bench.py fill  --smtp-port P --to U -n 10000
      Delivers N small messages to U over SMTP (one session, one transaction each).

  http-bench.py big   --smtp-port P --to U --mib 10
      Delivers one message of about MIB MiB (a base64 attachment) to U.

  http-bench.py list  --port P --user U --password W -c 4 -t 20 [--limit 100]
      C clients page through INBOX (`GET /api/mailboxes/INBOX/messages?offset=&limit=`, random
      offsets) for T seconds. Prints requests/s and messages listed/s.

  http-bench.py raw   --port P --user U --password W [-n 5]
      Fetches the largest INBOX message's raw source N times. Prints the time to the first
      byte of the body and the whole transfer, median, and the octets.

  http-bench.py live  --port P --smtp-port S --user U --password W [-n 20]
      Keeps `GET /api/events` open, delivers a message by SMTP N times, and prints the time
      from the SMTP 250 to the `message` event: median and worst.

stdlib only. Basic authentication (no cookie, no CSRF token needed).
"""
import argparse
import base64
import http.client
import json
import random
import smtplib
import statistics
import threading
import time


def auth_header(a):
    token = base64.b64encode(f"{a.user}:{a.password}".encode()).decode()
    return {"Authorization": "Basic " + token}


def get_json(conn, path, headers):
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit(f"GET {path}: {r.status} {body[:200]!r}")
    return json.loads(body)


def fill(a):
    s = smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=60)
    started = time.perf_counter()
    for i in range(a.n):
        msg = (f"From: bench@bench.test\r\nTo: {a.to}\r\nSubject: http bench {i}\r\n\r\n"
               + "x" * 500 + "\r\n")
        s.sendmail("bench@bench.test", [a.to], msg)
    s.quit()
    took = time.perf_counter() - started
    print(f"delivered {a.n} messages in {took:.1f} s ({a.n / took:.0f}/s)")


def big(a):
    raw = random.randbytes(a.mib * 1024 * 1024 * 3 // 4)
    b64 = base64.encodebytes(raw).decode().replace("\n", "\r\n")
    msg = (f"From: bench@bench.test\r\nTo: {a.to}\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
           "Content-Type: text/plain\r\n\r\nbig attachment\r\n--B\r\n"
           "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + b64 + "--B--\r\n")
    s = smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=120)
    s.sendmail("bench@bench.test", [a.to], msg)
    s.quit()
    print(f"delivered one message of {len(msg)} octets")


def list_(a):
    headers = auth_header(a)
    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
    total = get_json(c, "/api/mailboxes/INBOX/messages?limit=1", headers)["total"]
    c.close()
    requests = [0] * a.clients
    listed = [0] * a.clients
    stop = time.perf_counter() + a.seconds

    def client(i):
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
        while time.perf_counter() < stop:
            offset = random.randrange(0, max(1, total - a.limit))
            page = get_json(conn, f"/api/mailboxes/INBOX/messages?offset={offset}&limit={a.limit}",
                            headers)
            requests[i] += 1
            listed[i] += len(page["messages"])
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"mailbox of {total}: {sum(requests) / a.seconds:.0f} requests/s, "
          f"{sum(listed) / a.seconds:.0f} messages listed/s ({a.clients} clients, "
          f"pages of {a.limit})")


def raw(a):
    headers = auth_header(a)
    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
    page = get_json(c, "/api/mailboxes/INBOX/messages?limit=500", headers)
    biggest = max(page["messages"], key=lambda m: m.get("size", 0))
    path = f"/api/messages/INBOX/{biggest['id']}/raw"
    firsts, wholes, size = [], [], 0
    for _ in range(a.n):
        started = time.perf_counter()
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        first = r.read(1)
        firsts.append(time.perf_counter() - started)
        size = len(first) + len(r.read())
        wholes.append(time.perf_counter() - started)
        if r.status != 200:
            raise SystemExit(f"GET {path}: {r.status}")
    print(f"raw message of {size} octets: first byte {statistics.median(firsts) * 1000:.1f} ms, "
          f"whole {statistics.median(wholes) * 1000:.1f} ms (median of {a.n})")


def live(a):
    headers = auth_header(a)
    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
    c.request("GET", "/api/events", headers=headers)
    r = c.getresponse()
    if r.status != 200:
        raise SystemExit(f"GET /api/events: {r.status}")

    def next_event():
        event = None
        while True:
            line = r.fp.readline()
            if not line:
                raise SystemExit("the event stream ended")
            line = line.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line == "" and event:
                return event

    while next_event() != "ready":
        pass
    s = smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=60)
    delays = []
    for i in range(a.n):
        msg = f"From: bench@bench.test\r\nTo: {a.user}\r\nSubject: live {i}\r\n\r\nx\r\n"
        s.sendmail("bench@bench.test", [a.user], msg)
        accepted = time.perf_counter()
        while next_event() != "message":
            pass
        delays.append(time.perf_counter() - accepted)
        time.sleep(random.uniform(0, 0.5))
    s.quit()
    print(f"SMTP 250 to event: median {statistics.median(delays) * 1000:.0f} ms, "
          f"worst {max(delays) * 1000:.0f} ms ({a.n} messages)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    for name in ("fill", "big", "list", "raw", "live"):
        q = sub.add_parser(name)
        q.add_argument("--port", type=int, default=24080)
        q.add_argument("--smtp-port", type=int, default=24025)
        q.add_argument("--user", default="user1@bench.test")
        q.add_argument("--password", default="pass1")
        q.add_argument("--to", default="user1@bench.test")
        q.add_argument("-n", type=int, default=20)
        q.add_argument("-c", "--clients", type=int, default=4)
        q.add_argument("-t", "--seconds", type=float, default=20)
        q.add_argument("--limit", type=int, default=100)
        q.add_argument("--mib", type=int, default=10)
    a = p.parse_args()
    {"fill": fill, "big": big, "list": list_, "raw": raw, "live": live}[a.what](a)


if __name__ == "__main__":
    main()
