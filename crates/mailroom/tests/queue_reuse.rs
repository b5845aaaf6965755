//! The outbound queue at speed: connection reuse (several messages per SMTP session, RSET
//! between them), PIPELINING when offered, the per-destination connection limit, peers that
//! close or refuse a reused session, and a kill -9 in the middle of a large delivery.
//!
//! The peer is an SMTP sink written here (std threads on 127.0.0.1:0) that counts sessions,
//! transactions, concurrent connections and pipelined command groups, and keeps each
//! accepted message's Message-ID. Every test sets `retry = ["1h"]`: a delivery counted as
//! failed would not be tried again within the test, so "arrives" also means "no failure".
mod support;
use support::*;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::peers::{self, ALICE_A};

/// How the sink behaves.
#[derive(Clone, Default)]
struct SinkOptions {
    /// Offer PIPELINING in the EHLO reply.
    pipelining: bool,
    /// Close the connection (without a word) after this many transactions on it.
    drop_after: Option<usize>,
    /// Answer `451` to RSET once a connection has carried this many transactions.
    refuse_rset_after: Option<usize>,
    /// Answer `452` to MAIL once a connection has carried this many transactions.
    refuse_mail_after: Option<usize>,
    /// Close a connection that sent nothing for this long (a peer's idle timeout).
    idle_close: Option<Duration>,
    /// Wait this long before the reply to the end of data (a slow peer).
    data_delay: Option<Duration>,
}

#[derive(Default)]
struct SinkStats {
    sessions: AtomicUsize,
    transactions: AtomicUsize,
    active: AtomicUsize,
    max_active: AtomicUsize,
    /// Commands that arrived before the reply to the previous one was sent.
    pipelined: AtomicUsize,
    rsets: AtomicUsize,
    /// Message-ID → times accepted.
    ids: Mutex<HashMap<String, usize>>,
}

struct Sink {
    port: u16,
    stats: Arc<SinkStats>,
}

