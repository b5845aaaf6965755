//! The server's metrics registry and its rendering in the Prometheus text exposition format
//! (version 0.0.4), served at `GET /metrics` (docs/API.md).
//!
//! Every counter and gauge is an atomic in a fixed array indexed by listener (and by reply
//! class or outcome): the label sets are known when the program is compiled, so a session
//! bumps a number with one `fetch_add` and never takes a lock or looks anything up. (The
//! `prometheus-client` crate would put each labelled family behind a lock-guarded map; for a
//! few dozen fixed series that is cost without benefit, and the text format is short to
//! write.) Histograms are `mailroom_store::stats::AtomicHistogram`, shared with the store.
//!
//! Numbers that are state rather than events (queue depth, oldest queued message, the store
//! writer's statistics) are read when `/metrics` is rendered ([`Snapshot`]).
//!
//! One [`Metrics`] lives in `Shared`; who counts what:
//!
//! | metric | counted by |
//! |---|---|
//! | `mailroom_connections_total`, `..._refused_total`, `mailroom_sessions_active` | the accept loop and `run_session` (lib.rs) |
//! | `mailroom_smtp_messages_total{class}` | the SMTP driver, at the reply to the message's data (smtp/data.rs) |
//! | `mailroom_logins_total{result}` | `auth::login` (success) and `auth::note_failure` (failure): the one path every protocol's login takes |
//! | `mailroom_local_deliveries_total`, `mailroom_remote_deliveries_total`, `mailroom_bounces_total` | the SMTP driver's hand-off, the queue runner |
//! | `mailroom_capture_faults_total{stage}` | capture mode's fault injection (smtp/capture.rs) |

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use mailroom_store::stats::{HistogramSnapshot, WriterStats};

use crate::ListenerKind;

const KINDS: usize = ListenerKind::ALL.len();

/// The class of an SMTP reply: 2xx, 4xx or 5xx (RFC 5321 §4.2.1).
pub fn reply_class(code: u16) -> Option<usize> {
    match code / 100 {
        2 => Some(0),
        4 => Some(1),
        5 => Some(2),
        _ => None,
    }
}
const CLASSES: [&str; 3] = ["2xx", "4xx", "5xx"];

/// Outcomes of a delivery attempt to a remote recipient.
#[derive(Debug, Clone, Copy)]
pub enum Remote {
    Delivered = 0,
    Deferred = 1,
    Failed = 2,
}
const REMOTE: [&str; 3] = ["delivered", "deferred", "failed"];

/// Where capture mode injected a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultStage {
    Mail = 0,
    Rcpt = 1,
    Data = 2,
    Auth = 3,
}
pub const STAGES: [&str; 4] = ["mail", "rcpt", "data", "auth"];

fn zeros<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// The registry: one per server, in `Shared`.
pub struct Metrics {
    connections: [AtomicU64; KINDS],
    refused: [AtomicU64; KINDS],
    active: [AtomicI64; KINDS],
    messages: [[AtomicU64; 3]; KINDS],
    /// [success, failure] per listener.
    logins: [[AtomicU64; 2]; KINDS],
    local_deliveries: AtomicU64,
    remote: [AtomicU64; 3],
    bounces: AtomicU64,
    faults: [AtomicU64; 4],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections: zeros(),
            refused: zeros(),
            active: std::array::from_fn(|_| AtomicI64::new(0)),
            messages: std::array::from_fn(|_| zeros()),
            logins: std::array::from_fn(|_| zeros()),
            local_deliveries: AtomicU64::new(0),
            remote: zeros(),
            bounces: AtomicU64::new(0),
            faults: zeros(),
        }
    }
}

/// Holds one active session of a listener; the gauge goes down when it is dropped (also when
/// the session's task panics).
pub struct ActiveSession<'a> {
    gauge: &'a AtomicI64,
}

impl Drop for ActiveSession<'_> {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

