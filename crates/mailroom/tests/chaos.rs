//! Chaos: mixed load, SIGKILL at a random moment, restart, and a verifier that holds the
//! store to every acknowledgement (reliability issue: "nothing acknowledged may ever be
//! lost").
//!
//! Server A (a.test: alice, carol) runs with a peer B (b.test: bob) that A reaches through a
//! static route. Each round, a Python load generator (`chaos/load.py`: smtplib, imaplib,
//! poplib in threads) sends SMTP to A's local users, submits mail for bob@b.test (through
//! A's queue to B), APPENDs, flags and expunges over IMAP, and RETRs/DELEs over POP3, writing
//! a journal of every operation before it is sent and of every acknowledgement. At a random
//! moment A is killed with SIGKILL; then the test checks, from the stores themselves:
//! - every message that got `250` / `OK` is in A exactly once, unless an acknowledged
//!   `UID EXPUNGE` or POP3 `QUIT` removed it; nothing refused is there; nothing is there
//!   twice; an operation whose answer never came happened at most once;
//! - every acknowledged `STORE +FLAGS (\Flagged)` stays (while the message is there);
//! - every acknowledged expunge and DELE stays done, round after round;
//! - every submitted message is at B or still queued at A, never lost and never twice at B
//!   (except a message whose delivery to B was in flight at the kill: B may have said 250
//!   before A could record it, the duplicate that RFC 5321 §6.1 accepts; the test takes the
//!   claimed recipients from A's store right after the kill and allows exactly those);
//! - at the end, with B up, every submitted message reaches B;
//! - `mailroom check` finds no fault, on the killed server's files and on the running ones.
//!
//! The rounds and the moments of the kills come from a seeded RNG; the seed is printed.
//! CI runs 3 rounds (about 20 s). A longer run by hand:
//!
//! ```text
//! MAILROOM_CHAOS_ROUNDS=40 MAILROOM_CHAOS_SEED=7 \
//!     cargo test --release -p mailroom --test chaos -- --nocapture
//! ```
//!
//! The summary line (`chaos: ... lost 0, duplicated 0`) says what was verified.

mod support;
use support::*;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::peers::{self, ALICE_A, BOB_B, CAROL_A};

/// splitmix64: a small seeded RNG, so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
}

/// A (a.test: alice, carol) with every listener, routing b.test to B on `b_port` and
/// retrying soon.
fn server_a(b_port: u16) -> TestServer {
    peers::server_a()
        .listen(&["smtp", "submission", "pop3", "imap"])
        .route("b.test", b_port)
        .table("queue", "retry = [\"1s\"]\nconnect_timeout = \"2s\"")
        .start()
}

/// B (b.test: bob) with SMTP on `port`.
fn server_b(port: u16) -> TestServer {
    peers::server_b().listen_on("smtp", port).start()
}

/// One journal line of the load generator.
#[derive(Debug, Clone)]
struct Op {
    op: String,
    state: String,
    round: u32,
    ids: Vec<String>,
}

fn read_journal(path: &Path) -> Vec<Op> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            // A line cut short (the generator killed mid-write) has fewer fields: skipped.
            if f.len() < 6 {
                return None;
            }
            Some(Op {
                op: f[0].to_string(),
                state: f[1].to_string(),
                round: f[2].parse().ok()?,
                ids: f[3]
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            })
        })
        .collect()
}

/// The X-Chaos-Id of a message, from its header section only (a bounce quotes the
/// original's header in its body).
fn chaos_id(head: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let header = text.split("\r\n\r\n").next().unwrap_or("");
    header
        .lines()
        .find_map(|l| l.strip_prefix("X-Chaos-Id: ").map(|s| s.trim().to_string()))
}

/// A store as the verifier sees it, read with SQLite directly, read-only, in one snapshot.
#[derive(Default, Debug)]
struct Seen {
    /// id -> how many mailbox entries hold it.
    count: HashMap<String, usize>,
    /// ids with \Flagged.
    flagged: HashSet<String>,
    /// Mailbox entries without an X-Chaos-Id (a bounce, say).
    foreign: Vec<String>,
    /// Queue: id -> (has a pending recipient, has a claimed recipient).
    queued: HashMap<String, (bool, bool)>,
}

