//! THREAD (RFC 5256 §3): the ORDEREDSUBJECT and REFERENCES algorithms over
//! [`SortMessage`]s, and the THREAD response encoding (RFC 5256 §4, `(1 2)(3 (4)(5))`),
//! sans-IO.
//!
//! REFERENCES follows RFC 5256 step by step, with Dovecot's readings where the RFC leaves
//! room (imaptest's expected answers are Dovecot's):
//!
//! 1. Link messages by Message-ID, References (else the first ID of In-Reply-To): each
//!    reference the parent of the next, a message's last reference its parent. A message
//!    without a valid Message-ID, or with one an earlier message has, gets an ID of its own;
//!    an ID no message has is a dummy. A link is made only where the child has no parent
//!    yet and it would not close a loop; for the message's own parent, a parent it had is
//!    dropped first (so a message without references ends up without a parent).
//! 2. The root set: everything without a parent.
//! 3. Dummies go: a message under dummies hangs from its nearest real ancestor, else from
//!    the topmost dummy; a root dummy with no message under it goes, with one it is replaced
//!    by that message.
//! 4. Roots sort by sent date (a dummy by its earliest child), ties by sequence number.
//! 5. Roots with the same non-empty base subject merge (5.B's subject table: a dummy wins
//!    over a message, a message that is no reply over a reply; 5.C's four cases).
//! 6. Siblings sort by sent date, ties by sequence number.
//!
//! The tree is kept in an arena ([`Threads`]) and every walk is a loop, not a recursion: a
//! reply chain thousands of messages deep neither overflows the stack nor drops recursively.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::command::ThreadAlgorithm;
use super::sort::SortMessage;

/// One node of a thread tree: a message (its sequence number or UID) or, only at the top, a
/// dummy standing for a message that is not there and holding two or more threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadNode {
    /// `None` for a dummy.
    pub id: Option<u32>,
    /// Indexes into [`Threads::nodes`], in order.
    pub children: Vec<usize>,
}

/// The threads of a THREAD command: top-level nodes in order, each a tree of [`ThreadNode`]s.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Threads {
    nodes: Vec<ThreadNode>,
    roots: Vec<usize>,
}

impl Threads {
    /// The top-level nodes (indexes into [`Threads::nodes`]), in order.
    pub fn roots(&self) -> &[usize] {
        &self.roots
    }

    /// Every node; those that are no root's descendant are unused.
    pub fn nodes(&self) -> &[ThreadNode] {
        &self.nodes
    }

