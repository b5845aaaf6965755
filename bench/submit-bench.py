#!/usr/bin/env python3
"""Submission load: authenticated SMTP sessions sending mail as fast as the server takes it.

By hand, never in CI; loopback only. smtp-source (Postfix) cannot log in, so this is what
measures the cost of work that happens only on submission, such as DKIM signing.

  submit-bench.py --port 2587 --user alice@bench.test --password secret \\
                  --to sink@sink.test -s 20 -m 100 -l 4096

Each of S sessions (spread over --processes worker processes, each an asyncio loop on raw
sockets, so the client is not the bottleneck) connects, reads the greeting, sends EHLO and
`AUTH PLAIN` with an initial response (RFC 4954 §4), then M messages of about L octets, then
QUIT. With --per-connection, every message gets a connection of its own (greeting, EHLO, AUTH,
one transaction, QUIT), M per session as before. When EHLO advertises PIPELINING (RFC 2920),
MAIL, RCPT and DATA go out in one write and their replies are read together; the message and
its final dot are one more write, and the next transaction waits for the 250 (RFC 2920 §3.1).

It prints the accepted messages, the wall time from the first connection to the last reply,
messages/s, the latency of a transaction (MAIL to the 250 after the dot: median and 99th
percentile) and the first refusals, if any. A run where anything was refused exits with 1.
Python 3 standard library only.
"""
import argparse
import asyncio
import base64
import multiprocessing
import os
import socket
import sys
import time

# Refusals kept per process, to show what went wrong without flooding the terminal.
ERRORS_KEPT = 5


def loopback(host):
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as e:
        sys.exit(f"cannot resolve {host}: {e}")
    for info in infos:
        addr = info[4][0]
        if not (addr.startswith("127.") or addr == "::1"):
            sys.exit(f"refusing non-loopback host {host} ({addr}): this tool is for loopback")


