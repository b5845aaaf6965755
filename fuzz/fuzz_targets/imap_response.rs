//! IMAP responses in both directions (`mailroom_proto::imap::response`: the server's encoder,
//! the client's parser). Each input is used twice.
//!
//! As a logical response line (literals included) from a server: the parser never panics, a
//! FETCH response it accepts yields its data items (`mailroom_client::imap::fetched`), and
//! parse -> encode -> parse gives the same response (when no control characters or NUL in a
//! quoted string are involved, which the encoder replaces or writes as a literal; what it then
//! writes reads back, and is stable from there).
//!
//! As a response to build (the input drives a small generator of responses the server could
//! send: statuses with codes, numbered and other data with atoms, quoted strings, literals,
//! literal8, NIL and lists, continuations): encode -> parse -> equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_client::imap::{fetched, parse};
use mailroom_proto::imap::response::{Response, Status, StatusText, Value};

/// The logical line the parser takes: the wire form without its final CRLF.
fn logical(r: &Response) -> Vec<u8> {
    let wire = r.to_bytes();
    assert!(wire.ends_with(b"\r\n"), "{wire:?}");
    wire[..wire.len() - 2].to_vec()
}

fn controls(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// No text the encoder would change: control characters; CR, LF or NUL in a quoted string
/// (written as a literal, which reads back as one).
fn value_is_clean(v: &Value) -> bool {
    match v {
        Value::Atom(a) => !controls(a),
        Value::Quoted(q) => !q.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
        Value::List(items) => items.iter().all(value_is_clean),
        Value::Literal(_) | Value::Literal8(_) | Value::Nil => true,
        // Pre-encoded octets are the builder's; the parser never produces them.
        Value::Encoded(_) => false,
    }
}

fn status_is_clean(s: &StatusText) -> bool {
    !controls(&s.text) && !s.code.as_deref().is_some_and(controls)
}

fn is_clean(r: &Response) -> bool {
    match r {
        Response::Tagged { tag, status } => !controls(tag) && status_is_clean(status),
        Response::UntaggedStatus(s) => status_is_clean(s),
        Response::Numbered { keyword, rest, .. } | Response::Data { keyword, rest } => {
            !controls(keyword) && rest.iter().all(value_is_clean)
        }
        Response::Continue(text) => !controls(text),
    }
}

fn parse_then_encode(data: &[u8]) {
    let _ = parse::trailing_literal(data);
    let _ = parse::values(data);
    let _ = parse::split_words(&String::from_utf8_lossy(data));
    let Ok(r) = parse::response(data) else {
        return;
    };
    if let Response::Numbered { n, keyword, rest } = &r {
        if keyword == "FETCH" {
            let _ = fetched(*n, rest);
        }
    }
    let wire = logical(&r);
    if is_clean(&r) {
        assert_eq!(parse::response(&wire).as_ref(), Ok(&r), "{wire:?}");
    } else if let Ok(again) = parse::response(&wire) {
        // The encoder's replacements can change how the line splits into values; what it
        // wrote reads back, and that reads back as itself once it is clean.
        if is_clean(&again) {
            let wire = logical(&again);
            assert_eq!(parse::response(&wire).as_ref(), Ok(&again), "{wire:?}");
        }
    }
}

/// Reads the input as a recipe for a response.
struct Gen<'a> {
    data: &'a [u8],
}

impl Gen<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// Up to `max` octets.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = usize::from(self.byte()) % (max + 1);
        let n = n.min(self.data.len());
        let (taken, rest) = self.data.split_at(n);
        self.data = rest;
        taken.to_vec()
    }

    /// Text without control characters (the encoder's job is tested elsewhere).
    fn text(&mut self, max: usize) -> String {
        String::from_utf8_lossy(&self.bytes(max))
            .chars()
            .filter(|c| !c.is_control())
            .collect()
    }

    fn word(&mut self, alphabet: &[u8], max: usize) -> String {
        let n = 1 + usize::from(self.byte()) % max;
        (0..n)
            .map(|_| char::from(alphabet[usize::from(self.byte()) % alphabet.len()]))
            .collect()
    }

    fn atom(&mut self) -> String {
        // Section names, and a '[' where it opens none (a keyword, an astring name).
        const BRACKETS: [&str; 6] = [
            "BODY[]",
            "BODY[HEADER.FIELDS (FROM TO)]",
            "BODY[1.2.MIME]<0>",
            "BINARY[1]",
            "BINARY.SIZE[2]",
            "x[y",
        ];
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz0123456789\\.*:<>-+_/%&=]";
        match self.byte() % 4 {
            0 => BRACKETS[usize::from(self.byte()) % BRACKETS.len()].to_string(),
            1 => (u64::from(self.byte()) * 1_000_003).to_string(),
            _ => {
                let mut a = self.word(ALPHABET, 12);
                if a.eq_ignore_ascii_case("NIL") {
                    a.insert(0, 'X');
                }
                a
            }
        }
    }

    fn value(&mut self, depth: usize) -> Value {
        match self.byte() % if depth > 4 { 5 } else { 6 } {
            0 => Value::Atom(self.atom()),
            1 => {
                let mut q = self.bytes(40);
                q.retain(|&b| !matches!(b, b'\r' | b'\n' | 0));
                Value::Quoted(q)
            }
            2 => Value::Literal(self.bytes(64)),
            3 => Value::Literal8(self.bytes(16)),
            4 => Value::Nil,
            _ => {
                let n = usize::from(self.byte()) % 5;
                Value::List((0..n).map(|_| self.value(depth + 1)).collect())
            }
        }
    }

    fn values(&mut self) -> Vec<Value> {
        let n = usize::from(self.byte()) % 6;
        (0..n).map(|_| self.value(0)).collect()
    }

    fn status_text(&mut self, statuses: &[Status]) -> StatusText {
        let status = statuses[usize::from(self.byte()) % statuses.len()];
        let code = (self.byte() % 2 == 0).then(|| {
            let mut c = self.text(30);
            c.retain(|ch| ch != ']');
            c
        });
        let mut text = self.text(60);
        if code.is_some() {
            // After a code the parser skips the spaces before the text.
            text = text.trim_start().to_string();
        } else if text.starts_with('[') {
            text.insert(0, 'x');
        }
        StatusText { status, code, text }
    }

    fn response(&mut self) -> Response {
        const ALL: [Status; 5] = [
            Status::Ok,
            Status::No,
            Status::Bad,
            Status::Bye,
            Status::PreAuth,
        ];
        const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ.-";
        match self.byte() % 5 {
            0 => Response::Tagged {
                tag: self.word(b"abcxyz0123456789.ABC", 8),
                status: self.status_text(&ALL[..3]),
            },
            1 => Response::UntaggedStatus(self.status_text(&ALL)),
            2 => Response::Numbered {
                n: u32::from_le_bytes([self.byte(), self.byte(), self.byte(), 0]),
                keyword: self.word(UPPER, 10),
                rest: self.values(),
            },
            3 => {
                let mut keyword = self.word(UPPER, 10);
                if ALL.iter().any(|s| s.as_str() == keyword) {
                    keyword.push('X');
                }
                Response::Data {
                    keyword,
                    rest: self.values(),
                }
            }
            _ => Response::Continue(self.text(60)),
        }
    }
}

fn encode_then_parse(data: &[u8]) {
    let built = Gen { data }.response();
    let wire = logical(&built);
    assert_eq!(parse::response(&wire).as_ref(), Ok(&built), "{wire:?}");
}

fuzz_target!(|data: &[u8]| {
    parse_then_encode(data);
    encode_then_parse(data);
});