    /// The threads as RFC 5256 §4 writes them: `(1 2)(3 (4)(5))` (`thread-list`s, one per
    /// top-level node); empty when there are none.
    pub fn encode(&self) -> String {
        enum Step {
            Node(usize),
            Text(&'static str),
        }
        let mut out = String::new();
        let mut stack: Vec<Step> = Vec::new();
        for &root in &self.roots {
            out.push('(');
            stack.push(Step::Node(root));
            while let Some(step) = stack.pop() {
                let n = match step {
                    Step::Text(t) => {
                        out.push_str(t);
                        continue;
                    }
                    Step::Node(n) => &self.nodes[n],
                };
                if let Some(id) = n.id {
                    out.push_str(&id.to_string());
                }
                match n.children.as_slice() {
                    [] => {}
                    // thread-members: one child continues the list.
                    [only] => {
                        stack.push(Step::Node(*only));
                        if n.id.is_some() {
                            stack.push(Step::Text(" "));
                        }
                    }
                    // thread-nested: two or more, each in parentheses.
                    many => {
                        for &c in many.iter().rev() {
                            stack.push(Step::Text(")"));
                            stack.push(Step::Node(c));
                            stack.push(Step::Text("("));
                        }
                        if n.id.is_some() {
                            stack.push(Step::Text(" "));
                        }
                    }
                }
            }
            out.push(')');
        }
        out
    }

    /// `* THREAD (1 2)(3)` (RFC 5256 §4 `thread-data`); `* THREAD` when nothing matched.
    /// `* THREAD ...` as a [`Response`](super::response::Response) for the encoder.
    pub fn to_response(&self) -> super::response::Response {
        use super::response::{Response, Value};
        let rest = if self.roots.is_empty() {
            Vec::new()
        } else {
            vec![Value::Encoded(self.encode().into_bytes())]
        };
        Response::data("THREAD", rest)
    }

    pub fn response(&self) -> String {
        if self.roots.is_empty() {
            "* THREAD".to_string()
        } else {
            format!("* THREAD {}", self.encode())
        }
    }
}

/// Threads `msgs` (the messages the search matched, in any order) by `algorithm`; the
/// nodes name messages by sequence number, or by UID for UID THREAD.
pub fn thread(msgs: &[SortMessage], algorithm: ThreadAlgorithm, uid: bool) -> Threads {
    match algorithm {
        ThreadAlgorithm::OrderedSubject => ordered_subject(msgs, uid),
        ThreadAlgorithm::References => references(msgs, uid),
    }
}

/// Sent date, then sequence number: the order of every sibling list (RFC 5256 §2.2, §3).
fn date_order(a: &SortMessage, b: &SortMessage) -> Ordering {
    (a.sent_date(), a.seq).cmp(&(b.sent_date(), b.seq))
}

/// ORDEREDSUBJECT (RFC 5256 §3): messages sorted by base subject, then sent date; each run
/// of one base subject is a thread whose first message is the parent of the others (which
/// are siblings); threads in the order of their first messages' sent dates.
fn ordered_subject(msgs: &[SortMessage], uid: bool) -> Threads {
    let mut order: Vec<&SortMessage> = msgs.iter().collect();
    order.sort_by(|a, b| {
        a.fields
            .subject
            .cmp(&b.fields.subject)
            .then_with(|| date_order(a, b))
    });
    let mut t = Threads::default();
    // (first message of the thread, its node)
    let mut heads: Vec<(&SortMessage, usize)> = Vec::new();
    for m in order {
        let node = t.nodes.len();
        t.nodes.push(ThreadNode {
            id: Some(m.id(uid)),
            children: Vec::new(),
        });
        match heads.last() {
            Some((head, parent)) if head.fields.subject == m.fields.subject => {
                t.nodes[*parent].children.push(node);
            }
            _ => heads.push((m, node)),
        }
    }
    heads.sort_by(|a, b| date_order(a.0, b.0));
    t.roots = heads.into_iter().map(|(_, n)| n).collect();
    t
}

/// A container of REFERENCES step 1: a message (index into the input) or a dummy.
struct Container {
    msg: Option<usize>,
    parent: Option<usize>,
    /// How many containers have this one as parent: one without children cannot be an
    /// ancestor, so most loop checks end at once.
    children: u32,
}

/// REFERENCES step 1 (see the module docs): the containers, linked by parent.
struct Linker<'a> {
    c: Vec<Container>,
    ids: HashMap<&'a str, usize>,
}

impl<'a> Linker<'a> {
    fn new_container(&mut self, msg: Option<usize>) -> usize {
        self.c.push(Container {
            msg,
            parent: None,
            children: 0,
        });
        self.c.len() - 1
    }

    /// The container of a referenced ID, a new dummy if no message has it yet.
    fn by_id(&mut self, id: &'a str) -> usize {
        if let Some(&c) = self.ids.get(id) {
            return c;
        }
        let c = self.new_container(None);
        self.ids.insert(id, c);
        c
    }

    /// Whether `anc` is `node` or one of its ancestors.
    fn is_ancestor(&self, anc: usize, node: usize) -> bool {
        if anc == node {
            return true;
        }
        if self.c[anc].children == 0 {
            return false;
        }
        let mut n = node;
        while let Some(p) = self.c[n].parent {
            if p == anc {
                return true;
            }
            n = p;
        }
        false
    }

