"""Load generator of the chaos test (crates/mailroom/tests/chaos.rs).

Runs mixed traffic against one mailroom server until the time is up or the server is gone
(it is killed with SIGKILL at a random moment), and writes a journal: one JSON object per
line, flushed at once, for every operation *before* it is sent ("try") and after the
server's answer ("ok" for 250 / +OK / OK, "refused" for a refusal). An operation with a
"try" and no answer had an unknown outcome: it may or may not have happened, but at most
once. Every message carries a unique X-Chaos-Id header.

A journal line is tab-separated: op, state, round, ids (comma-separated), recipient, code.
Ops: smtp (MX), submit (to the remote peer), append (IMAP), flag (IMAP STORE +FLAGS
\Flagged), expunge (IMAP UID EXPUNGE), dele (POP3 DELE ... QUIT).

Environment: HOST, SMTP_PORT, SUBMISSION_PORT, POP3_PORT, IMAP_PORT, JOURNAL, SEED, ROUND,
DURATION (seconds), LOCAL_USERS (address:password,...), SUBMIT_USER, REMOTE_RCPT,
POP_USER, IMAP_USER.
"""

import imaplib
import os
import poplib
import random
import re
import smtplib
import socket
import threading
import time

HOST = os.environ["HOST"]
SMTP_PORT = int(os.environ["SMTP_PORT"])
SUBMISSION_PORT = int(os.environ["SUBMISSION_PORT"])
POP3_PORT = int(os.environ["POP3_PORT"])
IMAP_PORT = int(os.environ["IMAP_PORT"])
ROUND = int(os.environ["ROUND"])
SEED = int(os.environ["SEED"])
DEADLINE = time.time() + float(os.environ["DURATION"])
USERS = dict(u.split(":", 1) for u in os.environ["LOCAL_USERS"].split(","))
SUBMIT_USER = os.environ["SUBMIT_USER"]
REMOTE_RCPT = os.environ["REMOTE_RCPT"]
POP_USER = os.environ["POP_USER"]
IMAP_USER = os.environ["IMAP_USER"]
TIMEOUT = 20

journal = open(os.environ["JOURNAL"], "a", encoding="utf-8")
journal_lock = threading.Lock()
gone = threading.Event()  # the server was seen gone: every worker stops


def log(op, state, id=None, ids=None, rcpt="", code=0):
    ids = ids if ids is not None else [id]
    line = "\t".join([op, state, str(ROUND), ",".join(ids), rcpt, str(code)]) + "\n"
    with journal_lock:
        journal.write(line)
        journal.flush()


def running():
    return not gone.is_set() and time.time() < DEADLINE


def server_gone(e):
    """Connection refused: the server is not there any more (killed)."""
    if isinstance(e, ConnectionRefusedError):
        gone.set()
        return True
    return False


def message(mid, to, size):
    head = (
        "From: chaos@far.test\r\nTo: %s\r\nSubject: chaos %s\r\nX-Chaos-Id: %s\r\n"
        "Message-ID: <%s@chaos.test>\r\n\r\n" % (to, mid, mid, mid)
    )
    line = "chaos %s " % mid
    line = (line * (76 // len(line) + 1))[:76] + "\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


def sizes(rng):
    r = rng.random()
    if r < 0.7:
        return rng.randint(200, 4000)
    if r < 0.95:
        return rng.randint(4000, 60000)
    return rng.randint(200000, 400000)


def smtp_worker(name, submission):
    """1 to 5 messages per connection (submission: per login), until stopped."""
    rng = random.Random("%d-%d-%s" % (SEED, ROUND, name))
    n = 0
    while running():
        if submission:
            op, port = "submit", SUBMISSION_PORT
        else:
            op, port = "smtp", SMTP_PORT
        try:
            s = smtplib.SMTP(HOST, port, timeout=TIMEOUT)
        except OSError as e:
            if server_gone(e):
                return
            time.sleep(0.05)
            continue
        try:
            s.ehlo("chaos.test")
            if submission:
                s.login(SUBMIT_USER, USERS[SUBMIT_USER])
            for _ in range(rng.randint(1, 5)):
                if not running():
                    break
                n += 1
                mid = "r%d-%s-%d" % (ROUND, name, n)
                rcpt = REMOTE_RCPT if submission else rng.choice(sorted(USERS))
                data = message(mid, rcpt, sizes(rng))
                log(op=op, id=mid, rcpt=rcpt, state="try")
                try:
                    s.sendmail(SUBMIT_USER if submission else "chaos@far.test", [rcpt], data)
                    log(op=op, id=mid, rcpt=rcpt, state="ok")
                except (smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused,
                        smtplib.SMTPSenderRefused) as e:
                    code = getattr(e, "smtp_code", 0) or 0
                    if isinstance(e, smtplib.SMTPRecipientsRefused):
                        code = list(e.recipients.values())[0][0]
                    log(op=op, id=mid, rcpt=rcpt, state="refused", code=code)
                    s.rset()
        except (OSError, smtplib.SMTPException) as e:
            server_gone(e)
        try:
            s.quit()
        except (OSError, smtplib.SMTPException):
            pass


ID_RE = re.compile(rb"X-Chaos-Id: (\S+)", re.I)


def imap_ids(m):
    """uid -> chaos id of every message in the selected mailbox."""
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (X-CHAOS-ID)])")
    out = {}
    if typ != "OK":
        return out
    for item in data:
        if isinstance(item, tuple):
            uid = re.search(rb"UID (\d+)", item[0])
            mid = ID_RE.search(item[1])
            if uid and mid:
                out[int(uid.group(1))] = mid.group(1).decode()
    return out