fn read_store(data_dir: &Path) -> Seen {
    use rusqlite::{Connection, OpenFlags};
    let c = Connection::open_with_flags(
        data_dir.join("mailroom.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the store read-only");
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.execute_batch("BEGIN").unwrap();
    let mut seen = Seen::default();
    let mut st = c
        .prepare(
            "SELECT a.address, m.name, mm.uid, mm.flags, substr(g.data, 1, 8192)
               FROM mailbox_messages mm
               JOIN mailboxes m ON m.id = mm.mailbox_id
               JOIN accounts a ON a.id = m.account_id
               JOIN messages g ON g.id = mm.message_id",
        )
        .unwrap();
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, Vec<u8>>(4)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (address, mailbox, uid, flags, head) = row.unwrap();
        match chaos_id(&head) {
            Some(id) => {
                *seen.count.entry(id.clone()).or_insert(0) += 1;
                if flags & 4 != 0 {
                    seen.flagged.insert(id);
                }
            }
            None => seen.foreign.push(format!(
                "{address} {mailbox} UID {uid}: {}",
                String::from_utf8_lossy(&head[..head.len().min(300)])
            )),
        }
    }
    drop(st);
    let mut st = c
        .prepare(
            "SELECT substr(g.data, 1, 8192),
                    EXISTS (SELECT 1 FROM queue_recipients r WHERE r.queue_id = q.id AND r.status = 'pending'),
                    EXISTS (SELECT 1 FROM queue_recipients r WHERE r.queue_id = q.id AND r.lease <> 0)
               FROM queue q JOIN messages g ON g.id = q.message_id",
        )
        .unwrap();
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (head, pending, claimed) = row.unwrap();
        let id = chaos_id(&head).unwrap_or_else(|| "(no id)".into());
        seen.queued.insert(id, (pending, claimed));
    }
    drop(st);
    c.execute_batch("COMMIT").unwrap();
    seen
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Acked,
    Refused,
    /// Sent, no answer (the server was killed): happened at most once.
    Unknown,
}

#[derive(Default, Debug)]
struct Tally {
    acked_local: usize,
    acked_remote: usize,
    unknown: usize,
    refused: usize,
    deleted: usize,
    flags: usize,
    allowed_peer_duplicates: usize,
}

/// Compares the journal with what A and B hold; returns the problems found and the tally.
fn verify(
    journal: &[Op],
    a: &Seen,
    b: &Seen,
    in_flight_at_kill: &HashSet<String>,
    all_delivered: bool,
) -> (Vec<String>, Tally) {
    let mut outcome: HashMap<&str, (Outcome, &str)> = HashMap::new();
    let mut deleted_ok: HashSet<&str> = HashSet::new();
    let mut deleted_try: HashSet<&str> = HashSet::new();
    let mut flagged_ok: HashSet<&str> = HashSet::new();
    for op in journal {
        for id in &op.ids {
            match (op.op.as_str(), op.state.as_str()) {
                ("smtp" | "submit" | "append", "try") => {
                    outcome.insert(id, (Outcome::Unknown, op.op.as_str()));
                }
                ("smtp" | "submit" | "append", "ok") => {
                    outcome.insert(id, (Outcome::Acked, op.op.as_str()));
                }
                ("smtp" | "submit" | "append", "refused") => {
                    outcome.insert(id, (Outcome::Refused, op.op.as_str()));
                }
                ("expunge" | "dele", "try") => {
                    deleted_try.insert(id);
                }
                ("expunge" | "dele", "ok") => {
                    deleted_ok.insert(id);
                }
                ("flag", "ok") => {
                    flagged_ok.insert(id);
                }
                _ => {}
            }
        }
    }
    let mut problems = Vec::new();
    let mut tally = Tally {
        deleted: deleted_ok.len(),
        ..Tally::default()
    };
    for (id, n) in &a.count {
        if *n > 1 {
            problems.push(format!("{id}: {n} copies at A"));
        }
        match outcome.get(id.as_str()) {
            None => problems.push(format!("{id}: at A but never sent")),
            Some((_, "submit")) => problems.push(format!("{id}: a submitted message at A")),
            Some((Outcome::Refused, op)) => {
                problems.push(format!("{id}: refused ({op}) but stored at A"))
            }
            Some(_) => {}
        }
        if deleted_ok.contains(id.as_str()) {
            problems.push(format!("{id}: deletion acknowledged, but still at A"));
        }
    }
    for f in &a.foreign {
        problems.push(format!("unexpected message at A: {f}"));
    }
    for (id, n) in &b.count {
        if *n > 1 {
            if in_flight_at_kill.contains(id) && *n == 2 {
                tally.allowed_peer_duplicates += 1;
            } else {
                problems.push(format!("{id}: {n} copies at B"));
            }
        }
        match outcome.get(id.as_str()) {
            Some((Outcome::Acked | Outcome::Unknown, "submit")) => {}
            other => problems.push(format!("{id}: at B, journal says {other:?}")),
        }
    }
    for f in &b.foreign {
        problems.push(format!("unexpected message at B: {f}"));
    }
    for (id, (o, op)) in &outcome {
        match o {
            Outcome::Refused => tally.refused += 1,
            Outcome::Unknown => tally.unknown += 1,
            Outcome::Acked if *op == "submit" => tally.acked_remote += 1,
            Outcome::Acked => tally.acked_local += 1,
        }
        if *o != Outcome::Acked {
            continue;
        }
        if *op == "submit" {
            let at_b = b.count.get(*id).copied().unwrap_or(0);
            let queued = a.queued.get(*id).is_some_and(|(pending, _)| *pending);
            if at_b == 0 && (all_delivered || !queued) {
                problems.push(format!(
                    "{id}: submission acknowledged, not at B{}",
                    if queued {
                        " (still queued)"
                    } else {
                        " and not queued: lost"
                    }
                ));
            }
            continue;
        }
        let n = a.count.get(*id).copied().unwrap_or(0);
        let may_be_gone = deleted_ok.contains(id) || deleted_try.contains(id);
        if n == 0 && !may_be_gone {
            problems.push(format!("{id}: acknowledged ({op}), not at A: lost"));
        }
    }
    for id in &flagged_ok {
        if a.count.contains_key(*id) {
            tally.flags += 1;
            if !a.flagged.contains(*id) {
                problems.push(format!("{id}: \\Flagged acknowledged, but not set"));
            }
        }
    }
    (problems, tally)
}

