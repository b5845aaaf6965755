//! FETCH BODY[section]<partial> on arbitrary messages (`imap::mime`): the lookups behind
//! BODY[], BODY[1.2], BODY[1.2.HEADER], BODY[TEXT], BODY[2.MIME], HEADER.FIELDS (...) and
//! partial ranges. Input: an optional first line `tag FETCH set (items)` (parsed by
//! `imap::parse_command`) adds its sections and partial ranges; the rest is the message.
//! Every part of the parsed tree is also asked for each kind of section. Checks:
//! - never panics;
//! - every part's header and body ranges lie within the message, the body right after the
//!   header, children and embedded messages inside their parent's body, in order;
//! - BODY[n] and BODY[n.MIME] are the octets of those ranges (checked in bounds, not clamped);
//!   HEADER then TEXT is the whole message, or the whole body of a message/rfc822 part;
//! - HEADER.FIELDS (f) and HEADER.FIELDS.NOT (f) share the header's fields between them;
//! - a part that does not exist gives `None` (NIL);
//! - a partial range lies within the section and holds at most the count asked for.
#![no_main]

use std::ops::Range;

use libfuzzer_sys::fuzz_target;
use mailroom_proto::imap::mime::{fields, partial_range, Mime, Part};
use mailroom_proto::imap::{parse_command, CommandBody, FetchAtt, Section, SectionText};

const MAX_PATHS: usize = 64;
const MAX_DEPTH: usize = 4;

fn bytes<'a>(data: &'a [u8], r: &Range<usize>) -> &'a [u8] {
    data.get(r.clone())
        .unwrap_or_else(|| panic!("range {r:?} outside a message of {} octets", data.len()))
}

fn check_tree(p: &Part, within: &Range<usize>) {
    assert!(p.header.start <= p.header.end, "{p:?}");
    assert_eq!(p.header.end, p.body.start, "{p:?}");
    assert!(p.body.start <= p.body.end, "{p:?}");
    assert!(
        within.start <= p.header.start && p.body.end <= within.end,
        "{p:?} in {within:?}"
    );
    let mut at = p.body.start;
    for c in &p.children {
        assert!(at <= c.header.start, "children overlap: {:?}", p.children);
        check_tree(c, &p.body);
        at = c.body.end;
    }
    if let Some(m) = &p.message {
        assert_eq!(m.header.start, p.body.start);
        assert_eq!(m.body.end, p.body.end);
        check_tree(m, &p.body);
    }
}

fn section(part: &[u32], text: Option<SectionText>) -> Section {
    Section {
        part: part.to_vec(),
        text,
    }
}

/// Paths to every part, breadth first, as far as `Mime::part` resolves them.
fn paths(mime: &Mime, data: &[u8]) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new()];
    let mut i = 0;
    while i < out.len() && out.len() < MAX_PATHS {
        let path = out[i].clone();
        i += 1;
        if path.len() >= MAX_DEPTH {
            continue;
        }
        let p = mime.part(&path).expect("listed paths exist");
        let n = p
            .children
            .len()
            .max(p.message.as_ref().map_or(0, |m| m.children.len()))
            .max(1);
        for k in 1..=n as u32 + 1 {
            let mut child = path.clone();
            child.push(k);
            if mime.part(&child).is_some() {
                if out.len() < MAX_PATHS {
                    out.push(child);
                }
            } else {
                assert_eq!(mime.section(data, &section(&child, None)), None);
            }
        }
    }
    out
}

fn check_partials(b: &[u8], partials: &[(u32, u32)]) {
    for &(o, n) in partials {
        let r = partial_range(b.len(), Some((o, n)));
        assert!(r.start <= r.end && r.end <= b.len(), "{r:?} of {}", b.len());
        assert!(r.len() <= n as usize);
        if (o as usize) < b.len() {
            assert_eq!(r.start, o as usize);
            assert_eq!(r.len(), (n as usize).min(b.len() - o as usize));
        } else {
            assert!(r.is_empty());
        }
    }
    assert_eq!(partial_range(b.len(), None), 0..b.len());
}