    /// Makes `parent` the parent of `child` unless `child` has a parent already or the
    /// link would close a loop (RFC 5256 §3 REFERENCES 1.A).
    fn link(&mut self, parent: usize, child: usize) {
        if self.c[child].parent.is_some() || self.is_ancestor(child, parent) {
            return;
        }
        self.c[child].parent = Some(parent);
        self.c[parent].children += 1;
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.c[child].parent.take() {
            self.c[p].children -= 1;
        }
    }
}

/// THREAD=REFERENCES (RFC 5256 §3); the steps are in the module docs.
fn references(msgs: &[SortMessage], uid: bool) -> Threads {
    // Step 1, in sequence order: the first message with an ID keeps it.
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by_key(|&i| msgs[i].seq);
    let mut l = Linker {
        c: Vec::with_capacity(msgs.len() * 2),
        ids: HashMap::with_capacity(msgs.len() * 2),
    };
    for &i in &order {
        let f = &msgs[i].fields;
        let own = match f.message_id.as_deref() {
            Some(id) => {
                let c = l.by_id(id);
                if l.c[c].msg.is_none() {
                    l.c[c].msg = Some(i);
                    c
                } else {
                    // A duplicate ID: this message gets one of its own.
                    l.new_container(Some(i))
                }
            }
            None => l.new_container(Some(i)),
        };
        // 1.A: each reference the parent of the next.
        let mut prev: Option<usize> = None;
        for r in &f.references {
            let c = l.by_id(r);
            if let Some(p) = prev {
                l.link(p, c);
            }
            prev = Some(c);
        }
        // 1.B: the last reference is the parent; a parent from before goes first.
        if l.c[own].parent.is_some() && l.c[own].parent != prev {
            l.unlink(own);
        }
        if let Some(p) = prev {
            l.link(p, own);
        }
    }
    let c = l.c;

    // Steps 2 and 3: each message hangs from its nearest real ancestor, else from the top
    // dummy. `top[k]` is where container k's messages go.
    let mut t = Threads::default();
    let mut node_of: Vec<Option<usize>> = vec![None; c.len()];
    for (k, ct) in c.iter().enumerate() {
        if let Some(m) = ct.msg {
            node_of[k] = Some(t.nodes.len());
            t.nodes.push(ThreadNode {
                id: Some(msgs[m].id(uid)),
                children: Vec::new(),
            });
        }
    }
    // Root dummies get a node when the first message arrives under them.
    let mut dummy_node: Vec<Option<usize>> = vec![None; c.len()];
    // The message each node stands for (a dummy: none), to sort by.
    let mut msg_of: Vec<Option<usize>> = t.nodes.iter().map(|_| None).collect();
    for (k, ct) in c.iter().enumerate() {
        if let (Some(m), Some(n)) = (ct.msg, node_of[k]) {
            msg_of[n] = Some(m);
        }
    }
    let mut roots: Vec<usize> = Vec::new();
    for (k, ct) in c.iter().enumerate() {
        let Some(node) = node_of[k] else { continue };
        let Some(mut p) = ct.parent else {
            roots.push(node);
            continue;
        };
        // Up through dummies to a message, or to the top.
        while c[p].msg.is_none() {
            match c[p].parent {
                Some(pp) => p = pp,
                None => break,
            }
        }
        let parent_node = match node_of[p] {
            Some(n) => n,
            None => *dummy_node[p].get_or_insert_with(|| {
                t.nodes.push(ThreadNode {
                    id: None,
                    children: Vec::new(),
                });
                msg_of.push(None);
                roots.push(t.nodes.len() - 1);
                t.nodes.len() - 1
            }),
        };
        t.nodes[parent_node].children.push(node);
    }

    // Sort every node's children (messages only) by date; then a dummy's key is its first.
    // The message a node sorts by: its own, a dummy's first child's.
    fn key(n: usize, nodes: &[ThreadNode], msg_of: &[Option<usize>]) -> Option<usize> {
        match msg_of[n] {
            Some(m) => Some(m),
            None => nodes[n].children.first().and_then(|&c| msg_of[c]),
        }
    }
    for n in 0..t.nodes.len() {
        let mut ch = std::mem::take(&mut t.nodes[n].children);
        ch.sort_by(|&a, &b| cmp_msgs(msgs, msg_of[a], msg_of[b]));
        t.nodes[n].children = ch;
    }
    // Step 3's end: a root dummy with one message is that message.
    for r in roots.iter_mut() {
        if msg_of[*r].is_none() && t.nodes[*r].children.len() == 1 {
            *r = t.nodes[*r].children[0];
        }
    }
    // Step 4.
    roots.sort_by(|&a, &b| cmp_msgs(msgs, key(a, &t.nodes, &msg_of), key(b, &t.nodes, &msg_of)));

    // Step 5.B: the subject table, over the roots in order. Each root remembers the root
    // that took (or kept) its subject's place, so the table's final entry is at the end of
    // that chain (as in Dovecot).
    struct Root {
        node: usize,
        dummy: bool,
        reply: bool,
        next: Option<usize>,
        gone: bool,
    }
    let mut rs: Vec<Root> = roots
        .iter()
        .map(|&n| Root {
            node: n,
            dummy: msg_of[n].is_none(),
            reply: false,
            next: None,
            gone: false,
        })
        .collect();
    let mut table: HashMap<&str, usize> = HashMap::new();
    for i in 0..rs.len() {
        let Some(m) = key(rs[i].node, &t.nodes, &msg_of) else {
            continue;
        };
        let f = &msgs[m].fields;
        if f.subject.is_empty() {
            continue;
        }
        rs[i].reply = f.reply;
        match table.get(f.subject.as_str()) {
            None => {
                table.insert(&f.subject, i);
            }
            Some(&h) => {
                if !rs[h].dummy && (rs[i].dummy || (rs[h].reply && !f.reply)) {
                    rs[h].next = Some(i);
                    table.insert(&f.subject, i);
                } else {
                    rs[i].next = Some(h);
                }
            }
        }
    }
    // Step 5.C: merge each root into its subject's entry.
    let mut i = 0;
    while i < rs.len() {
        if rs[i].next.is_none() || rs[i].gone {
            i += 1;
            continue;
        }
        let mut top = i;
        while let Some(n) = rs[top].next {
            top = n;
        }
        let (cur, entry) = (rs[i].node, rs[top].node);
        if rs[i].dummy && rs[top].dummy {
            // Both dummies: the children of both become siblings.
            let moved = std::mem::take(&mut t.nodes[cur].children);
            t.nodes[entry].children.extend(moved);
            rs[i].gone = true;
        } else if rs[top].dummy || (!rs[i].dummy && rs[i].reply && !rs[top].reply) {
            // Under a dummy, or a reply under what it replies to.
            t.nodes[entry].children.push(cur);
            rs[i].gone = true;
        } else if rs[i].dummy {
            // (Not reached: a dummy takes a message's place in the table.) The message goes
            // under the dummy, which takes its place.
            t.nodes[cur].children.push(entry);
            rs[top].gone = true;
            rs[top].next = Some(i);
            rs[i].next = None;
        } else {
            // Two messages: both under a new dummy, which takes the entry's place.
            t.nodes.push(ThreadNode {
                id: None,
                children: vec![entry, cur],
            });
            msg_of.push(None);
            rs.push(Root {
                node: t.nodes.len() - 1,
                dummy: true,
                reply: false,
                next: None,
                gone: false,
            });
            rs[top].next = Some(rs.len() - 1);
            rs[top].gone = true;
            rs[i].gone = true;
        }
        i += 1;
    }
    // Step 6: siblings by date, then the roots again (a dummy by its first child).
    let mut roots: Vec<usize> = rs.iter().filter(|r| !r.gone).map(|r| r.node).collect();
    for &r in &roots {
        if msg_of[r].is_none() {
            let mut ch = std::mem::take(&mut t.nodes[r].children);
            ch.sort_by(|&a, &b| {
                cmp_msgs(msgs, key(a, &t.nodes, &msg_of), key(b, &t.nodes, &msg_of))
            });
            t.nodes[r].children = ch;
        }
    }
    roots.sort_by(|&a, &b| cmp_msgs(msgs, key(a, &t.nodes, &msg_of), key(b, &t.nodes, &msg_of)));
    t.roots = roots;
    t
}