#[test]
fn kill9_under_mixed_load_loses_nothing_acknowledged() {
    let started = Instant::now();
    let seed: u64 = std::env::var("MAILROOM_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 % 1_000_000)
                .unwrap_or(1)
        });
    let rounds: u32 = std::env::var("MAILROOM_CHAOS_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    eprintln!("chaos seed {seed}, {rounds} rounds (repeat with MAILROOM_CHAOS_SEED={seed})");
    let mut rng = Rng(seed);

    let bport = free_port();
    let b = server_b(bport);
    let mut a = server_a(bport);
    let work = tempfile::tempdir().unwrap();
    let journal = work.path().join("journal.tsv");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chaos/load.py");
    let a_data = a.dir.path().join("data");
    let b_data = b.dir.path().join("data");
    let mut in_flight_at_kill = HashSet::new();

    for round in 1..=rounds {
        let kill_at = rng.between(1.5, 5.0);
        let load_seed = rng.next() % 1_000_000_000;
        let out = std::fs::File::create(work.path().join(format!("load-{round}.log"))).unwrap();
        let mut load = a
            .python_command()
            .arg(&script)
            .env("JOURNAL", &journal)
            .env("SEED", load_seed.to_string())
            .env("ROUND", round.to_string())
            .env("DURATION", "15")
            .env(
                "LOCAL_USERS",
                format!("{}:{},{}:{}", ALICE_A.0, ALICE_A.1, CAROL_A.0, CAROL_A.1),
            )
            .env("SUBMIT_USER", ALICE_A.0)
            .env("REMOTE_RCPT", BOB_B.0)
            .env("POP_USER", ALICE_A.0)
            .env("IMAP_USER", CAROL_A.0)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("python3");
        std::thread::sleep(Duration::from_secs_f64(kill_at));
        a.kill9();
        // The generator stops once it finds the server gone.
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = load.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = load.kill();
                panic!("round {round}: the load generator did not stop after the kill");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = std::fs::read_to_string(work.path().join(format!("load-{round}.log")))
            .unwrap_or_default();
        assert!(
            status.success(),
            "round {round}: load generator failed: {status}\n{log}"
        );
        // What the killed server's files say, before anything opens them for writing:
        // deliveries to B that were in flight (claimed), and a clean check.
        let dead = read_store(&a_data);
        for (id, (_, claimed)) in &dead.queued {
            if *claimed {
                in_flight_at_kill.insert(id.clone());
            }
        }
        a.assert_check_clean(&format!("after the kill of round {round}"));
        a.restart();

        // Verify beside the running servers: A's queue is read before B, so a message
        // that leaves the queue in between is at B by then.
        let ops = read_journal(&journal);
        let seen_a = read_store(&a_data);
        let seen_b = read_store(&b_data);
        let (problems, t) = verify(&ops, &seen_a, &seen_b, &in_flight_at_kill, false);
        let this_round = ops.iter().filter(|o| o.round == round).count();
        eprintln!(
            "round {round}: killed after {kill_at:.2} s, {this_round} journal lines; so far {} local and {} remote acknowledged, {} unanswered, {} refused, {} deletions, {} in flight at kills",
            t.acked_local,
            t.acked_remote,
            t.unknown,
            t.refused,
            t.deleted,
            in_flight_at_kill.len()
        );
        assert!(
            problems.is_empty(),
            "round {round} (seed {seed}): {} problem(s):\n{}\nload log:\n{log}\nserver log:\n{}",
            problems.len(),
            problems.join("\n"),
            a.log_text()
        );
        a.assert_check_clean(&format!("after round {round}"));
    }

    // The end: with B up, A's queue empties, and every submission is at B.
    a.wait_for(60, "A's queue to empty", || {
        read_store(&a_data)
            .queued
            .values()
            .all(|(pending, _)| !pending)
    });
    let ops = read_journal(&journal);
    let (problems, t) = verify(
        &ops,
        &read_store(&a_data),
        &read_store(&b_data),
        &in_flight_at_kill,
        true,
    );
    assert!(
        problems.is_empty(),
        "at the end (seed {seed}): {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    a.assert_check_clean("at the end");
    b.assert_check_clean("of the peer at the end");
    assert!(
        t.acked_local > 0 && t.acked_remote > 0 && t.deleted > 0,
        "the load did something: {t:?}"
    );
    let tally = t;
    eprintln!(
        "chaos: seed {seed}, {rounds} rounds, {} messages acknowledged ({} local, {} to the peer), {} unanswered, {} refused, {} deletions and {} flags acknowledged; lost 0, duplicated 0 ({} duplicates at the peer, of {} deliveries in flight at a kill); {:.1} s",
        tally.acked_local + tally.acked_remote,
        tally.acked_local,
        tally.acked_remote,
        tally.unknown,
        tally.refused,
        tally.deleted,
        tally.flags,
        tally.allowed_peer_duplicates,
        in_flight_at_kill.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The verifier itself: it must see a lost, a duplicated, a resurrected and a refused-but-
/// stored message, and allow only the in-flight duplicate at the peer.
#[test]
fn the_verifier_sees_every_kind_of_loss() {
    let line = |op: &str, state: &str, ids: &str| Op {
        op: op.into(),
        state: state.into(),
        round: 1,
        ids: ids.split(',').map(String::from).collect(),
    };
    let journal = vec![
        line("smtp", "try", "kept"),
        line("smtp", "ok", "kept"),
        line("smtp", "try", "lost"),
        line("smtp", "ok", "lost"),
        line("smtp", "try", "twice"),
        line("smtp", "ok", "twice"),
        line("smtp", "try", "refused"),
        line("smtp", "refused", "refused"),
        line("append", "try", "gone"),
        line("append", "ok", "gone"),
        line("expunge", "try", "gone,back"),
        line("expunge", "ok", "gone,back"),
        line("append", "try", "back"),
        line("append", "ok", "back"),
        line("flag", "ok", "kept"),
        line("submit", "try", "peer1"),
        line("submit", "ok", "peer1"),
        line("submit", "try", "peer2"),
        line("submit", "ok", "peer2"),
        line("submit", "try", "peer3"),
        line("submit", "ok", "peer3"),
        line("smtp", "try", "maybe"),
    ];
    let mut a = Seen::default();
    for id in ["kept", "twice", "twice", "refused", "back", "maybe"] {
        *a.count.entry(id.into()).or_insert(0) += 1;
    }
    let mut b = Seen::default();
    b.count.insert("peer1".into(), 2);
    b.count.insert("peer2".into(), 2);
    let in_flight: HashSet<String> = ["peer1".to_string()].into();
    let (problems, tally) = verify(&journal, &a, &b, &in_flight, true);
    let text = problems.join("\n");
    for want in [
        "lost: 2 copies",
        "twice: 2 copies at A",
        "refused: refused (smtp) but stored at A",
        "back: deletion acknowledged, but still at A",
        "kept: \\Flagged acknowledged, but not set",
        "peer2: 2 copies at B",
        "peer3: submission acknowledged, not at B",
    ] {
        let want = want.replace(
            "lost: 2 copies",
            "lost: acknowledged (smtp), not at A: lost",
        );
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("peer1"), "{text}");
    assert!(!text.contains("maybe"), "{text}");
    assert!(!text.contains("gone"), "{text}");
    assert_eq!(tally.allowed_peer_duplicates, 1);
    assert_eq!(problems.len(), 7, "{text}");
}
