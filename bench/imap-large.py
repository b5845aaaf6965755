#!/usr/bin/env python3
"""Large-mailbox IMAP timings, by hand, never in CI. Loopback only.

  imap-large.py fill --port P --user U --password W -n 16000
      APPENDs N messages of about 4 KiB (distinct subjects, senders and bodies) to INBOX.
  imap-large.py time --port P --user U --password W [-r 5]
      Times, on one logged-in connection, each command of issue 15's table R times and prints
      the median in ms (the first, cold, run is printed separately):
      SEARCH SUBJECT zzzz, STATUS INBOX (MESSAGES UNSEEN UIDNEXT), SELECT INBOX,
      FETCH 1:* (FLAGS), SEARCH BODY zzzz.

stdlib only. Compare servers interleaved (A, B, A, B) and quote ratios.
"""
import argparse
import imaplib
import statistics
import sys
import time


def connect(a):
    if not a.host.startswith("127.") and a.host not in ("localhost", "::1"):
        sys.exit("loopback only")
    m = imaplib.IMAP4(a.host, a.port, timeout=600)
    m.login(a.user, a.password)
    return m


def fill(a):
    m = connect(a)
    body = ("lorem ipsum dolor sit amet consectetur " * 100)[:4000]
    t0 = time.perf_counter()
    for i in range(a.n):
        msg = (f"From: Sender {i % 97} <sender{i % 97}@bench.test>\r\n"
               f"To: user1@bench.test\r\nSubject: message number {i} about topic {i % 13}\r\n"
               f"Date: Mon, 2 Nov 2026 10:{i % 60:02d}:00 +0000\r\n"
               f"Message-ID: <{i}.large@bench.test>\r\n\r\n{body}\r\nline {i}\r\n").encode()
        typ, _ = m.append("INBOX", None, None, msg)
        if typ != "OK":
            sys.exit(f"APPEND {i}: {typ}")
    print(f"appended {a.n} in {time.perf_counter() - t0:.1f} s")
    m.logout()


COMMANDS = [
    ("SEARCH SUBJECT zzzz", lambda m: m.search(None, "SUBJECT", "zzzz")),
    ("STATUS INBOX (MESSAGES UNSEEN UIDNEXT)",
     lambda m: m.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)")),
    ("SELECT INBOX", lambda m: m.select("INBOX")),
    ("FETCH 1:* (FLAGS)", lambda m: m.fetch("1:*", "(FLAGS)")),
    ("SEARCH BODY zzzz", lambda m: m.search(None, "BODY", "zzzz")),
]


def timing(a):
    m = connect(a)
    m.select("INBOX")
    for name, f in COMMANDS:
        runs = []
        for _ in range(a.runs + 1):
            t0 = time.perf_counter()
            typ, _ = f(m)
            runs.append((time.perf_counter() - t0) * 1000)
            if typ != "OK":
                sys.exit(f"{name}: {typ}")
        print(f"{name:42s} median {statistics.median(runs[1:]):8.1f} ms   first {runs[0]:8.1f} ms")
    m.logout()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["fill", "time"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("-n", type=int, default=16000)
    p.add_argument("-r", "--runs", type=int, default=5)
    a = p.parse_args()
    fill(a) if a.mode == "fill" else timing(a)


if __name__ == "__main__":
    main()
