//! Tests of the response types: the parser (moved here with it from the client), the
//! encoder against the octets the server sends today, and the round trips.

use super::*;

fn atom(s: &str) -> Value {
    Value::Atom(s.into())
}

/// The logical line the parser takes: the wire form without its final CRLF.
fn logical(r: &Response) -> Vec<u8> {
    let wire = r.to_bytes();
    wire.strip_suffix(b"\r\n").expect("ends in CRLF").to_vec()
}

#[test]
fn values_atoms_strings_literals_lists() {
    let v = values(b"(\\Seen \\Flagged) \"a \\\"q\\\" b\" NIL {5}\r\nhe(l) x").expect("parse");
    assert_eq!(
        v,
        vec![
            Value::List(vec![atom("\\Seen"), atom("\\Flagged")]),
            Value::Quoted(b"a \"q\" b".to_vec()),
            Value::Nil,
            Value::Literal(b"he(l)".to_vec()),
            atom("x"),
        ]
    );
    // Sections with spaces and parentheses stay one atom; a partial origin stays on it.
    let v = values(b"(BODY[HEADER.FIELDS (FROM TO)] {2}\r\nab BODY[]<0> \"x\")").expect("parse");
    assert_eq!(
        v,
        vec![Value::List(vec![
            atom("BODY[HEADER.FIELDS (FROM TO)]"),
            Value::Literal(b"ab".to_vec()),
            atom("BODY[]<0>"),
            Value::Quoted(b"x".to_vec()),
        ])]
    );
    assert_eq!(
        values(b"{3+}\r\nabc").expect("plus"),
        vec![Value::Literal(b"abc".to_vec())]
    );
    // RFC 3516 §4.3 literal8 (BINARY octets with NUL); a `~` elsewhere is an atom character.
    assert_eq!(
        values(b"(BINARY[1] ~{3}\r\na\0b) ~x").expect("literal8"),
        vec![
            Value::List(vec![atom("BINARY[1]"), Value::Literal8(b"a\0b".to_vec())]),
            atom("~x"),
        ]
    );
    // A `[` outside a section name is an atom character (a keyword, an astring name).
    assert_eq!(
        values(b"(\\Seen a[b) x[y \"\"").expect("brackets"),
        vec![
            Value::List(vec![atom("\\Seen"), atom("a[b")]),
            atom("x[y"),
            Value::Quoted(Vec::new()),
        ]
    );
    assert_eq!(
        values(b"BINARY.SIZE[1 2] 5").expect("binary.size"),
        vec![atom("BINARY.SIZE[1 2]"), atom("5")]
    );
}