fn bump(n: &AtomicU64) {
    n.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// A connection was accepted on `kind` (whether or not the limits let it in).
    pub fn connection(&self, kind: ListenerKind) {
        bump(&self.connections[kind.index()]);
    }
    /// A connection was turned away by the connection limits.
    pub fn refused(&self, kind: ListenerKind) {
        bump(&self.refused[kind.index()]);
    }
    /// A session starts; it counts as active until the guard is dropped.
    pub fn session(&self, kind: ListenerKind) -> ActiveSession<'_> {
        let gauge = &self.active[kind.index()];
        gauge.fetch_add(1, Ordering::Relaxed);
        ActiveSession { gauge }
    }
    /// The reply an SMTP listener gave to a message's data (250, or a 4xx/5xx refusal).
    pub fn smtp_message(&self, kind: ListenerKind, code: u16) {
        if let Some(c) = reply_class(code) {
            bump(&self.messages[kind.index()][c]);
        }
    }
    /// A login succeeded (`true`) or failed on `kind`.
    pub fn login(&self, kind: ListenerKind, ok: bool) {
        bump(&self.logins[kind.index()][usize::from(!ok)]);
    }
    /// `n` local copies were stored.
    pub fn local_deliveries(&self, n: usize) {
        self.local_deliveries.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn remote(&self, outcome: Remote) {
        bump(&self.remote[outcome as usize]);
    }
    pub fn bounce(&self) {
        bump(&self.bounces);
    }
    pub fn fault(&self, stage: FaultStage) {
        bump(&self.faults[stage as usize]);
    }

    /// The registry and the state read for this scrape, in the text exposition format.
    pub fn render(&self, snap: &Snapshot) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let listeners = ListenerKind::ALL;

        family(
            &mut out,
            "mailroom_connections_total",
            "counter",
            "Connections accepted, per listener (including those the connection limits turned away).",
        );
        for k in listeners {
            sample(
                &mut out,
                "mailroom_connections_total",
                &[("listener", k.name())],
                load(&self.connections[k.index()]) as f64,
            );
        }
        family(
            &mut out,
            "mailroom_connections_refused_total",
            "counter",
            "Connections turned away by limits.max_connections or limits.max_connections_per_ip.",
        );
        for k in listeners {
            sample(
                &mut out,
                "mailroom_connections_refused_total",
                &[("listener", k.name())],
                load(&self.refused[k.index()]) as f64,
            );
        }
        family(
            &mut out,
            "mailroom_sessions_active",
            "gauge",
            "Sessions running now, per listener (an HTTP session is one connection).",
        );
        for k in listeners {
            sample(
                &mut out,
                "mailroom_sessions_active",
                &[("listener", k.name())],
                self.active[k.index()].load(Ordering::Relaxed) as f64,
            );
        }
        family(
            &mut out,
            "mailroom_smtp_messages_total",
            "counter",
            "Messages whose data an SMTP listener received, by the class of its reply (2xx accepted, 4xx/5xx refused).",
        );
        for k in listeners.iter().filter(|k| k.is_smtp()) {
            for (c, class) in CLASSES.iter().enumerate() {
                sample(
                    &mut out,
                    "mailroom_smtp_messages_total",
                    &[("listener", k.name()), ("class", class)],
                    load(&self.messages[k.index()][c]) as f64,
                );
            }
        }
        family(
            &mut out,
            "mailroom_logins_total",
            "counter",
            "Password checks per listener: success, or failure (wrong password, unknown or ambiguous user).",
        );
        for k in listeners {
            for (i, result) in ["success", "failure"].iter().enumerate() {
                sample(
                    &mut out,
                    "mailroom_logins_total",
                    &[("listener", k.name()), ("result", result)],
                    load(&self.logins[k.index()][i]) as f64,
                );
            }
        }
        family(
            &mut out,
            "mailroom_local_deliveries_total",
            "counter",
            "Copies of messages stored in local mailboxes by SMTP (one per local recipient).",
        );
        sample(
            &mut out,
            "mailroom_local_deliveries_total",
            &[],
            load(&self.local_deliveries) as f64,
        );
        family(
            &mut out,
            "mailroom_remote_deliveries_total",
            "counter",
            "Delivery attempts of the outbound queue per recipient, by outcome.",
        );
        for (i, outcome) in REMOTE.iter().enumerate() {
            sample(
                &mut out,
                "mailroom_remote_deliveries_total",
                &[("outcome", outcome)],
                load(&self.remote[i]) as f64,
            );
        }
        family(
            &mut out,
            "mailroom_bounces_total",
            "counter",
            "Delivery status notifications (bounces) the queue produced.",
        );
        sample(
            &mut out,
            "mailroom_bounces_total",
            &[],
            load(&self.bounces) as f64,
        );
        family(
            &mut out,
            "mailroom_capture_faults_total",
            "counter",
            "Replies capture mode's fault injection ([capture.faults]) gave instead of the real one.",
        );
        for (i, stage) in STAGES.iter().enumerate() {
            sample(
                &mut out,
                "mailroom_capture_faults_total",
                &[("stage", stage)],
                load(&self.faults[i]) as f64,
            );
        }
        if let Some(q) = &snap.queue {
            family(
                &mut out,
                "mailroom_queue_recipients",
                "gauge",
                "Recipients in the outbound queue still waiting for delivery.",
            );
            sample(&mut out, "mailroom_queue_recipients", &[], q.pending as f64);
            family(
                &mut out,
                "mailroom_queue_messages",
                "gauge",
                "Messages in the outbound queue with at least one recipient waiting.",
            );
            sample(&mut out, "mailroom_queue_messages", &[], q.messages as f64);
            family(
                &mut out,
                "mailroom_queue_oldest_age_seconds",
                "gauge",
                "Age of the oldest message still waiting in the outbound queue (0 when none waits).",
            );
            sample(
                &mut out,
                "mailroom_queue_oldest_age_seconds",
                &[],
                q.oldest_age_seconds as f64,
            );
        }
        if let Some(w) = &snap.writer {
            histogram(
                &mut out,
                "mailroom_store_commit_seconds",
                "Duration of each group commit of the store (BEGIN to the end of COMMIT, the fsync included).",
                &w.commit_seconds,
            );
            histogram(
                &mut out,
                "mailroom_store_commit_batch_size",
                "Write jobs (deliveries, flag changes, ...) that shared one group commit.",
                &w.batch_size,
            );
            family(
                &mut out,
                "mailroom_store_commit_failures_total",
                "counter",
                "Store transactions that failed and were rolled back.",
            );
            sample(
                &mut out,
                "mailroom_store_commit_failures_total",
                &[],
                w.failed_commits as f64,
            );
        }
        out
    }
}

