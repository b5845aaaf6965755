//! IMAP SEARCH over decoded text (RFC 9051 §6.4.4), driven by Python's imaplib: RFC 2047
//! encoded words in headers (UTF-8 base64, ISO-8859-1 quoted-printable, folded), base64 and
//! quoted-printable text bodies, non-ASCII needles sent as literals with CHARSET UTF-8.

mod support;

use support::imap::start;
use support::{ALICE, BOB};

fn message(subject: &str, headers: &str, body: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n{headers}\r\n{body}\r\n",
        from = BOB.0,
        to = ALICE.0,
    )
}

#[test]
fn imaplib_search_decoded_headers_and_bodies() {
    let s = start();
    let messages = [
        // 1: "Grüße aus Köln", UTF-8 base64.
        message(
            "=?utf-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=",
            "",
            "plain body one",
        ),
        // 2: "Grüße aus München", ISO-8859-1 quoted-printable.
        message(
            "=?ISO-8859-1?Q?Gr=FC=DFe_aus_M=FCnchen?=",
            "",
            "plain body two",
        ),
        // 3: "Quarterly report: Treffen in Köln am Montag", folded twice (once with a tab).
        message(
            "Quarterly report:\r\n =?utf-8?q?Treffen_in_K=C3=B6ln?=\r\n\tam Montag",
            "",
            "plain body three",
        ),
        // 4: base64 UTF-8 body "Schöne Grüße vom Bodensee".
        message(
            "base64 body",
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
            "U2Now7ZuZSBHcsO8w59lIHZvbSBCb2RlbnNlZQ==",
        ),
        // 5: quoted-printable ISO-8859-1 body "Straße in Köln" (soft line break included).
        message(
            "qp body",
            "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n",
            "Stra=DFe in=\r\n K=F6ln",
        ),
    ];
    for m in &messages {
        s.deliver(BOB.0, &[ALICE.0], m);
    }
    let out = s.python(
        r#"
import os, imaplib
M = imaplib.IMAP4(os.environ["HOST"], int(os.environ["IMAP_PORT"]))
assert M.login("alice@example.test", "secret")[0] == "OK"
typ, data = M.select("INBOX")
assert typ == "OK" and data == [b"5"], data

def search(*criteria, lit=None, charset="UTF-8"):
    # A non-ASCII needle goes as a literal: imaplib sends M.literal after the criteria.
    if lit is not None:
        M.literal = lit.encode("utf-8")
    typ, data = M.search(charset, *criteria)
    assert typ == "OK", (criteria, lit, typ, data)
    return [int(n) for n in data[0].split()]

checks = [
    # Encoded-word subjects, UTF-8 needles in literals, case-insensitive beyond ASCII.
    (("SUBJECT",), "Köln", [1, 3]),
    (("SUBJECT",), "KÖLN", [1, 3]),
    (("SUBJECT",), "grüße aus", [1, 2]),
    (("SUBJECT",), "MÜNCHEN", [2]),
    (("SUBJECT",), "köln am montag", [3]),
    (("SUBJECT",), "köln bonn", []),
    (("SUBJECT",), "Bodensee", []),
    (("HEADER", "Subject"), "aus köln", [1]),
    (("NOT", "SUBJECT"), "köln", [2, 4, 5]),
    # Decoded bodies.
    (("BODY",), "Grüße vom Bodensee", [4]),
    (("BODY",), "straße in köln", [5]),
    (("BODY",), "köln", [5]),
    (("BODY",), "münchen", []),
    (("TEXT",), "köln", [1, 3, 5]),
    (("TEXT",), "Subject: Grüße aus", [1, 2]),
    (("TEXT",), "bodensee", [4]),
    (("OR", "BODY", "bodensee", "SUBJECT"), "münchen", [2, 4]),
]
for criteria, needle, want in checks:
    got = search(*criteria, lit=needle)
    assert got == want, (criteria, needle, got, want)

# ASCII needles as quoted strings, with and without CHARSET.
assert search("SUBJECT", '"aus K"', charset=None) == [1], search("SUBJECT", '"aus K"', charset=None)
assert search("SUBJECT", '"report: treffen"', charset=None) == [3]
assert search("SUBJECT", '"in K"') == [3]
assert search("SUBJECT", '"aus x"') == []
# Raw octets still match.
assert search("SUBJECT", '"=?utf-8?B?"', charset=None) == [1]
assert search("BODY", "U2Now7Z", charset=None) == [4]
assert search("BODY", '"K=F6ln"', charset=None) == [5]
assert search("BODY", '"plain body"', charset=None) == [1, 2, 3]
# The empty-string rule: HEADER x "" matches every message having the field.
assert search("HEADER", "Content-Transfer-Encoding", '""', charset=None) == [4, 5]
# UID SEARCH answers with UIDs.
M.literal = "köln".encode()
typ, data = M.uid("SEARCH", "CHARSET", "UTF-8", "BODY")
assert typ == "OK" and data == [b"5"], data
M.logout()
print("ok")
"#,
    );
    assert_eq!(out.trim(), "ok", "{out}");
}