#[test]
fn values_refuse_broken_input() {
    for bad in [
        &b"(a b"[..],
        b"\"open",
        b"{10}\r\nshort",
        b"{x}\r\nab",
        b"{2}ab",
        b"~{2}ab",
        b")",
    ] {
        assert!(values(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    let deep = "(".repeat(200) + &")".repeat(200);
    assert!(values(deep.as_bytes()).is_err());
}

#[test]
fn responses_are_classified() {
    assert_eq!(
        response(b"a1 OK [READ-WRITE] SELECT completed").expect("tagged"),
        Response::Tagged {
            tag: "a1".into(),
            status: StatusText {
                status: Status::Ok,
                code: Some("READ-WRITE".into()),
                text: "SELECT completed".into()
            }
        }
    );
    assert_eq!(
        response(b"* OK [UIDVALIDITY 7] UIDs valid (see RFC)").expect("status"),
        Response::UntaggedStatus(StatusText {
            status: Status::Ok,
            code: Some("UIDVALIDITY 7".into()),
            text: "UIDs valid (see RFC)".into()
        })
    );
    assert_eq!(
        response(b"* 3 EXISTS").expect("numbered"),
        Response::Numbered {
            n: 3,
            keyword: "EXISTS".into(),
            rest: vec![]
        }
    );
    assert_eq!(
        response(b"* SEARCH 2 5").expect("search"),
        Response::Data {
            keyword: "SEARCH".into(),
            rest: vec![atom("2"), atom("5")]
        }
    );
    assert_eq!(
        response(b"+ go ahead").expect("cont"),
        Response::Continue("go ahead".into())
    );
    assert!(response(b"a1 MAYBE").is_err());
    assert!(response(b"garbage").is_err());
    assert_eq!(
        response(b"garbage").map_err(|e| e.to_string()),
        Err("a response line without a space".to_string())
    );
    assert_eq!(trailing_literal(b"* 1 FETCH (BODY[] {12}"), Some(12));
    assert_eq!(trailing_literal(b"* 1 FETCH (BODY[] {12+}"), Some(12));
    assert_eq!(trailing_literal(b"* 1 FETCH (BINARY[] ~{12}"), Some(12));
    assert_eq!(trailing_literal(b"* OK {not}"), None);
    assert_eq!(trailing_literal(b"* OK done"), None);
}

#[test]
fn fetch_pairs_name_the_items() {
    let r = response(b"* 2 FETCH (UID 9 flags (\\Seen) BODY[]<0> {3}\r\nabc)").expect("fetch");
    let Response::Numbered { n: 2, rest, .. } = r else {
        panic!("not numbered: {r:?}")
    };
    assert_eq!(
        fetch_pairs(&rest).expect("pairs"),
        vec![
            ("UID".to_string(), atom("9")),
            ("FLAGS".to_string(), Value::List(vec![atom("\\Seen")])),
            ("BODY[]<0>".to_string(), Value::Literal(b"abc".to_vec())),
        ]
    );
    assert!(fetch_pairs(&[atom("UID")]).is_err());
    assert!(fetch_pairs(&[Value::List(vec![atom("UID")])]).is_err());
}

/// The encoder writes exactly what the server sends today (the strings are copied from the
/// server's IMAP driver and its tests).
#[test]
fn encoder_writes_the_server_shapes() {
    let flags = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];
    let cases: Vec<(Response, &[u8])> = vec![
        (
            Response::untagged(
                Status::Ok,
                Some("CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ AUTH=PLAIN"),
                "mailroom IMAP4 server ready",
            ),
            b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ AUTH=PLAIN] mailroom IMAP4 server ready\r\n",
        ),
        (
            Response::tagged("a1", Status::Ok, Some("READ-WRITE"), "SELECT completed"),
            b"a1 OK [READ-WRITE] SELECT completed\r\n",
        ),
        (
            Response::tagged("a2", Status::No, Some("TRYCREATE"), "no such mailbox"),
            b"a2 NO [TRYCREATE] no such mailbox\r\n",
        ),
        // Control characters in text become spaces (the server's ImapError::to_reply).
        (
            Response::tagged("a1", Status::Bad, None, "oops\r\nx"),
            b"a1 BAD oops  x\r\n",
        ),
        (Response::untagged(Status::Bad, None, "x"), b"* BAD x\r\n"),
        (
            Response::untagged(Status::Bye, None, "autologout: no command for too long"),
            b"* BYE autologout: no command for too long\r\n",
        ),
        (
            Response::tagged("a4", Status::Ok, None, "LOGOUT completed"),
            b"a4 OK LOGOUT completed\r\n",
        ),
        (
            Response::untagged(Status::Ok, Some("COPYUID 7 1:2 5:6"), "moved"),
            b"* OK [COPYUID 7 1:2 5:6] moved\r\n",
        ),
        (
            Response::untagged(Status::Ok, Some("CLOSED"), "previous mailbox closed"),
            b"* OK [CLOSED] previous mailbox closed\r\n",
        ),
        (
            Response::untagged(
                Status::Ok,
                Some("PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)"),
                "flags you can change",
            ),
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] flags you can change\r\n",
        ),
        (
            Response::untagged(Status::Ok, Some("PERMANENTFLAGS ()"), "read-only mailbox"),
            b"* OK [PERMANENTFLAGS ()] read-only mailbox\r\n",
        ),
        (Response::continuation("go ahead"), b"+ go ahead\r\n"),
        (
            Response::continuation("idling; send DONE to stop"),
            b"+ idling; send DONE to stop\r\n",
        ),
        // An empty SASL challenge (RFC 9051 §7.5).
        (Response::continuation(""), b"+ \r\n"),
        (Response::exists(4), b"* 4 EXISTS\r\n"),
        (Response::expunge(2), b"* 2 EXPUNGE\r\n"),
        (Response::recent(1), b"* 1 RECENT\r\n"),
        (
            Response::fetch(
                1,
                vec![atom("FLAGS"), Value::List(vec![atom("\\Seen")]), atom("UID"), Value::num(1u32)],
            ),
            b"* 1 FETCH (FLAGS (\\Seen) UID 1)\r\n",
        ),
        (
            Response::fetch(
                3,
                vec![
                    atom("FLAGS"),
                    Value::List(vec![]),
                    atom("UID"),
                    Value::num(7u32),
                    atom("MODSEQ"),
                    Value::List(vec![Value::num(12u64)]),
                ],
            ),
            b"* 3 FETCH (FLAGS () UID 7 MODSEQ (12))\r\n",
        ),
        (
            Response::fetch(
                2,
                vec![
                    atom("UID"),
                    Value::num(4u32),
                    atom("INTERNALDATE"),
                    Value::Quoted(b"14-Nov-2023 22:13:20 +0000".to_vec()),
                    atom("RFC822.SIZE"),
                    Value::num(5u64),
                    atom("BODY[HEADER.FIELDS (FROM)]"),
                    Value::Literal(b"From: a\r\n\r\n".to_vec()),
                    atom("BODY[]<0>"),
                    Value::Literal(b"hello".to_vec()),
                    atom("BINARY[1]"),
                    Value::Literal8(b"a\0b".to_vec()),
                    atom("ENVELOPE"),
                    Value::List(vec![Value::Nil, Value::string(b"Hi \"you\"")]),
                ],
            ),
            b"* 2 FETCH (UID 4 INTERNALDATE \"14-Nov-2023 22:13:20 +0000\" RFC822.SIZE 5 BODY[HEADER.FIELDS (FROM)] {11}\r\nFrom: a\r\n\r\n BODY[]<0> {5}\r\nhello BINARY[1] ~{3}\r\na\0b ENVELOPE (NIL \"Hi \\\"you\\\"\"))\r\n",
        ),
        (
            Response::fetch(
                5,
                vec![
                    atom("INTERNALDATE"),
                    Value::date_time(1_700_000_000),
                    atom("BINARY.SIZE[1.2]"),
                    Value::num(0u64),
                    atom("BODY[9]"),
                    Value::Nil,
                ],
            ),
            b"* 5 FETCH (INTERNALDATE \"14-Nov-2023 22:13:20 +0000\" BINARY.SIZE[1.2] 0 BODY[9] NIL)\r\n",
        ),
        (
            Response::list("LIST", &["\\NonExistent"], "/", b"Ghost")
                .with_childinfo(&["SUBSCRIBED"]),
            b"* LIST (\\NonExistent) \"/\" \"Ghost\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n",
        ),
        (
            Response::list("LIST", &[] as &[&str], "/", "Grüße".as_bytes())
                .with_childinfo(&["SUBSCRIBED"]),
            "* LIST () \"/\" {7}\r\nGrüße (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n".as_bytes(),
        ),
        (
            Response::flags(&flags),
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
        ),
        (
            Response::list("LIST", &["\\HasNoChildren", "\\Sent"], "/", b"Sent"),
            b"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n",
        ),
        (
            Response::list("LIST", &["\\Noselect"], "/", b""),
            b"* LIST (\\Noselect) \"/\" \"\"\r\n",
        ),
        (
            Response::list("LSUB", &[] as &[&str], "/", "Grüße".as_bytes()),
            "* LSUB () \"/\" {7}\r\nGrüße\r\n".as_bytes(),
        ),
        (
            Response::status(b"INBOX", &[("MESSAGES", 2), ("UIDNEXT", 5)]),
            b"* STATUS \"INBOX\" (MESSAGES 2 UIDNEXT 5)\r\n",
        ),
        (
            Response::status(b"My Mail", &[]),
            b"* STATUS \"My Mail\" ()\r\n",
        ),
        (Response::search(&[2, 5], None), b"* SEARCH 2 5\r\n"),
        (Response::search(&[2, 5], Some(9)), b"* SEARCH 2 5 (MODSEQ 9)\r\n"),
        (Response::search(&[], Some(9)), b"* SEARCH\r\n"),
        (
            Response::capability(&["IMAP4rev1", "IMAP4rev2", "IDLE"]),
            b"* CAPABILITY IMAP4rev1 IMAP4rev2 IDLE\r\n",
        ),
        (Response::enabled(&["CONDSTORE"]), b"* ENABLED CONDSTORE\r\n"),
        (Response::enabled(&[] as &[&str]), b"* ENABLED\r\n"),
        (Response::quota("", 3, 4), b"* QUOTA \"\" (STORAGE 3 4)\r\n"),
        (
            Response::quotaroot("INBOX", &[""]),
            b"* QUOTAROOT INBOX \"\"\r\n",
        ),
        (
            Response::quotaroot("My Mail", &[] as &[&str]),
            b"* QUOTAROOT \"My Mail\"\r\n",
        ),
        (
            Response::data(
                "ESEARCH",
                vec![
                    Value::List(vec![atom("TAG"), Value::string(b"a1")]),
                    atom("UID"),
                    atom("MIN"),
                    Value::num(1u32),
                    atom("ALL"),
                    atom("1:3"),
                ],
            ),
            b"* ESEARCH (TAG \"a1\") UID MIN 1 ALL 1:3\r\n",
        ),
        (
            Response::data(
                "NAMESPACE",
                vec![
                    Value::List(vec![Value::List(vec![
                        Value::string(b""),
                        Value::string(b"/"),
                    ])]),
                    Value::Nil,
                    Value::Nil,
                ],
            ),
            b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n",
        ),
    ];
    for (r, want) in &cases {
        let bytes = r.to_bytes();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(want),
            "{r:?}"
        );
        // The buffer was big enough from the start.
        assert!(bytes.len() <= r.wire_len(), "{r:?}");
    }
    // ... and each reads back as the value it was built from, except the control characters.
    for (r, _) in cases {
        let got = response(&logical(&r)).expect("parses");
        if matches!(&r, Response::Tagged { status, .. } if status.text.contains('\r')) {
            continue;
        }
        assert_eq!(got, r);
    }
}

