#!/usr/bin/env python3
"""Login storm over IMAP, by hand, never in CI. Loopback only.

  login_storm.py --port P --users user1@bench.test:pass1,user2@bench.test:pass2 \
                 -n 900 -t 30 --pid SERVER_PID [--tree]

N clients loop for T seconds over: connect, LOGIN (the right password; with --wrong-password
a wrong one, as an attacker would), LOGOUT, close. Client i uses the i-th user of --users
(round robin) and binds its socket to a source address from 127.0.0.2 on (--per-source
clients per address, default 10), so a server's per-address limits and failure tracking do
not hide the cost of the logins. A failed login is counted by its reason (a timeout and the
step it happened at, a refused connection, or the LOGIN reply's response code) and its client
pauses 0.1 s before the next.

A separate process logs in every second from 127.0.0.1 with the right password (the probe:
connect, LOGIN, LOGOUT, a fresh connection each time) and records the time from connect to
LOGIN's OK, and of the LOGIN command alone.

Prints: successful logins per second, failed logins (by reason), the server's peak resident
memory (VmHWM of --pid, and the largest VmRSS sampled every 0.2 s; with --tree, the sum of
VmRSS over --pid and all its descendants, for multi-process servers such as Dovecot) and the
probe's latencies.

Raise `ulimit -n` (both processes) and the server's connection limits for large N.
stdlib only.
"""
import argparse
import asyncio
import ipaddress
import multiprocessing as mp
import os
import socket
import statistics
import sys
import threading
import time


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid):
    """pid and every process below it (from /proc/*/stat parent links)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def pss_kib(pid):
    """Proportional set size: shared pages divided among the processes that map them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Samples the server's resident memory every 0.2 s (a process tree: every second, RSS
    and PSS summed over the processes)."""

    def __init__(self, pid, tree):
        super().__init__(daemon=True)
        self.pid, self.tree = pid, tree
        self.peak = 0
        self.peak_pss = 0
        self.stop = threading.Event()

    def sample(self):
        pids = descendants(self.pid) if self.tree else [self.pid]
        if self.tree:
            self.peak_pss = max(self.peak_pss, sum(pss_kib(p) for p in pids))
        return sum(status_kib(p, "VmRSS") for p in pids)

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.sample())
            self.stop.wait(0.2 if not self.tree else 1.0)


def source_address(i, per_source):
    return str(ipaddress.ip_address("127.0.0.2") + i // per_source)


async def read_until_tag(reader, tag):
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed before the tagged reply")
        if line.startswith(tag + b" "):
            return line


async def one_login(host, port, src, user, password, timeout):
    """Connect, LOGIN, LOGOUT. Returns None on success, else the reason."""
    writer = None
    step = "connect"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=(src, 0) if src else None), timeout)
        step = "greeting"
        greeting = await asyncio.wait_for(reader.readline(), timeout)
        if not greeting.startswith(b"* OK"):
            return "greeting: " + greeting.decode(errors="replace").strip()[:60]
        step = "LOGIN"
        writer.write(b"a1 LOGIN " + user + b" " + password + b"\r\n")
        reply = await asyncio.wait_for(read_until_tag(reader, b"a1"), timeout)
        if not reply.startswith(b"a1 OK"):
            text = reply.decode(errors="replace").strip()
            # "a1 NO [CODE] ...": group by response code, else by the first words.
            if "[" in text and "]" in text:
                return "LOGIN: " + text[text.index("["):text.index("]") + 1]
            return "LOGIN: " + text[:60]
        step = "LOGOUT"
        writer.write(b"a2 LOGOUT\r\n")
        await asyncio.wait_for(read_until_tag(reader, b"a2"), timeout)
        return None
    except asyncio.TimeoutError:
        return f"timeout at {step}"
    except OSError as e:
        return f"{type(e).__name__} at {step}"
    finally:
        if writer is not None:
            writer.close()


def worker(a, first, count, deadline, out):
    """One load-generating process: clients first..first+count-1."""
    users = [u.encode().split(b":", 1) for u in a.users.split(",")]

    async def client(i, stats):
        src = source_address(i, a.per_source)
        user, password = users[i % len(users)]
        if a.wrong_password:
            password = b"wrong-" + str(i).encode()
        while time.time() < deadline:
            why = await one_login(a.host, a.port, src, user, password, a.timeout)
            if why is None:
                stats["ok"] += 1
            else:
                stats["failed"][why] = stats["failed"].get(why, 0) + 1
                await asyncio.sleep(0.1)

    async def main():
        stats = {"ok": 0, "failed": {}}
        await asyncio.gather(*(client(i, stats) for i in range(first, first + count)))
        return stats

    out.put(asyncio.run(main()))


def probe(a, deadline, out):
    """Every second: one fresh login from 127.0.0.1, timed from connect to LOGIN's OK (and the
    LOGIN alone)."""
    user, password = a.users.split(",")[0].encode().split(b":", 1)
    if a.probe_user:
        user, password = a.probe_user.encode().split(b":", 1)
    times, login_times, failed = [], [], []
    while time.time() < deadline:
        t0 = time.time()
        start = time.perf_counter()
        try:
            with socket.create_connection((a.host, a.port), timeout=a.timeout) as s:
                f = s.makefile("rb")
                f.readline()
                t1 = time.perf_counter()
                s.sendall(b"p1 LOGIN " + user + b" " + password + b"\r\n")
                while True:
                    line = f.readline()
                    if not line or line.startswith(b"p1 "):
                        break
                end = time.perf_counter()
                if line.startswith(b"p1 OK"):
                    times.append(end - start)
                    login_times.append(end - t1)
                else:
                    failed.append(line.decode(errors="replace").strip()[:60] or "closed")
                s.sendall(b"p2 LOGOUT\r\n")
        except OSError as e:
            failed.append(type(e).__name__)
        time.sleep(max(0.0, 1.0 - (time.time() - t0)))
    out.put({"probe": times, "probe_login": login_times, "probe_failed": failed})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--users", required=True, help="user:password,user:password,...")
    ap.add_argument("--probe-user", help="user:password for the probe (default: the first)")
    ap.add_argument("-n", "--clients", type=int, default=900)
    ap.add_argument("-t", "--seconds", type=float, default=30)
    ap.add_argument("-P", "--processes", type=int, default=1, help="load-generating processes")
    ap.add_argument("--per-source", type=int, default=10, help="clients per source address")
    ap.add_argument("--timeout", type=float, default=30, help="per step, seconds")
    ap.add_argument("--wrong-password", action="store_true",
                    help="the N clients send wrong passwords (an attack); the probe the right one")
    ap.add_argument("--pid", type=int, help="server pid (memory)")
    ap.add_argument("--tree", action="store_true", help="sum memory over the pid's descendants")
    a = ap.parse_args()
    if not ipaddress.ip_address(socket.gethostbyname(a.host)).is_loopback:
        sys.exit(f"refusing non-loopback host {a.host}")
    last = ipaddress.ip_address("127.0.0.2") + (a.clients - 1) // a.per_source
    if not last.is_loopback:
        sys.exit("too many source addresses; raise --per-source")

    sampler = None
    if a.pid:
        sampler = Sampler(a.pid, a.tree)
        base = sampler.sample()
        sampler.start()
    out = mp.Queue()
    start = time.time()
    deadline = start + a.seconds
    procs = []
    per = -(-a.clients // a.processes)
    for k in range(a.processes):
        first = k * per
        count = min(per, a.clients - first)
        if count > 0:
            procs.append(mp.Process(target=worker, args=(a, first, count, deadline, out)))
    procs.append(mp.Process(target=probe, args=(a, deadline, out)))
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.time() - start
    ok = sum(r.get("ok", 0) for r in results)
    failed = {}
    for r in results:
        for why, n in r.get("failed", {}).items():
            failed[why] = failed.get(why, 0) + n
    probe_times = [t for r in results for t in r.get("probe", [])]
    probe_failed = [f for r in results for f in r.get("probe_failed", [])]

    print(f"clients {a.clients} over {(a.clients - 1) // a.per_source + 1} source addresses, "
          f"{a.seconds:.0f} s ({elapsed:.1f} s with the tail)")
    print(f"logins/s {ok / a.seconds:.0f}  ({ok} successful)")
    print(f"failed logins {sum(failed.values())} ({sum(failed.values()) / a.seconds:.0f}/s)"
          + (f"  {failed}" if failed else ""))
    if sampler:
        sampler.stop.set()
        sampler.join()
        peak = max(sampler.peak, sampler.sample())
        what = "summed over the process tree, sampled" if a.tree else "sampled"
        line = f"server RSS before {base / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB ({what})"
        if a.tree:
            line += f", peak PSS sum {sampler.peak_pss / 1024:.0f} MiB"
        else:
            line += f", VmHWM {status_kib(a.pid, 'VmHWM') / 1024:.0f} MiB"
        print(line)
    if probe_times:
        def summary(xs):
            xs = sorted(xs)
            return (f"median {statistics.median(xs) * 1000:.1f} ms, "
                    f"p90 {xs[int(len(xs) * 0.9)] * 1000:.1f} ms, max {xs[-1] * 1000:.1f} ms")
        login_times = [t for r in results for t in r.get("probe_login", [])]
        print(f"probe login (connect to OK): {summary(probe_times)} "
              f"({len(probe_times)} probes, {len(probe_failed)} failed"
              f"{': ' + str(probe_failed[:3]) if probe_failed else ''})")
        print(f"probe LOGIN command alone: {summary(login_times)}")
    else:
        print(f"probe login: none succeeded ({probe_failed[:5]})")


if __name__ == "__main__":
    main()