def make_message(args, worker, session, n):
    """The message, CRLF lines, dot-stuffing not needed (no line starts with '.')."""
    head = (
        f"From: <{args.mail_from}>\r\n"
        f"To: {', '.join('<' + r + '>' for r in args.to)}\r\n"
        f"Subject: submit-bench {worker}.{session}.{n}\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        f"Message-ID: <sb.{os.getpid()}.{worker}.{session}.{n}.{time.time_ns()}@submit-bench>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    body = bytearray()
    while len(head) + len(body) < args.size:
        body += line
    return head + bytes(body)


class Refused(Exception):
    pass


class Session:
    def __init__(self, reader, writer):
        self.r = reader
        self.w = writer
        self.pipelining = False

    async def reply(self):
        """One reply (all its lines); (code, text of the last line)."""
        while True:
            line = await self.r.readline()
            if not line:
                raise Refused("connection closed by the server")
            # The last line of a reply has a space (or nothing) after the code.
            if line[3:4] != b"-":
                try:
                    code = int(line[:3])
                except ValueError:
                    raise Refused(f"not an SMTP reply: {line!r}")
                return code, line.decode("utf-8", "replace").rstrip()

    async def expect(self, want, what):
        code, text = await self.reply()
        if code != want:
            raise Refused(f"{what}: {text}")
        return text

    async def cmd(self, line, want):
        self.w.write(line.encode() + b"\r\n")
        await self.w.drain()
        return await self.expect(want, line.split(" ")[0])


async def connect(args):
    reader, writer = await asyncio.open_connection(args.host, args.port, limit=1 << 16)
    s = Session(reader, writer)
    await s.expect(220, "greeting")
    # The last line of a multi-line EHLO reply can be PIPELINING too.
    s.w.write(f"EHLO {args.helo}\r\n".encode())
    await s.w.drain()
    while True:
        line = await s.r.readline()
        if not line:
            raise Refused("connection closed after EHLO")
        if line[4:].strip().upper().startswith(b"PIPELINING"):
            s.pipelining = True
        if line[:3] != b"250":
            raise Refused(f"EHLO: {line.decode('utf-8', 'replace').rstrip()}")
        if line[3:4] != b"-":
            break
    if args.no_pipelining:
        s.pipelining = False
    token = base64.b64encode(f"\0{args.user}\0{args.password}".encode()).decode()
    await s.cmd(f"AUTH PLAIN {token}", 235)
    return s


async def transaction(s, args, message):
    envelope = [f"MAIL FROM:<{args.mail_from}>"] + [f"RCPT TO:<{r}>" for r in args.to]
    if s.pipelining:
        # RFC 2920 §3.1: DATA last in the group; every reply read in order.
        s.w.write("".join(c + "\r\n" for c in envelope + ["DATA"]).encode())
        await s.w.drain()
        for c in envelope:
            await s.expect(250, c.split(":")[0])
        await s.expect(354, "DATA")
    else:
        for c in envelope:
            await s.cmd(c, 250)
        await s.cmd("DATA", 354)
    s.w.write(message + b".\r\n")
    await s.w.drain()
    await s.expect(250, "end of data")


async def quit(s):
    try:
        s.w.write(b"QUIT\r\n")
        await s.w.drain()
        await asyncio.wait_for(s.reply(), 5)
    except (OSError, Refused, asyncio.TimeoutError):
        pass
    s.w.close()


async def run_session(args, worker, index, stats):
    s = None
    for n in range(args.messages):
        try:
            if s is None:
                s = await connect(args)
            message = make_message(args, worker, index, n)
            t0 = time.perf_counter()
            await transaction(s, args, message)
            stats["latencies"].append(time.perf_counter() - t0)
            stats["accepted"] += 1
        except (OSError, Refused) as e:
            stats["refused"] += 1
            if len(stats["errors"]) < ERRORS_KEPT:
                stats["errors"].append(str(e))
            if s is not None:
                s.w.close()
            s = None
            if str(e).startswith("AUTH"):
                # Wrong credentials stay wrong: the session's other messages are lost too.
                stats["refused"] += args.messages - n - 1
                break
            continue
        if args.per_connection:
            await quit(s)
            s = None
    if s is not None:
        await quit(s)


async def run_worker(args, worker, sessions):
    stats = {"accepted": 0, "refused": 0, "errors": [], "latencies": []}
    await asyncio.gather(*(run_session(args, worker, i, stats) for i in range(sessions)))
    return stats


def worker_main(args, worker, sessions, start_at, queue):
    # Every process starts at the same moment, so the wall time covers them all.
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    t0 = time.time()
    stats = asyncio.run(run_worker(args, worker, sessions))
    stats["start"] = t0
    stats["end"] = time.time()
    queue.put(stats)


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[i]


def main():
    ap = argparse.ArgumentParser(
        description="Authenticated SMTP submission load (loopback only); prints msgs/s.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=587, help="the submission listener")
    ap.add_argument("--user", required=True, help="the login (AUTH PLAIN)")
    ap.add_argument("--password", required=True)
    ap.add_argument("--from", dest="mail_from", help="MAIL FROM and From (default: --user)")
    ap.add_argument(
        "--to", action="append", help="a recipient (repeat for more); default sink@sink.test"
    )
    ap.add_argument("-s", "--sessions", type=int, default=10, help="concurrent sessions")
    ap.add_argument("-m", "--messages", type=int, default=100, help="messages per session")
    ap.add_argument("-l", "--size", type=int, default=4096, help="message size in octets")
    ap.add_argument(
        "--per-connection",
        action="store_true",
        help="a new connection (EHLO, AUTH) for every message",
    )
    ap.add_argument("--no-pipelining", action="store_true", help="never pipeline")
    ap.add_argument(
        "-p",
        "--processes",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="client processes the sessions are spread over",
    )
    ap.add_argument("--helo", default="submit-bench.localhost")
    args = ap.parse_args()
    args.mail_from = args.mail_from or args.user
    args.to = args.to or ["sink@sink.test"]
    if args.sessions < 1 or args.messages < 1 or args.processes < 1 or args.size < 1:
        sys.exit("--sessions, --messages, --processes and --size must be at least 1")
    loopback(args.host)

    procs = min(args.processes, args.sessions)
    share = [args.sessions // procs + (1 if i < args.sessions % procs else 0) for i in range(procs)]
    queue = multiprocessing.Queue()
    start_at = time.time() + 0.3
    workers = [
        multiprocessing.Process(target=worker_main, args=(args, i, n, start_at, queue))
        for i, n in enumerate(share)
    ]
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()

    accepted = sum(r["accepted"] for r in results)
    refused = sum(r["refused"] for r in results)
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    lat = sorted(x for r in results for x in r["latencies"])
    mode = "a connection per message" if args.per_connection else "one connection per session"
    print(
        f"{accepted} messages of {args.size} octets accepted in {wall:.2f} s: "
        f"{accepted / wall if wall > 0 else 0:.0f} msg/s "
        f"({args.sessions} sessions over {procs} processes, {mode}, "
        f"{'no pipelining' if args.no_pipelining else 'PIPELINING when offered'})"
    )
    print(
        f"transaction latency: median {percentile(lat, 50) * 1000:.1f} ms, "
        f"p99 {percentile(lat, 99) * 1000:.1f} ms"
    )
    if refused:
        print(f"{refused} messages refused or lost; the first:", file=sys.stderr)
        for e in [e for r in results for e in r["errors"]][:ERRORS_KEPT]:
            print(f"  {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