/// `Value::string` and `Value::astring` choose the form the byte-level helpers of
/// [`crate::imap::encode`] choose: one rule.
#[test]
fn string_forms_agree_with_the_byte_helpers() {
    use crate::imap::encode::{push_astring, push_string};
    for s in [
        "INBOX", "My Mail", "", "a\"b\\", "Grüße", "nil", "a\r\nb", "x[y]",
    ] {
        let mut want = Vec::new();
        push_string(&mut want, s.as_bytes());
        let mut got = Vec::new();
        Value::string(s.as_bytes()).write_to(&mut got);
        assert_eq!(got, want, "string {s:?}");
        let mut want = Vec::new();
        push_astring(&mut want, s);
        let mut got = Vec::new();
        Value::astring(s).write_to(&mut got);
        assert_eq!(got, want, "astring {s:?}");
    }
    let long = vec![b'a'; 1024];
    assert!(matches!(Value::string(&long), Value::Literal(_)));
    // A quoted string cannot carry CR, LF or NUL: written as a literal.
    let mut out = Vec::new();
    Value::Quoted(b"a\nb".to_vec()).write_to(&mut out);
    assert_eq!(out, b"{3}\r\na\nb");
}

/// Parsed responses encode back to the octets they were read from.
#[test]
fn parse_then_encode_gives_the_same_octets() {
    let lines: &[&[u8]] = &[
        b"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready",
        b"a2 OK [READ-WRITE] SELECT completed",
        b"a3 NO [NONEXISTENT] no such mailbox",
        b"* PREAUTH welcome",
        b"* 2 FETCH (BODY[] {14}\r\nSubject: x\r\n\r\n UID 4)",
        b"* 1 FETCH (BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 1 NIL NIL NIL NIL))",
        b"* LIST (\\HasChildren) \"/\" \"Archive\"",
        b"* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 1)",
        b"* ESEARCH (TAG \"a5\") UID COUNT 2 ALL 4:5",
        b"* ID (\"name\" \"mailroom\" \"version\" \"0.1.0\")",
        b"* NAMESPACE ((\"\" \"/\")) NIL NIL",
        b"+ go ahead",
        b"a9 OK",
        b"* OK",
        b"* SEARCH",
    ];
    for line in lines {
        let r = response(line).expect("parses");
        assert_eq!(
            String::from_utf8_lossy(&logical(&r)),
            String::from_utf8_lossy(line)
        );
    }
}

