//! SORT and THREAD (`imap::sort`, `imap::thread`) on arbitrary header sections. Input: a
//! first line, parsed by `imap::parse_command` (a SORT or THREAD command gives the sort
//! program and the algorithm; anything else leaves the defaults), then messages separated
//! by NUL octets, each a header section (whatever its octets). Checks:
//! - never panics;
//! - SORT returns every message exactly once, the same twice, and in sequence order for an
//!   empty program; ESORT's PARTIAL answer lies within the result;
//! - both THREAD algorithms put every message in the tree exactly once (no cycle, nothing
//!   lost or doubled), dummies only at the top with two or more children, and the encoding
//!   names each message once with balanced parentheses;
//! - `SortFields` read back from their stored form are the same; stored forms made of
//!   arbitrary octets are refused or read, never a panic.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use mailroom_proto::imap::sort::{esort_response, sort, SortFields, SortMessage};
use mailroom_proto::imap::thread::{thread, Threads};
use mailroom_proto::imap::{
    parse_command, CommandBody, PartialRange, SearchReturn, SortCriterion, SortKey,
    ThreadAlgorithm,
};

const MAX_MESSAGES: usize = 64;

fn check_threads(t: &Threads, ids: &HashSet<u32>) {
    let nodes = t.nodes();
    let mut seen_nodes = HashSet::new();
    let mut seen_ids = HashSet::new();
    let mut stack: Vec<(usize, bool)> = t.roots().iter().map(|&r| (r, true)).collect();
    while let Some((n, top)) = stack.pop() {
        assert!(seen_nodes.insert(n), "node {n} reached twice: {t:?}");
        let node = &nodes[n];
        match node.id {
            Some(id) => assert!(seen_ids.insert(id), "id {id} twice: {t:?}"),
            None => {
                assert!(top, "a dummy below the top: {t:?}");
                assert!(node.children.len() >= 2, "a dummy with <2 children: {t:?}");
            }
        }
        stack.extend(node.children.iter().map(|&c| (c, false)));
    }
    assert_eq!(&seen_ids, ids, "threads lost or invented messages: {t:?}");
    let enc = t.encode();
    let mut depth = 0i64;
    for c in enc.bytes() {
        match c {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                assert!(depth >= 0, "{enc}");
            }
            _ => {}
        }
    }
    assert_eq!(depth, 0, "{enc}");
    let named: Vec<u32> = enc
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("a number"))
        .collect();
    assert_eq!(named.len(), ids.len(), "{enc}");
    assert_eq!(named.iter().copied().collect::<HashSet<_>>(), *ids, "{enc}");
}

fuzz_target!(|data: &[u8]| {
    let (first, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut criteria = vec![
        SortCriterion {
            reverse: false,
            key: SortKey::Subject,
        },
        SortCriterion {
            reverse: true,
            key: SortKey::Date,
        },
    ];
    let mut algorithm = ThreadAlgorithm::References;
    let mut ret = SearchReturn {
        min: true,
        max: true,
        count: true,
        all: true,
        partial: Some(PartialRange::Last(2, 5)),
        ..SearchReturn::default()
    };
    if let Ok(cmd) = parse_command(first) {
        match cmd.body {
            CommandBody::Sort(s) => {
                criteria = s.criteria;
                ret = s.ret.unwrap_or(ret);
            }
            CommandBody::Thread(t) => algorithm = t.algorithm,
            _ => {}
        }
    }
    // The stored form of arbitrary octets: refused or read, never a panic.
    let _ = SortFields::from_bytes(first);

    let msgs: Vec<SortMessage> = rest
        .split(|&b| b == 0)
        .take(MAX_MESSAGES)
        .enumerate()
        .map(|(i, h)| {
            let seq = i as u32 + 1;
            // Few distinct INTERNALDATEs and sizes, so ties happen.
            let date = i64::from(h.first().copied().unwrap_or(0) % 4);
            SortMessage::new(h, seq, seq * 3, date, (h.len() % 5) as u64)
        })
        .collect();
    for m in &msgs {
        let f: &SortFields = &m.fields;
        assert_eq!(SortFields::from_bytes(&f.to_bytes()).as_ref(), Some(f));
    }
    let seqs: HashSet<u32> = msgs.iter().map(|m| m.seq).collect();
    let uids: HashSet<u32> = msgs.iter().map(|m| m.uid).collect();

    let sorted = sort(&msgs, &criteria, false);
    assert_eq!(sorted.len(), msgs.len());
    assert_eq!(sorted.iter().copied().collect::<HashSet<_>>(), seqs);
    assert_eq!(sort(&msgs, &criteria, false), sorted, "not deterministic");
    let by_uid = sort(&msgs, &criteria, true);
    assert_eq!(
        by_uid,
        sorted.iter().map(|s| s * 3).collect::<Vec<_>>(),
        "UID SORT orders differently"
    );
    let plain = sort(&msgs, &[], false);
    assert!(plain.windows(2).all(|w| w[0] < w[1]), "{plain:?}");
    let line = esort_response("t", false, &ret, &sorted);
    assert!(!line.contains('\r') && !line.contains('\n'), "{line}");
    if let Some(p) = ret.partial {
        let part = p.slice(&sorted);
        assert!(part.len() <= sorted.len());
    }

    for alg in [algorithm, ThreadAlgorithm::OrderedSubject] {
        check_threads(&thread(&msgs, alg, false), &seqs);
        check_threads(&thread(&msgs, alg, true), &uids);
    }
});