impl Sink {
    fn start(opts: SinkOptions) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
        let port = listener.local_addr().expect("addr").port();
        let stats = Arc::new(SinkStats::default());
        let st = stats.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                let opts = opts.clone();
                std::thread::spawn(move || {
                    st.sessions.fetch_add(1, Ordering::SeqCst);
                    let now = st.active.fetch_add(1, Ordering::SeqCst) + 1;
                    st.max_active.fetch_max(now, Ordering::SeqCst);
                    let released = std::cell::Cell::new(false);
                    let _ = serve(conn, &opts, &st, &released);
                    if !released.get() {
                        st.active.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        Sink { port, stats }
    }

    fn transactions(&self) -> usize {
        self.stats.transactions.load(Ordering::SeqCst)
    }
    fn sessions(&self) -> usize {
        self.stats.sessions.load(Ordering::SeqCst)
    }
    fn ids(&self) -> HashMap<String, usize> {
        self.stats.ids.lock().expect("ids").clone()
    }
}

/// Serves one connection; `released` is set once the connection stopped counting as active.
fn serve(
    conn: TcpStream,
    o: &SinkOptions,
    st: &SinkStats,
    released: &std::cell::Cell<bool>,
) -> std::io::Result<()> {
    conn.set_read_timeout(o.idle_close.or(Some(Duration::from_secs(30))))?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    w.write_all(b"220 sink.test ESMTP test sink\r\n")?;
    let mut done = 0usize; // transactions on this connection
                           // RFC 5321 §4.1.4: RCPT needs an accepted MAIL, DATA an accepted RCPT.
    let (mut mail, mut rcpt) = (false, false);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if !r.buffer().is_empty() {
            st.pipelined.fetch_add(1, Ordering::SeqCst);
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        let verb = cmd.split(' ').next().unwrap_or("").to_string();
        match verb.as_str() {
            "EHLO" => {
                let ext = if o.pipelining {
                    "250-PIPELINING\r\n"
                } else {
                    ""
                };
                w.write_all(format!("250-sink.test\r\n{ext}250 8BITMIME\r\n").as_bytes())?;
            }
            "RSET" => {
                st.rsets.fetch_add(1, Ordering::SeqCst);
                (mail, rcpt) = (false, false);
                if o.refuse_rset_after.is_some_and(|n| done >= n) {
                    w.write_all(b"451 4.3.2 no more transactions on this connection\r\n")?;
                } else {
                    w.write_all(b"250 2.0.0 reset\r\n")?;
                }
            }
            "MAIL" => {
                if o.refuse_mail_after.is_some_and(|n| done >= n) {
                    w.write_all(b"452 4.3.2 too many transactions on this connection\r\n")?;
                } else {
                    mail = true;
                    w.write_all(b"250 2.1.0 ok\r\n")?;
                }
            }
            "RCPT" if mail => {
                rcpt = true;
                w.write_all(b"250 2.1.5 ok\r\n")?
            }
            "RCPT" => w.write_all(b"503 5.5.1 MAIL first\r\n")?,
            "DATA" if !rcpt => w.write_all(b"503 5.5.1 RCPT first\r\n")?,
            "DATA" => {
                (mail, rcpt) = (false, false);
                w.write_all(b"354 go ahead\r\n")?;
                let mut id = String::from("none");
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Message-ID: ") {
                        id = v.trim().to_string();
                    }
                }
                if let Some(d) = o.data_delay {
                    std::thread::sleep(d);
                }
                *st.ids.lock().expect("ids").entry(id).or_insert(0) += 1;
                st.transactions.fetch_add(1, Ordering::SeqCst);
                w.write_all(b"250 2.0.0 accepted\r\n")?;
                done += 1;
                if o.drop_after.is_some_and(|n| done >= n) {
                    return Ok(());
                }
            }
            "QUIT" => {
                // The session is over for the client once it has sent QUIT: it stops counting
                // before the 221, or a client that opens its next connection on reading the 221
                // would be counted twice while this thread has not yet returned.
                st.active.fetch_sub(1, Ordering::SeqCst);
                released.set(true);
                w.write_all(b"221 2.0.0 bye\r\n")?;
                return Ok(());
            }
            _ => w.write_all(b"250 ok\r\n")?,
        }
    }
}

/// Server A (a.test) routing sink.test to the sink, with `queue` lines added to the defaults
/// of these tests (no retry within a test, the hop in clear).
fn server_to(sink: &Sink, queue: &str) -> TestServer {
    peers::server_a()
        .listen(&["smtp", "submission"])
        .route_to(
            "sink.test",
            &format!("{{ host = \"127.0.0.1:{}\", tls = \"none\" }}", sink.port),
        )
        .table(
            "queue",
            &format!("retry = [\"1h\"]\nconnect_timeout = \"5s\"\n{queue}"),
        )
        .start()
}

/// Submits `n` messages (Message-ID `<tag-i@a.test>`) to x@sink.test over one session.
fn submit_many(a: &TestServer, tag: &str, n: usize) {
    a.python(&format!(
        r#"
import os, smtplib
s = smtplib.SMTP(os.environ["HOST"], int(os.environ["SUBMISSION_PORT"]))
s.login("{user}", "{pw}")
for i in range({n}):
    msg = "From: {user}\r\nSubject: m{{}}\r\nMessage-ID: <{tag}-{{}}@a.test>\r\n\r\nbody {{}}\r\n".format(i, i, i)
    s.sendmail("{user}", ["x@sink.test"], msg)
s.quit()
"#,
        user = ALICE_A.0,
        pw = ALICE_A.1,
    ));
}

/// Every message `<tag-0..n>` arrived exactly once.
fn assert_each_once(sink: &Sink, tag: &str, n: usize) {
    let ids = sink.ids();
    for i in 0..n {
        let id = format!("<{tag}-{i}@a.test>");
        assert_eq!(
            ids.get(&id),
            Some(&1),
            "{id} arrived {:?} times",
            ids.get(&id)
        );
    }
    assert_eq!(ids.len(), n, "unexpected messages: {ids:?}");
}