fuzz_target!(|data: &[u8]| {
    let mut asked: Vec<(Section, Option<(u32, u32)>)> = Vec::new();
    let mut message = data;
    if let Some(nl) = data.iter().position(|&b| b == b'\n') {
        let line = &data[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Ok(cmd) = parse_command(line) {
            if let CommandBody::Fetch { items, .. } = cmd.body {
                message = &data[nl + 1..];
                for item in items {
                    if let FetchAtt::BodySection {
                        section, partial, ..
                    } = item
                    {
                        asked.push((section, partial));
                    }
                }
            }
        }
    }
    let data = message;
    let mime = Mime::parse(data);
    let root = &mime.root;
    check_tree(root, &(0..data.len()));
    assert_eq!(root.header.start, 0);
    assert_eq!(root.body.end, data.len());
    for rendered in [&mime.envelope, &mime.body, &mime.bodystructure] {
        assert!(rendered.starts_with(b"(") && rendered.ends_with(b")"));
    }

    let mut partials = vec![(0, 0), (0, 1), (1, u32::MAX), (u32::MAX, u32::MAX)];
    partials.push(((data.len() / 2) as u32, 7));
    partials.extend(asked.iter().filter_map(|(_, p)| *p));

    // The header's own field names, and those the command asked for.
    let mut names: Vec<String> = fields(data, &root.header)
        .into_iter()
        .take(3)
        .map(|(n, _)| n)
        .collect();
    for (s, _) in &asked {
        if let Some(SectionText::HeaderFields(f) | SectionText::HeaderFieldsNot(f)) = &s.text {
            names.extend(f.iter().cloned());
        }
    }

    let whole = mime.section(data, &section(&[], None)).expect("BODY[]");
    assert_eq!(whole, data);
    let get = |path: &[u32], text: Option<SectionText>| {
        let s = section(path, text);
        let b = mime.section(data, &s);
        if let Some(b) = &b {
            check_partials(b, &partials);
        }
        b
    };

    for path in paths(&mime, data) {
        let part = mime.part(&path).expect("listed");
        let header = get(&path, Some(SectionText::Header)).expect("exists");
        let text = get(&path, Some(SectionText::Text)).expect("exists");
        // The message that HEADER and TEXT are about: the whole one, or an embedded one.
        let msg = if path.is_empty() {
            Some(part)
        } else {
            part.message.as_deref()
        };
        let body = if path.is_empty() {
            whole.clone()
        } else {
            let body = get(&path, None).expect("exists");
            assert_eq!(body, bytes(data, &part.body));
            let mime_hdr = get(&path, Some(SectionText::Mime)).expect("exists");
            assert_eq!(mime_hdr, bytes(data, &part.header));
            body
        };
        match msg {
            Some(m) => {
                assert_eq!(header, bytes(data, &m.header));
                assert_eq!(text, bytes(data, &m.body));
                assert_eq!([header, text].concat(), body, "HEADER + TEXT of {path:?}");
            }
            None => assert!(header.is_empty() && text.is_empty()),
        }

        // HEADER.FIELDS of a part that is no message is empty, like its HEADER.
        let all = get(&path, Some(SectionText::HeaderFieldsNot(Vec::new()))).expect("exists");
        assert_eq!(all.ends_with(b"\r\n"), msg.is_some());
        for k in 0..=names.len() {
            let f = names[..k].to_vec();
            let only = get(&path, Some(SectionText::HeaderFields(f.clone()))).expect("exists");
            let not = get(&path, Some(SectionText::HeaderFieldsNot(f))).expect("exists");
            if msg.is_some() {
                assert!(only.ends_with(b"\r\n") && not.ends_with(b"\r\n"));
                assert_eq!(only.len() + not.len(), all.len() + 2, "{path:?} {names:?}");
            } else {
                assert!(only.is_empty() && not.is_empty());
            }
        }
    }

    // The sections the command asked for, as the server answers them.
    for (s, partial) in &asked {
        match mime.section(data, s) {
            Some(b) => {
                let r = partial_range(b.len(), *partial);
                assert!(r.end <= b.len());
            }
            None => assert!(mime.part(&s.part).is_none()),
        }
    }
});