/// `with_childinfo` only extends LIST-like data; other responses stay as they are.
#[test]
fn childinfo_only_on_data() {
    let r = Response::exists(3).with_childinfo(&["SUBSCRIBED"]);
    assert_eq!(r, Response::exists(3));
}

/// [`Value::Encoded`]: the MIME module's ENVELOPE and BODYSTRUCTURE go on the wire as they
/// are, inside a FETCH the encoder builds, and read back as the values they spell.
#[test]
fn encoded_values_are_written_as_they_are() {
    let message = b"From: Alice <alice@example.test>\r\nTo: \"Bob \\\"B\\\"\" <bob@example.test>\r\nSubject: tab\there\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n--XX--\r\n";
    let mime = crate::imap::mime::Mime::parse(message);
    let r = Response::fetch(
        7,
        vec![
            atom("UID"),
            Value::num(9u32),
            atom("ENVELOPE"),
            Value::Encoded(mime.envelope.clone()),
            atom("BODYSTRUCTURE"),
            Value::Encoded(mime.bodystructure.clone()),
        ],
    );
    let mut want = b"* 7 FETCH (UID 9 ENVELOPE ".to_vec();
    want.extend_from_slice(&mime.envelope);
    want.extend_from_slice(b" BODYSTRUCTURE ");
    want.extend_from_slice(&mime.bodystructure);
    want.extend_from_slice(b")\r\n");
    let bytes = r.to_bytes();
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&want)
    );
    assert!(bytes.len() <= r.wire_len());
    // Read back: the values the octets spell, which encode to the same octets again.
    let parsed = response(&logical(&r)).expect("parses");
    let envelope = values(&mime.envelope).expect("envelope parses");
    let bodystructure = values(&mime.bodystructure).expect("bodystructure parses");
    let mut items = vec![atom("UID"), atom("9"), atom("ENVELOPE")];
    items.extend(envelope);
    items.push(atom("BODYSTRUCTURE"));
    items.extend(bodystructure);
    let read = Response::fetch(7, items);
    assert_eq!(parsed, read);
    assert_eq!(read.to_bytes(), bytes);
}