fn wait_delivered(a: &TestServer, sink: &Sink, n: usize) {
    a.wait_for(60, "every message at the sink", || sink.transactions() >= n);
    a.wait_for(30, "the queue to empty", || a.queue().is_empty());
}

#[test]
fn fifty_messages_to_one_destination_share_connections_and_arrive_once() {
    let sink = Sink::start(SinkOptions {
        pipelining: true,
        ..Default::default()
    });
    let a = server_to(&sink, "");
    submit_many(&a, "reuse", 50);
    wait_delivered(&a, &sink, 50);
    assert_each_once(&sink, "reuse", 50);
    let sessions = sink.sessions();
    assert!(
        sessions < 50,
        "50 messages over {sessions} connections: no reuse"
    );
    assert!(
        sink.stats.rsets.load(Ordering::SeqCst) > 0,
        "a reused session says RSET between transactions"
    );
    assert!(
        !a.log_text().contains("delivery deferred"),
        "{}",
        a.log_text()
    );
}

#[test]
fn pipelining_is_used_when_offered() {
    let sink = Sink::start(SinkOptions {
        pipelining: true,
        ..Default::default()
    });
    let a = server_to(&sink, "");
    submit_many(&a, "pipe", 10);
    wait_delivered(&a, &sink, 10);
    assert_each_once(&sink, "pipe", 10);
    // MAIL, RCPT (and RSET) arrive ahead of their replies: at least two per transaction.
    let p = sink.stats.pipelined.load(Ordering::SeqCst);
    assert!(p >= 20, "only {p} commands arrived pipelined");
}

#[test]
fn pipelining_is_not_used_when_not_offered() {
    let sink = Sink::start(SinkOptions::default());
    let a = server_to(&sink, "");
    submit_many(&a, "lockstep", 10);
    wait_delivered(&a, &sink, 10);
    assert_each_once(&sink, "lockstep", 10);
    assert_eq!(sink.stats.pipelined.load(Ordering::SeqCst), 0);
    assert!(sink.sessions() < 10, "reuse works without PIPELINING too");
}

#[test]
fn a_peer_that_drops_a_reused_session_gets_the_next_message_on_a_new_one() {
    for pipelining in [true, false] {
        let sink = Sink::start(SinkOptions {
            pipelining,
            drop_after: Some(1),
            ..Default::default()
        });
        // One connection: the messages go one after another over it.
        let a = server_to(&sink, "per_destination = 1");
        submit_many(&a, "drop", 6);
        wait_delivered(&a, &sink, 6);
        assert_each_once(&sink, "drop", 6);
        assert!(sink.sessions() >= 6, "each message needed its own session");
        assert!(
            !a.log_text().contains("delivery deferred"),
            "{}",
            a.log_text()
        );
    }
}

#[test]
fn a_peer_refusing_the_second_rset_or_mail_gets_it_on_a_new_session() {
    for (rset, mail) in [(Some(1), None), (None, Some(1))] {
        for pipelining in [true, false] {
            let sink = Sink::start(SinkOptions {
                pipelining,
                refuse_rset_after: rset,
                refuse_mail_after: mail,
                ..Default::default()
            });
            let a = server_to(&sink, "per_destination = 1");
            submit_many(&a, "refuse", 5);
            wait_delivered(&a, &sink, 5);
            assert_each_once(&sink, "refuse", 5);
            assert!(
                !a.log_text().contains("delivery deferred"),
                "{}",
                a.log_text()
            );
        }
    }
}