def imap_worker():
    rng = random.Random("%d-%d-imap" % (SEED, ROUND))
    n = 0
    while running():
        try:
            m = imaplib.IMAP4(HOST, IMAP_PORT, timeout=TIMEOUT)
        except OSError as e:
            if server_gone(e):
                return
            time.sleep(0.05)
            continue
        try:
            m.login(IMAP_USER, USERS[IMAP_USER])
            m.select("INBOX")
            for _ in range(rng.randint(5, 30)):
                if not running():
                    break
                action = rng.random()
                if action < 0.45:
                    n += 1
                    mid = "r%d-imap-%d" % (ROUND, n)
                    data = message(mid, IMAP_USER, sizes(rng)).encode()
                    log(op="append", id=mid, rcpt=IMAP_USER, state="try")
                    typ, resp = m.append("INBOX", None, None, data)
                    log(op="append", id=mid, rcpt=IMAP_USER,
                        state="ok" if typ == "OK" else "refused")
                    continue
                ids = imap_ids(m)
                if not ids:
                    continue
                if action < 0.75:
                    uid = rng.choice(sorted(ids))
                    log(op="flag", id=ids[uid], state="try")
                    typ, _ = m.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Flagged)")
                    if typ == "OK":
                        log(op="flag", id=ids[uid], state="ok")
                else:
                    uids = rng.sample(sorted(ids), min(len(ids), rng.randint(1, 3)))
                    gone_ids = [ids[u] for u in uids]
                    uidset = ",".join(str(u) for u in uids)
                    typ, _ = m.uid("STORE", uidset, "+FLAGS.SILENT", "(\\Deleted)")
                    if typ != "OK":
                        continue
                    log(op="expunge", ids=gone_ids, state="try")
                    typ, _ = m.uid("EXPUNGE", uidset)
                    if typ == "OK":
                        log(op="expunge", ids=gone_ids, state="ok")
            m.logout()
        except (OSError, imaplib.IMAP4.error, imaplib.IMAP4.abort) as e:
            server_gone(e)
            time.sleep(0.05)


def pop_worker():
    rng = random.Random("%d-%d-pop" % (SEED, ROUND))
    while running():
        try:
            p = poplib.POP3(HOST, POP3_PORT, timeout=TIMEOUT)
        except OSError as e:
            if server_gone(e):
                return
            time.sleep(0.05)
            continue
        try:
            p.user(POP_USER)
            p.pass_(USERS[POP_USER])
            count = p.stat()[0]
            marked = []
            for i in rng.sample(range(1, count + 1), min(count, rng.randint(0, 6))):
                resp, lines, _ = p.retr(i) if rng.random() < 0.3 else p.top(i, 0)
                mid = None
                for l in lines:
                    g = ID_RE.match(l)
                    if g:
                        mid = g.group(1).decode()
                        break
                if mid is None:
                    continue
                p.dele(i)
                marked.append(mid)
            if marked:
                log(op="dele", ids=marked, state="try")
            p.quit()
            if marked:
                log(op="dele", ids=marked, state="ok")
        except poplib.error_proto as e:
            # -ERR: e.g. the maildrop is still locked by a session the server has not ended.
            time.sleep(0.1)
        except OSError as e:
            server_gone(e)
            time.sleep(0.05)
        time.sleep(rng.random() * 0.2)


threads = [
    threading.Thread(target=smtp_worker, args=("smtp%d" % i, False)) for i in range(2)
] + [
    threading.Thread(target=smtp_worker, args=("sub%d" % i, True)) for i in range(2)
] + [
    threading.Thread(target=imap_worker),
    threading.Thread(target=pop_worker),
]
for t in threads:
    t.start()
for t in threads:
    t.join()
journal.close()
