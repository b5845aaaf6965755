#!/usr/bin/env python3
"""Large-mailbox IMAP timings, by hand, never in CI. Loopback only.

  imap-large.py fill --port P --user U --password W -n 16000
      APPENDs N messages of about 4 KiB (distinct subjects, senders and bodies) to INBOX.
      --pipelined: APPENDs with LITERAL+ in batches of 500 without waiting for each reply
      (100,000 messages in a minute or two instead of several).
  imap-large.py time --port P --user U --password W [-r 5] [--raw]
      Times, on one logged-in connection, each command of issue 15's table R times and prints
      the median in ms (the first, cold, run is printed separately):
      SEARCH SUBJECT zzzz, STATUS INBOX (MESSAGES UNSEEN UIDNEXT), SELECT INBOX,
      FETCH 1:* (FLAGS), SEARCH BODY zzzz.
      --raw: on a plain socket, from sending the command to reading its tagged reply, without
      imaplib parsing the answer (which dominates FETCH 1:* of a large mailbox), in µs
      resolution; SELECT is then timed as a second session would see it (a new connection
      each run, the login not counted).

stdlib only. Compare servers interleaved (A, B, A, B) and quote ratios.
"""
import argparse
import imaplib
import socket
import statistics
import sys
import time


def connect(a):
    if not a.host.startswith("127.") and a.host not in ("localhost", "::1"):
        sys.exit("loopback only")
    m = imaplib.IMAP4(a.host, a.port, timeout=600)
    m.login(a.user, a.password)
    return m


def message(i):
    body = ("lorem ipsum dolor sit amet consectetur " * 100)[:4000]
    return (f"From: Sender {i % 97} <sender{i % 97}@bench.test>\r\n"
            f"To: user1@bench.test\r\nSubject: message number {i} about topic {i % 13}\r\n"
            f"Date: Mon, 2 Nov 2026 10:{i % 60:02d}:00 +0000\r\n"
            f"Message-ID: <{i}.large@bench.test>\r\n\r\n{body}\r\nline {i}\r\n").encode()


class Raw:
    """One IMAP connection on a plain socket: send a command, read to its tagged reply."""

    def __init__(self, a):
        if not a.host.startswith("127.") and a.host not in ("localhost", "::1"):
            sys.exit("loopback only")
        self.s = socket.create_connection((a.host, a.port), timeout=600)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.n = 0
        self.line()
        self.command(f'LOGIN "{a.user}" "{a.password}"')

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                sys.exit("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def wait(self, tag):
        """Reads to the tagged reply of `tag` (untagged data is skipped, not parsed)."""
        t = tag.encode() + b" "
        while True:
            i = self.buf.find(b"\r\n" + t)
            if self.buf.startswith(t) or i >= 0:
                start = 0 if self.buf.startswith(t) else i + 2
                end = self.buf.find(b"\r\n", start)
                if end >= 0:
                    line = self.buf[start:end]
                    self.buf = self.buf[end + 2:]
                    if not line[len(t):].startswith(b"OK"):
                        sys.exit(f"{tag}: {line[:200]!r}")
                    return
            chunk = self.s.recv(1 << 20)
            if not chunk:
                sys.exit("connection closed")
            self.buf += chunk

    def send(self, text):
        self.n += 1
        tag = f"r{self.n}"
        self.s.sendall(f"{tag} {text}\r\n".encode() if isinstance(text, str) else tag.encode() + b" " + text)
        return tag

    def command(self, text):
        self.wait(self.send(text))

    def close(self):
        self.send("LOGOUT")
        self.s.close()


def fill_pipelined(a):
    r = Raw(a)
    t0 = time.perf_counter()
    i = 0
    while i < a.n:
        tags = []
        for j in range(i, min(i + 500, a.n)):
            msg = message(j)
            tags.append(r.send(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n"))
        for t in tags:
            r.wait(t)
        i += len(tags)
    print(f"appended {a.n} in {time.perf_counter() - t0:.1f} s")
    r.close()


def fill(a):
    if a.pipelined:
        return fill_pipelined(a)
    m = connect(a)
    t0 = time.perf_counter()
    for i in range(a.n):
        msg = message(i)
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


RAW = [
    ("SEARCH SUBJECT zzzz", "SEARCH SUBJECT zzzz"),
    ("STATUS INBOX (MESSAGES UNSEEN UIDNEXT)", "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)"),
    ("SELECT INBOX", None),
    ("FETCH 1:* (FLAGS)", "FETCH 1:* (FLAGS)"),
    ("SEARCH BODY zzzz", "SEARCH BODY zzzz"),
]


def timing_raw(a):
    r = Raw(a)
    r.command("SELECT INBOX")
    for name, text in RAW:
        runs = []
        for _ in range(a.runs + 1):
            if text is None:
                other = Raw(a)
                t0 = time.perf_counter()
                other.command("SELECT INBOX")
                runs.append((time.perf_counter() - t0) * 1000)
                other.close()
                continue
            t0 = time.perf_counter()
            r.command(text)
            runs.append((time.perf_counter() - t0) * 1000)
        print(f"{name:42s} median {statistics.median(runs[1:]):9.3f} ms   first {runs[0]:9.3f} ms")
    r.close()


def timing(a):
    if a.raw:
        return timing_raw(a)
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
    p.add_argument("--raw", action="store_true")
    p.add_argument("--pipelined", action="store_true")
    a = p.parse_args()
    fill(a) if a.mode == "fill" else timing(a)


if __name__ == "__main__":
    main()
