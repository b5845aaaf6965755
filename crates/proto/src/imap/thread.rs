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
