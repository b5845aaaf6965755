//! IMAP with Python's imaplib: the everyday client paths of RFC 9051 / RFC 3501.

mod support;

use support::imap::{msg, start};
use support::{ALICE, BOB};

/// Login, capabilities, folders, select, search, fetch of every data item, store, copy, move,
/// expunge, status, subscriptions, namespace, ID, UID commands, AUTHENTICATE PLAIN.
#[test]
fn imaplib_everyday_session() {
    let s = start();
    s.deliver(
        BOB.0,
        &[ALICE.0],
        &msg(BOB.0, ALICE.0, "first", "Hello Alice.\r\nSecond line."),
    );
    s.deliver(
        BOB.0,
        &[ALICE.0],
        &msg(BOB.0, ALICE.0, "second", "Lunch at noon?"),
    );
    let multipart = "From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attachment\r\n--b1\r\nContent-Type: application/octet-stream; name=\"x.bin\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"x.bin\"\r\n\r\nAAECAw==\r\n--b1--\r\n";
    s.deliver(BOB.0, &[ALICE.0], multipart);
    let out = s.python(
        r#"
import os, imaplib, re
host, port = os.environ["HOST"], int(os.environ["IMAP_PORT"])
M = imaplib.IMAP4(host, port)
for c in ["IMAP4REV1", "IMAP4REV2", "IDLE", "UIDPLUS", "MOVE", "LITERAL+", "SPECIAL-USE", "NAMESPACE", "ID", "ENABLE", "UNSELECT", "CHILDREN", "LIST-EXTENDED", "ESEARCH", "AUTH=PLAIN"]:
    assert c in M.capabilities, (c, M.capabilities)
assert "STARTTLS" in M.capabilities  # the server made a self-signed certificate
typ, data = M.login("alice@example.test", "secret")
assert typ == "OK", data

# LIST: INBOX and the special-use folders of a new account.
typ, data = M.list()
assert typ == "OK"
lines = [d.decode() for d in data]
names = [re.search(r'"/" "?([^"]*)"?$', l).group(1) for l in lines]
assert names[0] == "INBOX" and sorted(names) == sorted(["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"]), lines
assert any("\\Sent" in l and "Sent" in l for l in lines), lines
assert any("\\Trash" in l for l in lines), lines
typ, data = M.lsub()
assert typ == "OK" and len(data) == 6, data

# CREATE / RENAME / DELETE with hierarchy.
assert M.create("Work/Projects")[0] == "OK"
typ, data = M.list("\"\"", "Work*")
assert [d.decode() for d in data] == ['(\\HasChildren) "/" "Work"', '(\\HasNoChildren) "/" "Work/Projects"'], data
typ, data = M.list("\"\"", "%")
assert not any(b"Work/Projects" in d for d in data), data
typ, data = M.create("Work")
assert typ == "NO" and b"ALREADYEXISTS" in data[0], data
assert M.rename("Work", "Job")[0] == "OK"
typ, data = M.list("\"\"", "Job/*")
assert data == [b'(\\HasNoChildren) "/" "Job/Projects"'], data
typ, data = M.rename("Nope", "Other")
assert typ == "NO" and b"NONEXISTENT" in data[0], data
assert M.delete("Job/Projects")[0] == "OK"
assert M.delete("Job")[0] == "OK"
typ, data = M.delete("INBOX")
assert typ == "NO", data

# SUBSCRIBE / UNSUBSCRIBE / NAMESPACE / STATUS / ID / ENABLE-less rev1 behaviour.
assert M.unsubscribe("Junk")[0] == "OK"
typ, data = M.lsub()
assert not any(b'"Junk"' in d for d in data), data
assert M.subscribe("Junk")[0] == "OK"
typ, data = M.namespace()
assert typ == "OK" and data == [b'(("" "/")) NIL NIL'], data
typ, data = M.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY SIZE)")
assert typ == "OK", data
st = data[0].decode()
assert "MESSAGES 3" in st and "UNSEEN 3" in st and "UIDNEXT 4" in st, st
typ, data = M.xatom("ID", '("name" "imaplib")')
assert typ == "OK", data

# SELECT.
typ, data = M.select("INBOX")
assert typ == "OK" and data == [b"3"], data
assert M.response("UIDVALIDITY")[1][0] is not None
assert M.response("PERMANENTFLAGS")[1][0] is not None

# FETCH of every data item.
typ, data = M.fetch("1", "(FLAGS UID INTERNALDATE RFC822.SIZE ENVELOPE)")
assert typ == "OK", data
line = data[0].decode()
assert "FLAGS (\\Recent)" in line and "UID 1" in line and "INTERNALDATE \"" in line and "RFC822.SIZE " in line, line
assert '"first"' in line and '(NIL NIL "bob" "example.test")' in line, line
size = int(re.search(r"RFC822.SIZE (\d+)", line).group(1))

typ, data = M.fetch("1", "(BODY.PEEK[HEADER])")
hdr = data[0][1]
assert b"Subject: first\r\n" in hdr and hdr.endswith(b"\r\n\r\n"), hdr
typ, data = M.fetch("1", "(FLAGS)")
assert b"\\Seen" not in data[0], data   # PEEK did not set \Seen

typ, data = M.fetch("1", "(BODY[TEXT])")
assert data[0][1] == b"Hello Alice.\r\nSecond line.\r\n", data
typ, data = M.fetch("1", "(FLAGS)")
assert b"\\Seen" in data[0], data        # BODY[] did

typ, data = M.fetch("2", "(RFC822)")
assert len(data[0][1]) == int(re.search(rb"RFC822.SIZE (\d+)", M.fetch("2", "RFC822.SIZE")[1][0]).group(1))
assert data[0][1].endswith(b"Lunch at noon?\r\n")
typ, data = M.fetch("2", "(BODY.PEEK[]<0.10>)")
assert b"BODY[]<0>" in data[0][0] and len(data[0][1]) == 10, data
typ, data = M.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
assert data[0][1] == b"From: <bob@example.test>\r\nSubject: second\r\n\r\n", data
typ, data = M.fetch("2", "(RFC822.HEADER RFC822.TEXT)")
assert typ == "OK", data

typ, data = M.fetch("3", "(BODYSTRUCTURE)")
bs = data[0].decode()
assert '("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 14 1' in bs, bs
assert '"MIXED" ("BOUNDARY" "b1")' in bs, bs
assert '("attachment" ("FILENAME" "x.bin"))' in bs, bs
typ, data = M.fetch("3", "(BODY)")
assert typ == "OK" and "BOUNDARY" not in data[0].decode(), data
typ, data = M.fetch("3", "(BODY.PEEK[1] BODY.PEEK[2.MIME] BINARY.PEEK[2])")
assert data[0][1] == b"see attachment", data
assert data[1][1].startswith(b"Content-Type: application/octet-stream"), data
assert data[2][1] == b"\x00\x01\x02\x03", data
typ, data = M.fetch("1:*", "FAST")
assert typ == "OK" and len(data) == 3, data
typ, data = M.fetch("1", "(BODY[99])")
assert typ == "OK" and b"BODY[99] NIL" in data[0], data

# UID FETCH includes UID.
typ, data = M.uid("FETCH", "2:3", "(FLAGS)")
assert typ == "OK" and b"UID 2" in data[0] and b"UID 3" in data[1], data

# SEARCH.
def search(*crit):
    typ, data = M.search(None, *crit)
    assert typ == "OK", (crit, data)
    return data[0].decode().split()
assert search("ALL") == ["1", "2", "3"]
assert search("SEEN") == ["1", "2"]      # RFC822 and BODY[TEXT] set \Seen
assert search("UNSEEN") == ["3"]
assert search("SUBJECT", "second") == ["2"]
assert search("FROM", "bob") == ["1", "2", "3"]
assert search("TO", "alice@example.test") == ["1", "2", "3"]
assert search("BODY", "lunch") == ["2"]
assert search("TEXT", "attachment") == ["3"]
assert search("OR", "SUBJECT", "first", "SUBJECT", "parts") == ["1", "3"]
assert search("NOT", "SUBJECT", "first") == ["2", "3"]
assert search("LARGER", str(size - 1), "SMALLER", str(size + 1)) == ["1"]
assert search("SINCE", "1-Jan-2000", "BEFORE", "1-Jan-2100") == ["1", "2", "3"]
assert search("SENTON", "1-Jan-2024") == ["1", "2"]
assert search("2:3") == ["2", "3"]
assert search("UID", "3:2") == ["2", "3"]
assert search("HEADER", "Message-ID", "second@") == ["2"]
typ, data = M.uid("SEARCH", "SUBJECT", "parts")
assert data == [b"3"], data
typ, data = M.search("UTF-8", "SUBJECT", "first")
assert data == [b"1"], data

# STORE.
typ, data = M.store("1", "+FLAGS", "(\\Flagged $Work)")
assert typ == "OK" and b"\\Flagged" in data[0] and b"$Work" in data[0], data
typ, data = M.store("1", "-FLAGS", "(\\Seen)")
assert b"\\Seen" not in data[0], data
typ, data = M.store("2", "FLAGS.SILENT", "(\\Answered)")
assert typ == "OK"
typ, data = M.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
assert typ == "OK" and b"UID 3" in data[0], data
assert search("FLAGGED") == ["1"] and search("KEYWORD", "$Work") == ["1"] and search("ANSWERED") == ["2"]
assert search("DELETED") == ["3"]

# COPY / MOVE with UIDPLUS.
typ, data = M.copy("1:2", "Archive")
assert typ == "OK", data
assert M.response("COPYUID")[1][0] is not None or b"COPYUID" in data[0], data
typ, data = M.copy("1", "Nowhere")
assert typ == "NO" and b"TRYCREATE" in data[0], data
typ, data = M._simple_command("MOVE", "2", "Trash")
assert typ == "OK", data
typ, data = M.select("INBOX")
assert data == [b"2"], data

# EXPUNGE removes message 2 (the multipart, \Deleted).
typ, data = M.expunge()
assert typ == "OK" and data == [b"2"], data
typ, data = M.search(None, "ALL")
assert data == [b"1"], data

# APPEND with flags and a date, APPENDUID.
typ, data = M.append("Drafts", "(\\Draft \\Seen)", '"05-Mar-2024 12:34:56 +0100"', b"Subject: draft\r\n\r\nunfinished\r\n")
assert typ == "OK" and b"APPENDUID" in data[0], data
typ, data = M.append("NoSuch", None, None, b"x\r\n")
assert typ == "NO" and b"TRYCREATE" in data[0], data
typ, data = M.status("Archive", "(MESSAGES)")
assert b"MESSAGES 2" in data[0], data
typ, data = M.status("Trash", "(MESSAGES)")
assert b"MESSAGES 1" in data[0], data
typ, data = M.select("Drafts", readonly=True)
assert data == [b"1"], data
typ, data = M.fetch("1", "(FLAGS INTERNALDATE BODY[])")
assert b"\\Draft" in data[0][0] and b'"05-Mar-2024 11:34:56 +0000"' in data[0][0], data
typ, data = M.store("1", "+FLAGS", "(\\Deleted)")
assert typ == "NO", data
assert M.unselect()[0] == "OK"
typ, data = M.select("INBOX")
assert M.close()[0] == "OK"
M.logout()

# AUTHENTICATE PLAIN.
M = imaplib.IMAP4(host, port)
typ, data = M.authenticate("PLAIN", lambda _: b"\0alice\0secret")
assert typ == "OK", data
M.logout()
M = imaplib.IMAP4(host, port)
try:
    M.login("alice@example.test", "wrong")
    raise SystemExit("wrong password accepted")
except imaplib.IMAP4.error as e:
    assert "AUTHENTICATIONFAILED" in str(e), e
M.logout()
print("ok")
"#,
    );
    assert!(out.contains("ok"), "{out}");
    let log = s.log_text();
    assert!(
        log.contains("LOGIN alice@example.test ****"),
        "password masked"
    );
    assert!(!log.contains("secret"), "no password in the trace:\n{log}");
}