/// What `/metrics` reads at render time besides the registry.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub queue: Option<QueueGauges>,
    pub writer: Option<WriterStats>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct QueueGauges {
    pub pending: u64,
    pub messages: u64,
    pub oldest_age_seconds: i64,
}

impl QueueGauges {
    /// The gauges from the queue's entries (pending recipients only), at `now` (Unix seconds).
    pub fn of(entries: &[mailroom_store::QueueEntry], now: i64) -> QueueGauges {
        let mut g = QueueGauges::default();
        let mut oldest: Option<i64> = None;
        for e in entries {
            let pending = e
                .recipients
                .iter()
                .filter(|r| r.status == "pending")
                .count() as u64;
            if pending > 0 {
                g.pending += pending;
                g.messages += 1;
                oldest = Some(oldest.map_or(e.created, |o| o.min(e.created)));
            }
        }
        g.oldest_age_seconds = oldest.map_or(0, |o| (now - o).max(0));
        g
    }
}

/// The HELP and TYPE lines of a family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line: `name{a="x",b="y"} value`.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(value));
}

fn histogram(out: &mut String, name: &str, help: &str, h: &HistogramSnapshot) {
    family(out, name, "histogram", help);
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0u64;
    for (i, bound) in h.bounds.iter().enumerate() {
        cumulative += h.buckets.get(i).copied().unwrap_or(0);
        sample(out, &bucket, &[("le", &number(*bound))], cumulative as f64);
    }
    cumulative += h.buckets.get(h.bounds.len()).copied().unwrap_or(0);
    sample(out, &bucket, &[("le", "+Inf")], cumulative as f64);
    sample(out, &format!("{name}_sum"), &[], h.sum);
    sample(out, &format!("{name}_count"), &[], h.count as f64);
}

