#!/usr/bin/env python3
"""IMAP load for mailroom (or any IMAP server), by hand, never in CI. Loopback only.

  imap-bench.py mix  --port P --user U --password W -c 10 -t 20
      C clients, each logged in once, loop for T seconds over a mix of
      SELECT, FETCH (flags + headers of 10 messages), STORE (+FLAGS \\Seen), SEARCH UNSEEN,
      APPEND (a 1 KiB message) and EXPUNGE (of what it appended). Prints commands/s.

  imap-bench.py idle --port P --user U --password W -n 10000 --pid SERVER_PID
      Opens N connections, logs each in, keeps them open, and prints the server's resident
      memory before and after (from /proc/PID/status) and the difference per connection.
      Raise `ulimit -n` for both processes first.

stdlib only.
"""
import argparse
import imaplib
import re
import socket
import sys
import threading
import time

MSG = (b"From: bench@bench.test\r\nTo: user1@bench.test\r\nSubject: imap bench\r\n\r\n"
       + b"x" * 1000 + b"\r\n")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def mix(a):
    count = [0] * a.clients
    stop = time.perf_counter() + a.seconds

    def client(i):
        m = imaplib.IMAP4(a.host, a.port, timeout=60)
        m.login(a.user, a.password)
        n = 0
        while time.perf_counter() < stop:
            typ, data = m.select("INBOX")
            n += 1
            # The count after SELECT: its EXISTS, less any EXPUNGE reported with it (another
            # client's expunge can land between the listing and the end of the command).
            exists = int(data[-1]) - len(m.untagged_responses.pop("EXPUNGE", []))
            if exists:
                lo = max(1, exists - 9)
                m.fetch(f"{lo}:{exists}", "(FLAGS BODY.PEEK[HEADER])")
                m.store(str(exists), "+FLAGS", "\\Seen")
                n += 2
            m.search(None, "UNSEEN")
            typ, resp = m.append("INBOX", None, None, MSG)
            n += 2
            # APPENDUID [uidvalidity uid]: delete exactly what this client appended.
            found = re.search(rb"\[APPENDUID \d+ (\d+)\]", resp[0] or b"") if resp else None
            uid = found.group(1) if found else None
            if uid:
                m.uid("STORE", uid.decode(), "+FLAGS", "(\\Deleted)")
                m.uid("EXPUNGE", uid.decode())
                n += 2
        count[i] = n
        m.logout()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    total = sum(count)
    print(f"imap {a.host}:{a.port}: {a.clients} clients, {total} commands in {secs:.1f} s: "
          f"{total / secs:.0f} commands/s")


def idle(a):
    before = rss_kib(a.pid)
    socks = []
    t0 = time.perf_counter()
    for i in range(a.n):
        s = socket.create_connection((a.host, a.port), timeout=60)
        f = s.makefile("rb")
        f.readline()
        s.sendall(f"a LOGIN {a.user} {a.password}\r\n".encode())
        while True:
            line = f.readline()
            if not line:
                sys.exit(f"connection {i} closed: is the connection limit high enough?")
            if line.startswith(b"a "):
                if not line.startswith(b"a OK"):
                    sys.exit(f"login {i} failed: {line!r}")
                break
        socks.append((s, f))
        if (i + 1) % 1000 == 0:
            print(f"  {i + 1} connections, server RSS {rss_kib(a.pid)} KiB", flush=True)
    time.sleep(2)
    after = rss_kib(a.pid)
    print(f"{a.n} idle authenticated connections in {time.perf_counter() - t0:.1f} s: "
          f"server RSS {before} KiB -> {after} KiB, "
          f"{(after - before) * 1024 / a.n / 1024:.1f} KiB per connection")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["mix", "idle"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=24143)
    ap.add_argument("--user", default="user1@bench.test")
    ap.add_argument("--password", default="pass1")
    ap.add_argument("-c", "--clients", type=int, default=10)
    ap.add_argument("-t", "--seconds", type=float, default=20)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--pid", type=int, default=0)
    a = ap.parse_args()
    if not (a.host.startswith("127.") or a.host in ("localhost", "::1")):
        sys.exit(f"refusing non-loopback host: {a.host}")
    mix(a) if a.mode == "mix" else idle(a)


if __name__ == "__main__":
    main()