fn cmp_msgs(msgs: &[SortMessage], a: Option<usize>, b: Option<usize>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => date_order(&msgs[a], &msgs[b]),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages from header texts; message i has sequence number i+1, UID i+101 and
    /// INTERNALDATE 1000 + i (the sent date where there is no Date field).
    fn msgs(headers: &[&str]) -> Vec<SortMessage> {
        headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = h.replace('|', "\r\n");
                SortMessage::new(
                    h.as_bytes(),
                    i as u32 + 1,
                    i as u32 + 101,
                    1000 + i as i64,
                    10,
                )
            })
            .collect()
    }

    fn refs(headers: &[&str]) -> String {
        thread(&msgs(headers), ThreadAlgorithm::References, false).encode()
    }

    #[test]
    fn encoding() {
        // RFC 5256 §4's example: (2)(3 6 (4 23)(44 7 96)).
        let n = |id: u32, children: Vec<usize>| ThreadNode {
            id: Some(id),
            children,
        };
        let t = Threads {
            nodes: vec![
                n(2, vec![]),     // 0
                n(3, vec![2]),    // 1
                n(6, vec![3, 5]), // 2
                n(4, vec![4]),    // 3
                n(23, vec![]),    // 4
                n(44, vec![6]),   // 5
                n(7, vec![7]),    // 6
                n(96, vec![]),    // 7
            ],
            roots: vec![0, 1],
        };
        assert_eq!(t.encode(), "(2)(3 6 (4 23)(44 7 96))");
        assert_eq!(t.response(), "* THREAD (2)(3 6 (4 23)(44 7 96))");
        assert_eq!(Threads::default().response(), "* THREAD");
        // A dummy at the top: ((1)(2)).
        let t = Threads {
            nodes: vec![
                ThreadNode {
                    id: None,
                    children: vec![1, 2],
                },
                n(1, vec![]),
                n(2, vec![3]),
                n(3, vec![]),
            ],
            roots: vec![0],
        };
        assert_eq!(t.encode(), "((1)(2 3))");
    }

    #[test]
    fn references_links() {
        for (name, headers, want) in [
            (
                "chain and branches",
                &[
                    "Message-ID: <a@x>",
                    "Message-ID: <b@x>|References: <a@x>",
                    "Message-ID: <c@x>|References: <a@x> <b@x>",
                    "Message-ID: <d@x>|In-Reply-To: <a@x>",
                ][..],
                "(1 (2 3)(4))",
            ),
            (
                "a missing parent of two: a dummy at the top",
                &["References: <x@x>", "Message-ID: <c@x>|References: <x@x>"],
                "((1)(2))",
            ),
            (
                "a missing parent of one: promoted",
                &["Message-ID: <b@x>|References: <x@x>"],
                "(1)",
            ),
            (
                "a dummy between messages goes",
                &[
                    "Message-ID: <a@x>",
                    "Message-ID: <c@x>|References: <a@x> <gone@x>",
                ],
                "(1 2)",
            ),
            (
                "a truncated References is completed by a later message",
                &[
                    "Message-ID: <a@x>",
                    "Message-ID: <c@x>|References: <b@x>",
                    "Message-ID: <b@x>|References: <a@x>",
                ],
                "(1 3 2)",
            ),
            (
                "a loop is not closed",
                &[
                    "Message-ID: <a@x>|References: <b@x>",
                    "Message-ID: <b@x>|References: <a@x>",
                ],
                "(2 1)",
            ),
            (
                "a message referring to itself",
                &["Message-ID: <a@x>|References: <a@x>"],
                "(1)",
            ),
            (
                "the own parent replaces one from references (1.B)",
                &[
                    "Message-ID: <a@x>",
                    "Message-ID: <b@x>",
                    "Message-ID: <m@x>|References: <a@x> <c@x>",
                    "Message-ID: <c@x>|References: <b@x>",
                ],
                "(1)(2 4 3)",
            ),
            (
                "an earlier link is kept (1.A)",
                &[
                    "Message-ID: <a@x>",
                    "Message-ID: <b@x>",
                    "Message-ID: <m@x>|References: <a@x> <c@x>",
                    "Message-ID: <n@x>|References: <b@x> <c@x>",
                ],
                "(1 (3)(4))(2)",
            ),
            (
                "duplicate IDs: the first keeps it",
                &[
                    "Message-ID: <a@x>",
                    "Message-ID: <a@x>",
                    "Message-ID: <r@x>|References: <a@x>",
                ],
                "(1 3)(2)",
            ),
            (
                "IDs are case-sensitive",
                &["Message-ID: <a@x>", "Message-ID: <b@x>|References: <A@x>"],
                "(1)(2)",
            ),
        ] {
            assert_eq!(refs(headers), want, "{name}");
        }
    }

    #[test]
    fn references_dates() {
        // Roots and siblings by sent date (Date, else INTERNALDATE), then sequence number;
        // a dummy by its earliest child.
        for (name, headers, want) in [
            (
                "roots",
                &[
                    "Message-ID: <a@x>|Date: Fri, 22 Feb 2008 02:00:00 +0000",
                    "Message-ID: <b@x>|Date: Fri, 22 Feb 2008 01:00:00 +0000",
                ][..],
                "(2)(1)",
            ),
            (
                "siblings",
                &[
                    "Message-ID: <a@x>",
                    "References: <a@x>|Date: Fri, 22 Feb 2008 03:00:00 +0000",
                    "References: <a@x>|Date: Fri, 22 Feb 2008 02:00:00 +0000",
                    "References: <a@x>|Date: Fri, 22 Feb 2008 02:00:00 +0000",
                ],
                "(1 (3)(4)(2))",
            ),
            (
                "a dummy sorts by its earliest child",
                &[
                    "Message-ID: <a@x>|Date: Fri, 22 Feb 2008 02:00:00 +0000",
                    "References: <x@x>|Date: Fri, 22 Feb 2008 03:00:00 +0000",
                    "References: <x@x>|Date: Fri, 22 Feb 2008 01:00:00 +0000",
                ],
                "((3)(2))(1)",
            ),
            (
                "dates are compared in UTC",
                &[
                    "Message-ID: <a@x>|Date: Fri, 22 Feb 2008 02:00:00 +0200",
                    "Message-ID: <b@x>|Date: Fri, 22 Feb 2008 01:00:00 +0000",
                ],
                "(1)(2)",
            ),
        ] {
            assert_eq!(refs(headers), want, "{name}");
        }
    }

    #[test]
    fn references_subjects() {
        // Step 5.
        for (name, headers, want) in [
            (
                "a reply joins what it replies to",
                &[
                    "Message-ID: <a@x>|Subject: x",
                    "Message-ID: <b@x>|Subject: Re: x|References: <gone@x>",
                ][..],
                "(1 2)",
            ),
            (
                "the original takes the reply's place",
                &["Subject: Re: x", "Subject: x"],
                "(2 1)",
            ),
            (
                "two originals go under a dummy",
                &["Subject: x", "Subject: X"],
                "((1)(2))",
            ),
            (
                "two replies go under a dummy",
                &["Subject: Re: x", "Subject: Fwd: x"],
                "((1)(2))",
            ),
            (
                "a third joins the dummy",
                &["Subject: x", "Subject: x", "Subject: x"],
                "((1)(2)(3))",
            ),
            (
                "a message joins a dummy of that subject",
                &[
                    "Subject: y|References: <d@x>",
                    "Subject: y|References: <d@x>",
                    "Subject: Re: y",
                ],
                "((1)(2)(3))",
            ),
            (
                "two dummies of one subject merge",
                &[
                    "Subject: s|References: <d@x>",
                    "Subject: s|References: <d@x>",
                    "Subject: s|References: <e@x>",
                    "Subject: s|References: <e@x>",
                ],
                "((1)(2)(3)(4))",
            ),
            (
                "empty subjects stay apart",
                &["Subject:", "Subject: (fwd)", "Subject: Re:"],
                "(1)(2)(3)",
            ),
            (
                "only roots merge",
                &[
                    "Message-ID: <a@x>|Subject: x",
                    "Message-ID: <b@x>|Subject: other|References: <a@x>",
                    "Subject: other",
                ],
                "(1 2)(3)",
            ),
        ] {
            assert_eq!(refs(headers), want, "{name}");
        }
    }

    #[test]
    fn ordered_subject() {
        let m = msgs(&[
            "Subject: b|Date: Fri, 22 Feb 2008 02:00:00 +0000",
            "Subject: Re: a|Date: Fri, 22 Feb 2008 03:00:00 +0000",
            "Subject: A|Date: Fri, 22 Feb 2008 04:00:00 +0000",
            "Subject: B|Date: Fri, 22 Feb 2008 01:00:00 +0000",
            "Subject: [list] b",
            "",
        ]);
        // 5 and 6 have no Date: their INTERNALDATE (1970) makes them the earliest.
        let t = thread(&m, ThreadAlgorithm::OrderedSubject, false);
        assert_eq!(t.encode(), "(5 (4)(1))(6)(2 3)");
        let t = thread(&m, ThreadAlgorithm::OrderedSubject, true);
        assert_eq!(t.encode(), "(105 (104)(101))(106)(102 103)");
        assert_eq!(
            thread(&[], ThreadAlgorithm::OrderedSubject, false).response(),
            "* THREAD"
        );
    }

    #[test]
    fn uid_thread_and_input_order() {
        let mut m = msgs(&[
            "Message-ID: <a@x>",
            "Message-ID: <b@x>|References: <a@x>",
            "Message-ID: <a@x>",
        ]);
        assert_eq!(
            thread(&m, ThreadAlgorithm::References, true).encode(),
            "(101 102)(103)"
        );
        // Step 1 goes by sequence number whatever the input order.
        m.reverse();
        assert_eq!(
            thread(&m, ThreadAlgorithm::References, false).encode(),
            "(1 2)(3)"
        );
    }

    #[test]
    fn deep_threads_need_no_deep_stack() {
        // A reply chain 50,000 messages deep, and one where every message has two replies
        // (so the encoding nests 25,000 deep): built, encoded and dropped without recursion.
        let n = 50_000u32;
        let chain: Vec<SortMessage> = (1..=n)
            .map(|i| {
                let h = format!("Message-ID: <{i}@x>\r\nReferences: <{}@x>\r\n\r\n", i - 1);
                SortMessage::new(h.as_bytes(), i, i, 0, 1)
            })
            .collect();
        let t = thread(&chain, ThreadAlgorithm::References, false);
        let want: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        assert_eq!(t.encode(), format!("({})", want.join(" ")));
        let forked: Vec<SortMessage> = (1..=n)
            .map(|i| {
                let h = format!("Message-ID: <{i}@x>\r\nReferences: <{}@x>\r\n\r\n", i / 2);
                SortMessage::new(h.as_bytes(), i, i, 0, 1)
            })
            .collect();
        let enc = thread(&forked, ThreadAlgorithm::References, false).encode();
        assert!(enc.starts_with("(1 (2 (4 (8 (16 "), "{}", &enc[..40]);
        assert_eq!(enc.matches('(').count(), enc.matches(')').count());
    }

    #[test]
    fn long_references_lists_stay_fast() {
        // 1,000 messages, each naming every earlier one: half a million references, each
        // checked for loops.
        let mut refs = String::new();
        let m: Vec<SortMessage> = (1..=1000u32)
            .map(|i| {
                let h = format!("Message-ID: <{i}@x>\r\nReferences:{refs}\r\n\r\n");
                refs.push_str(&format!(" <{i}@x>"));
                SortMessage::new(h.as_bytes(), i, i, 0, 1)
            })
            .collect();
        let start = std::time::Instant::now();
        let enc = thread(&m, ThreadAlgorithm::References, false).encode();
        assert!(enc.starts_with("(1 2 3 4 5 "));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