/// A number as the text format writes it (Go's float formatting: `1`, `0.005`, `+Inf`).
fn number(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v.is_nan() {
        return "NaN".into();
    }
    format!("{v}")
}

/// A label value: backslash, double quote and line feed escaped (the exposition format).
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listener_has_its_own_slot() {
        for (i, k) in ListenerKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i, "{k:?}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_label("plain"), "plain");
    }

    #[test]
    fn counters_render_with_help_type_and_labels() {
        let m = Metrics::default();
        m.connection(ListenerKind::Smtp);
        m.connection(ListenerKind::Smtp);
        m.smtp_message(ListenerKind::Submission, 250);
        m.smtp_message(ListenerKind::Submission, 451);
        m.smtp_message(ListenerKind::Submission, 554);
        m.smtp_message(ListenerKind::Submission, 354); // not a class counted
        m.login(ListenerKind::Imap, false);
        let s = {
            let _active = m.session(ListenerKind::Pop3);
            m.render(&Snapshot::default())
        };
        assert!(s.contains("# TYPE mailroom_connections_total counter\n"));
        assert!(s.contains("# HELP mailroom_connections_total "));
        assert!(s.contains("mailroom_connections_total{listener=\"smtp\"} 2\n"));
        for class in ["2xx", "4xx", "5xx"] {
            assert!(s.contains(&format!(
                "mailroom_smtp_messages_total{{listener=\"submission\",class=\"{class}\"}} 1\n"
            )));
        }
        assert!(s.contains("mailroom_logins_total{listener=\"imap\",result=\"failure\"} 1\n"));
        assert!(s.contains("mailroom_sessions_active{listener=\"pop3\"} 1\n"));
        // The guard is gone: the gauge is back.
        let s = m.render(&Snapshot::default());
        assert!(s.contains("mailroom_sessions_active{listener=\"pop3\"} 0\n"));
        // Every line is a comment or `name{labels} value`.
        for line in s.lines() {
            assert!(
                line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line
                        .rsplit_once(' ')
                        .is_some_and(|(_, v)| v.parse::<f64>().is_ok()),
                "{line}"
            );
        }
    }

    #[test]
    fn histograms_are_cumulative_and_end_with_inf() {
        let h = mailroom_store::stats::AtomicHistogram::new(&[0.5, 1.0]);
        h.observe(0.1);
        h.observe(0.7);
        h.observe(9.0);
        let mut out = String::new();
        histogram(&mut out, "x_seconds", "help", &h.snapshot());
        assert!(out.contains("x_seconds_bucket{le=\"0.5\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_count 3\n"), "{out}");
        assert!(out.contains("x_seconds_sum 9.8\n"), "{out}");
    }

    #[test]
    fn queue_gauges_count_pending_recipients_and_the_oldest() {
        use mailroom_store::{MessageId, QueueEntry, QueueId, QueueRecipient};
        let r = |status: &str| QueueRecipient {
            id: 1,
            recipient: "x@y".into(),
            status: status.into(),
            attempts: 0,
            next_attempt: 0,
            last_error: None,
        };
        let e = |created, rs| QueueEntry {
            id: QueueId(1),
            message: MessageId(1),
            sender: String::new(),
            created,
            recipients: rs,
        };
        let g = QueueGauges::of(
            &[
                e(100, vec![r("pending"), r("delivered"), r("pending")]),
                e(50, vec![r("failed")]),
                e(90, vec![r("pending")]),
            ],
            130,
        );
        assert_eq!((g.pending, g.messages, g.oldest_age_seconds), (3, 2, 40));
    }
}
