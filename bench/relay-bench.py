#!/usr/bin/env python3
"""Relay throughput, end to end, by hand (never in CI). Loopback only.

  relay-bench.py --mailroom target/release/mailroom --postfix 127.0.0.1:2526 \\
                 --sink-port 2527 --runs 3 -m 2000 -s 20 -l 4096

What one run measures: `smtp-source` submits M messages of L octets over S sessions; the
server under test queues them for the remote domain `sink.test` and relays them over SMTP to
Postfix's `smtp-sink` on 127.0.0.1:SINK_PORT. The run ends when the sink's own counter
(`smtp-sink -c`, one tick per "." received) reaches M; the rate is M / (that moment - the
start of the submission). Both servers relay without TLS.

- mailroom: a fresh data directory per run, a catch-all alias `@bench.test` →
  `relay@sink.test` and a static route `sink.test` → the sink (`queue.*` keys can be added
  with --queue 'per_destination = 8'). Mail goes to its MX listener.
- Postfix: a running instance (the peer Postfix of the benchmark kit) that relays
  `sink.test` to 127.0.0.1:SINK_PORT; mail goes to --postfix.

The script starts (and stops) its own `smtp-sink -c` on SINK_PORT for each run, so nothing
else may listen there. Runs are interleaved (mailroom, Postfix, mailroom, ...); it prints
each run, the medians and the ratio. Needs `smtp-source` and `smtp-sink` (Debian's
`postfix` package). stdlib only.
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def loopback(host):
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        sys.exit(f"refusing non-loopback host: {host}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """smtp-sink -c on the sink port; `count` follows its message counter."""

    def __init__(self, port):
        cmd = ["smtp-sink", "-c"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += [f"127.0.0.1:{port}", "1024"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.count = 0
        self.sessions = 0
        self.last = ""
        threading.Thread(target=self._read, daemon=True).start()
        # Wait until it listens.
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        # The probe above counts as one session, no message.

    def _read(self):
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                return
            buf += chunk
            *done, buf = re.split(rb"[\r\n]", buf)
            for line in done:
                m = re.search(rb"sess=(\d+) quit=\d+ mesg=(\d+)", line)
                if m:
                    self.sessions = int(m.group(1))
                    self.count = int(m.group(2))
                    self.last = line.decode()

    def wait(self, n, timeout):
        deadline = time.perf_counter() + timeout
        while self.count < n and time.perf_counter() < deadline:
            time.sleep(0.005)
        return time.perf_counter()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def submit(target, to, a):
    host, port = target.rsplit(":", 1)
    loopback(host)
    return subprocess.Popen(
        ["smtp-source", "-s", str(a.sessions), "-m", str(a.msgs), "-l", str(a.size),
         "-f", "sender@bench.test", "-t", to, target],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def start_mailroom(a, sink_port, binary):
    d = tempfile.mkdtemp(prefix="relay-bench-")
    port = free_port()
    config = f"""hostname = "mx.bench.test"
data_dir = "{d}/data"
domains = ["bench.test"]

[listen]
smtp = "127.0.0.1:{port}"

[limits]
max_connections_per_ip = 1000

[aliases]
"@bench.test" = "relay@sink.test"

[routes]
"sink.test" = {{ host = "127.0.0.1:{sink_port}", tls = "none" }}

[queue]
{a.queue}
"""
    path = os.path.join(d, "mailroom.toml")
    with open(path, "w") as f:
        f.write(config)
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    proc = subprocess.Popen([binary, "--config", path, "serve"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for line in proc.stdout:
        if line.startswith(b"ready:"):
            break
    else:
        sys.exit("mailroom exited before it was ready")
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    return proc, f"127.0.0.1:{port}", d


def one_run(which, a):
    sink = Sink(a.sink_port)
    proc = None
    try:
        if which != "postfix":
            binary = a.mailroom if which == "mailroom" else a.baseline
            proc, target, d = start_mailroom(a, a.sink_port, binary)
        else:
            target = a.postfix
        t0 = time.perf_counter()
        # mailroom's MX takes user1@bench.test (its catch-all relays it); Postfix relays
        # sink.test itself.
        to = "relay@sink.test" if which == "postfix" else "user1@bench.test"
        src = submit(target, to, a)
        _, err = src.communicate()
        t_sub = time.perf_counter()
        if src.returncode != 0:
            print(f"  smtp-source failed: {err.decode().strip()}", file=sys.stderr)
        t1 = sink.wait(a.msgs, a.timeout)
        got = sink.count
        rate = got / (t1 - t0)
        print(f"{which:8}  submitted in {t_sub - t0:6.2f} s ({a.msgs / (t_sub - t0):7.1f} msg/s)"
              f"  delivered {got}/{a.msgs} in {t1 - t0:6.2f} s: {rate:7.1f} msg/s"
              f"  (sink sessions {sink.sessions - 1})", flush=True)
        return rate if got >= a.msgs else 0.0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
            shutil.rmtree(d, ignore_errors=True)
        sink.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mailroom", required=True, help="the mailroom binary (a release build)")
    p.add_argument("--baseline", help="another mailroom binary (an older build) to run alongside")
    p.add_argument("--postfix", help="HOST:PORT of a Postfix relaying sink.test to the sink; omit to skip")
    p.add_argument("--sink-port", type=int, default=2527)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("-m", "--msgs", type=int, default=2000)
    p.add_argument("-s", "--sessions", type=int, default=20)
    p.add_argument("-l", "--size", type=int, default=4096)
    p.add_argument("--queue", default="", help="extra [queue] lines for mailroom")
    p.add_argument("--timeout", type=float, default=300)
    a = p.parse_args()
    if a.postfix:
        loopback(a.postfix.rsplit(":", 1)[0])
    rates = {"mailroom": [], "postfix": [], "baseline": []}
    for _ in range(a.runs):
        rates["mailroom"].append(one_run("mailroom", a))
        if a.baseline:
            rates["baseline"].append(one_run("baseline", a))
        if a.postfix:
            rates["postfix"].append(one_run("postfix", a))
            time.sleep(1)
    print(f"{a.msgs} msgs x {a.size} B, {a.sessions} sessions, {a.runs} interleaved runs each")
    m = statistics.median(rates["mailroom"])
    print(f"mailroom median: {m:.1f} msg/s delivered")
    if a.baseline:
        print(f"baseline median: {statistics.median(rates['baseline']):.1f} msg/s delivered")
    if a.postfix:
        pf = statistics.median(rates["postfix"])
        print(f"postfix  median: {pf:.1f} msg/s delivered")
        if pf > 0:
            print(f"ratio mailroom/postfix: {m / pf:.2f}x")


if __name__ == "__main__":
    main()