/// A FETCH with a large literal is written into one buffer of the right size.
#[test]
fn a_large_literal_is_copied_once() {
    let body = vec![b'x'; 1 << 20];
    let r = Response::fetch(
        1,
        vec![
            atom("BODY[]"),
            Value::Literal(body),
            atom("FLAGS"),
            Value::List(vec![atom("\\Seen")]),
            atom("MODSEQ"),
            Value::List(vec![Value::num(6u64)]),
        ],
    );
    let bytes = r.to_bytes();
    assert!(bytes.len() <= r.wire_len() && r.wire_len() < bytes.len() + 128);
    assert!(bytes.starts_with(b"* 1 FETCH (BODY[] {1048576}\r\nxxx"));
    assert!(bytes.ends_with(b"xxx FLAGS (\\Seen) MODSEQ (6))\r\n"));
}

#[test]
fn a_quoted_string_holding_a_line_break_is_written_as_a_literal_with_the_same_octets() {
    // Found by the fuzzer: the parser reads `"\<LF>..."` leniently as a quoted string holding
    // LF, which a quoted string may not carry on the wire; the encoder writes it as a literal.
    let data = b"* \\Sent) \"/ \\Sent) / \\Sent) \"/\" \"\\\n[ pedN[[[[ ms\"";
    let r = response(data).expect("parses");
    let wire = logical(&r);
    assert!(wire.windows(5).any(|w| w == b"{14}\r"), "{wire:?}");
    let Response::Data { rest, .. } = response(&wire).expect("reads back") else {
        panic!("not data");
    };
    assert_eq!(
        rest.last(),
        Some(&Value::Literal(b"\n[ pedN[[[[ ms".to_vec()))
    );
}
