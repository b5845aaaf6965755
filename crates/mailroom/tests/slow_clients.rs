//! Slow and idle clients (issue 13): a client that trickles a byte every few seconds must not
//! hold a connection slot for ever, and drippers from one address must not keep anyone else
//! out. The idle timeout is a deadline per command line (and per message body, with a minimum
//! data rate), not a timer per socket read that every byte re-arms.
mod support;

use support::*;

/// Drippers from 127.0.0.2 on every listener (more than the per-address cap), a DATA dripper
/// from 127.0.0.3, and meanwhile a normal SMTP, POP3 and IMAP session from 127.0.0.1.
#[test]
fn drippers_are_cut_off_and_never_keep_others_out() {
    let s = support::imap::start_with(
        "[limits]\nidle_timeout = \"2s\"\npop3_idle_timeout = \"2s\"\nmax_connections_per_ip = 4\nmin_data_rate = 1000\n",
    );
    let out = s.python(
        r#"
import os, socket, threading, time, smtplib, poplib, imaplib, json
H = os.environ["HOST"]
ports = {"smtp": int(os.environ["SMTP_PORT"]), "pop3": int(os.environ["POP3_PORT"]),
         "imap": int(os.environ["IMAP_PORT"])}
NORMAL = {"smtp": b"220", "pop3": b"+OK", "imap": b"* OK"}
CAP = 4

def open_from(src, port):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(5)
    s.connect((H, port))
    return s

result = {"refused": {}, "closed_after": {}, "normal": {}, "data_dripper": None}
drippers = []
for name, port in ports.items():
    refused = 0
    for i in range(CAP + 3):
        c = open_from("127.0.0.2", port)
        greeting = c.recv(512)
        if greeting.startswith(NORMAL[name]):
            drippers.append((name, c))
        else:
            refused += 1
            c.close()
    result["refused"][name] = refused

# A DATA dripper on the MX listener from another address.
d = open_from("127.0.0.3", ports["smtp"])
f = d.makefile("rb")
f.readline()
for line in [b"EHLO drip.test", b"MAIL FROM:<d@drip.test>", b"RCPT TO:<alice@example.test>", b"DATA"]:
    d.sendall(line + b"\r\n")
    while True:
        l = f.readline()
        if l[3:4] != b"-":
            break
drippers.append(("data", d))

start = time.time()
closed = {}
def drip():
    while time.time() - start < 9 and len(closed) < len(drippers):
        for i, (name, c) in enumerate(drippers):
            if i in closed:
                continue
            try:
                c.sendall(b"X")
                c.settimeout(0.05)
                try:
                    got = c.recv(4096)
                    if got == b"" or b"421" in got or b"-ERR" in got or b"BYE" in got:
                        closed[i] = (time.time() - start, got.decode("latin-1"))
                except socket.timeout:
                    pass
            except OSError as e:
                closed[i] = (time.time() - start, str(e))
        time.sleep(0.5)
t = threading.Thread(target=drip)
t.start()

# Normal sessions from 127.0.0.1 while the drippers hold their slots.
t0 = time.time()
m = smtplib.SMTP(H, ports["smtp"], timeout=10)
m.sendmail("x@far.test", ["alice@example.test"], "Subject: prompt\r\n\r\nhello\r\n")
m.quit()
result["normal"]["smtp"] = time.time() - t0
t0 = time.time()
p = poplib.POP3(H, ports["pop3"], timeout=10)
p.user("alice@example.test"); p.pass_("secret"); p.stat(); p.quit()
result["normal"]["pop3"] = time.time() - t0
t0 = time.time()
i = imaplib.IMAP4(H, ports["imap"], timeout=10)
i.login("alice@example.test", "secret"); i.select("INBOX"); i.logout()
result["normal"]["imap"] = time.time() - t0

t.join()
for idx, (name, c) in enumerate(drippers):
    if idx in closed:
        result["closed_after"].setdefault(name, []).append(round(closed[idx][0], 1))
        if name == "data":
            result["data_dripper"] = closed[idx][1]
    else:
        result["closed_after"].setdefault(name, []).append(None)
print(json.dumps(result))
# The per-address cap: 4 slots for 127.0.0.2 on each listener, the rest refused.
for name in ["smtp", "pop3", "imap"]:
    assert result["refused"][name] == 3, (name, result)
    assert result["normal"][name] < 3.0, ("a normal session was slow beside the drippers", name, result)
# SMTP and POP3 drippers (and the DATA dripper) are cut at their 2 s deadline, not kept
# alive by each byte. (IMAP's autologout is at least 30 minutes: its drippers stay.)
for name in ["smtp", "pop3", "data"]:
    times = result["closed_after"][name]
    assert times and all(t is not None and t < 5.0 for t in times), ("dripper not cut off", name, result)
assert "421 4.4.2" in (result["data_dripper"] or ""), result

"#,
    );
    assert!(out.contains("refused"), "{out}");
    // The slow message was not stored; the prompt one was.
    let inbox = s.inbox(ALICE.0);
    assert_eq!(inbox.len(), 1, "only the normal session's message");
}