#[test]
fn per_destination_bounds_the_connections_to_the_peer() {
    let sink = Sink::start(SinkOptions {
        pipelining: true,
        data_delay: Some(Duration::from_millis(20)),
        ..Default::default()
    });
    let a = server_to(&sink, "per_destination = 2\nmessages_per_session = 5");
    submit_many(&a, "limit", 50);
    wait_delivered(&a, &sink, 50);
    assert_each_once(&sink, "limit", 50);
    let max = sink.stats.max_active.load(Ordering::SeqCst);
    assert!(
        max <= 2,
        "{max} connections at once with per_destination = 2"
    );
    // messages_per_session = 5: at least 10 sessions for 50 messages.
    assert!(sink.sessions() >= 10, "{} sessions", sink.sessions());
}

#[test]
fn an_idle_session_closed_by_the_peer_is_not_used() {
    let sink = Sink::start(SinkOptions {
        pipelining: true,
        idle_close: Some(Duration::from_millis(300)),
        ..Default::default()
    });
    let a = server_to(&sink, "idle_session_timeout = \"30s\"");
    submit_many(&a, "idle1", 1);
    a.wait_for(30, "the first message", || sink.transactions() == 1);
    // The peer closes the pooled session while it waits.
    std::thread::sleep(Duration::from_millis(800));
    submit_many(&a, "idle2", 1);
    a.wait_for(30, "the second message", || sink.transactions() == 2);
    a.wait_for(30, "the queue to empty", || a.queue().is_empty());
    assert_eq!(sink.sessions(), 2);
    let ids = sink.ids();
    assert_eq!(ids.get("<idle1-0@a.test>"), Some(&1));
    assert_eq!(ids.get("<idle2-0@a.test>"), Some(&1));
    assert!(
        !a.log_text().contains("delivery deferred"),
        "{}",
        a.log_text()
    );
}

#[test]
fn kill_9_in_the_middle_of_200_deliveries_loses_none() {
    const N: usize = 200;
    let sink = Sink::start(SinkOptions {
        pipelining: true,
        data_delay: Some(Duration::from_millis(50)),
        ..Default::default()
    });
    let mut a = server_to(&sink, "");
    submit_many(&a, "crash", N);
    a.wait_for(60, "some deliveries", || sink.transactions() >= 20);
    assert!(
        sink.transactions() < N,
        "the kill came too late to test anything"
    );
    a.kill9();
    a.restart();
    a.wait_for(120, "every message at the sink", || sink.ids().len() >= N);
    a.wait_for(60, "the queue to empty", || a.queue().is_empty());
    let ids = sink.ids();
    for i in 0..N {
        let id = format!("<crash-{i}@a.test>");
        assert!(ids.get(&id).is_some_and(|n| *n >= 1), "{id} never arrived");
    }
    let twice = ids.values().filter(|n| **n > 1).count();
    // At least once, never zero times; a copy is possible only for what was in flight.
    assert!(twice <= 40, "{twice} messages arrived twice");
}

#[test]
fn an_attempt_that_outlives_its_claim_renews_it_and_is_not_sent_twice() {
    // Claims last 5 s; the peer takes 7 s to answer the end of data. A job starts without a
    // store write for its claim (most attempts take milliseconds) and renews the claim only
    // when the attempt is still running after a quarter of what the claim had left. Without
    // that renewal the claim would expire mid-attempt, a later round would take the message
    // again and send it over a second connection (the peer would count it twice), and the
    // first attempt's result would not be recorded.
    let sink = Sink::start(SinkOptions {
        pipelining: true,
        data_delay: Some(Duration::from_secs(7)),
        ..Default::default()
    });
    let a = server_to(&sink, "claim_lease = \"5s\"\ncommand_timeout = \"30s\"");
    submit_many(&a, "slow", 1);
    a.wait_for(30, "the message at the sink", || sink.transactions() >= 1);
    a.wait_for(30, "the queue to empty", || a.queue().is_empty());
    // Time for a second copy to arrive if a second attempt had been started.
    std::thread::sleep(Duration::from_secs(2));
    assert_each_once(&sink, "slow", 1);
    assert_eq!(sink.sessions(), 1, "a second connection was opened");
    let log = a.log_text();
    assert!(!log.contains("were not recorded"), "{log}");
    assert!(!log.contains("no longer held"), "{log}");
}
