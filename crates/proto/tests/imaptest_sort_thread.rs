//! imaptest's SORT, ESORT and THREAD scripts (copied, unchanged, under
//! `fixtures/imaptest/`) run against the sans-IO SORT and THREAD code: each command of a
//! script is parsed with `parse_command`, answered with `sort`/`esort_response` or
//! `thread`, and the answer compared with the untagged line the script expects. STORE
//! \Deleted, EXPUNGE and APPEND steps change the mailbox as they would on a server.
//!
//! imaptest's script format (its README): a header (`capabilities:`, `messages: all|N`,
//! `state: created`) up to a blank line, then commands `ok|no|bad <command>`, each followed
//! by the untagged lines it expects (`$tag` is the command's tag). A script's mailbox is
//! `<script>.mbox`, else `default.mbox`: messages after `From ` lines whose date becomes the
//! INTERNALDATE, lines counted with CRLF.

use std::path::PathBuf;

use mailroom_proto::imap::encode::days_from_civil;
use mailroom_proto::imap::sort::{esort_response, sort, sort_response, SortMessage};
use mailroom_proto::imap::thread::thread;
use mailroom_proto::imap::{month_number, parse_command, CommandBody, SearchKey};

fn fixture(name: &str) -> Option<Vec<u8>> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "imaptest",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(path).ok()
}

/// `From sender  Fri Feb 22 17:06:23 2008 [+0200]`: the date as Unix seconds.
fn from_line_date(line: &str) -> Option<i64> {
    let t: Vec<&str> = line.strip_prefix("From ")?.split_whitespace().collect();
    let (mon, day, time, year) = (t.get(2)?, t.get(3)?, t.get(4)?, t.get(5)?);
    let mut hms = time.split(':').map(|x| x.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let days = days_from_civil(year.parse().ok()?, month_number(mon)?, day.parse().ok()?);
    let offset = match t.get(6) {
        Some(z) if z.len() == 5 => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            sign * (z[1..3].parse::<i64>().ok()? * 3600 + z[3..5].parse::<i64>().ok()? * 60)
        }
        _ => 0,
    };
    Some(days * 86_400 + h * 3600 + m * 60 + s - offset)
}

/// The messages of an mbox file, each with its From-line date, lines ending in CRLF.
fn read_mbox(data: &[u8]) -> Vec<(Vec<u8>, i64)> {
    let text = String::from_utf8_lossy(data);
    let mut out: Vec<(Vec<u8>, i64)> = Vec::new();
    for line in text.lines() {
        if let Some(date) = from_line_date(line) {
            out.push((Vec::new(), date));
            continue;
        }
        let cur = out.last_mut().expect("an mbox starts with a From line");
        cur.0.extend_from_slice(line.as_bytes());
        cur.0.extend_from_slice(b"\r\n");
    }
    out
}

struct Mail {
    uid: u32,
    data: Vec<u8>,
    date: i64,
    deleted: bool,
}

/// imaptest's untagged lines compare case-insensitively; `$tag` is our tag `a`.
fn normalize(s: &str) -> String {
    s.replace("$tag", "a").replace('"', "").to_ascii_lowercase()
}

fn run(script: &str) {
    let text = String::from_utf8(fixture(script).expect("script")).expect("UTF-8 script");
    let mbox = fixture(&format!("{script}.mbox"))
        .or_else(|| fixture("default.mbox"))
        .expect("mailbox");
    let source = read_mbox(&mbox);
    let mut next_source = 0;
    let mut mails: Vec<Mail> = Vec::new();
    let mut append = |mails: &mut Vec<Mail>| {
        let (data, date) = source[next_source % source.len()].clone();
        next_source += 1;
        let uid = next_source as u32;
        mails.push(Mail {
            uid,
            data,
            date,
            deleted: false,
        });
    };
    let mut lines = text.lines().peekable();
    // The header.
    for line in lines.by_ref() {
        if line.trim().is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("messages: ") {
            let n = if n.trim() == "all" {
                source.len()
            } else {
                n.trim().parse().expect("messages: N")
            };
            for _ in 0..n {
                append(&mut mails);
            }
        }
    }
    let mut failures = Vec::new();
    let mut commands = 0;
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (status, cmd) = line.split_once(' ').expect("status and command");
        let mut expected = Vec::new();
        while let Some(l) = lines.peek() {
            if !l.starts_with("* ") {
                break;
            }
            expected.push(normalize(l));
            lines.next();
        }
        let lower = cmd.to_ascii_lowercase();
        if lower == "expunge" {
            mails.retain(|m| !m.deleted);
            continue;
        }
        if lower == "append" {
            append(&mut mails);
            continue;
        }
        if lower.starts_with("select ") {
            continue;
        }
        if let Some(set) = lower.strip_prefix("store ") {
            let set = set.split(' ').next().expect("a set");
            for n in set.split(',') {
                let n: usize = n.parse().expect("a sequence number");
                mails[n - 1].deleted = true;
            }
            continue;
        }
        commands += 1;
        let parsed = parse_command(format!("a {cmd}").as_bytes());
        if let Ok(c) = &parsed {
            assert!(
                matches!(c.body, CommandBody::Sort(_) | CommandBody::Thread(_)),
                "{script}: not SORT or THREAD: {cmd}"
            );
        }
        if status == "bad" {
            if parsed.is_ok() {
                failures.push(format!("{cmd}: parsed, but imaptest expects BAD"));
            }
            continue;
        }
        assert_eq!(status, "ok", "{script}: {cmd}");
        let command = match parsed {
            Ok(c) => c.body,
            Err(e) => {
                failures.push(format!("{cmd}: refused: {}", e.error));
                continue;
            }
        };
        let key = match &command {
            CommandBody::Sort(s) => &s.key,
            CommandBody::Thread(t) => &t.key,
            _ => unreachable!("checked above"),
        };
        let n = mails.len() as u32;
        let msgs: Vec<SortMessage> = mails
            .iter()
            .enumerate()
            .map(|(i, m)| (i as u32 + 1, m))
            .filter(|(seq, _)| match key {
                SearchKey::All => true,
                SearchKey::Seq(set) => set.contains(*seq, n),
                other => panic!("{script}: search key {other:?} is not simulated here"),
            })
            .map(|(seq, m)| SortMessage::new(&m.data, seq, m.uid, m.date, m.data.len() as u64))
            .collect();
        let answer = match &command {
            CommandBody::Sort(s) => {
                let sorted = sort(&msgs, &s.criteria, s.uid);
                match &s.ret {
                    None => sort_response(&sorted),
                    Some(r) => esort_response("a", s.uid, r, &sorted),
                }
            }
            CommandBody::Thread(t) => thread(&msgs, t.algorithm, t.uid).response(),
            _ => unreachable!("checked above"),
        };
        if expected != [normalize(&answer)] {
            failures.push(format!(
                "{cmd}\n    got:      {answer}\n    expected: {expected:?}"
            ));
        }
    }
    assert!(commands > 0, "{script}: no SORT or THREAD command");
    assert!(
        failures.is_empty(),
        "{script}: {} of {commands} commands differ from imaptest's answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn mbox_reading() {
    // imaptest's own mailbox reading: dates from the From line, zone included.
    let m = read_mbox(b"From a@b  Fri Feb 22 17:06:23 2008\nX: 1\n\nbody\n\nFrom a@b  Fri Feb 22 23:00:00 2008 +0200\n\n2\n");
    assert_eq!(m.len(), 2);
    assert_eq!(m[0], (b"X: 1\r\n\r\nbody\r\n\r\n".to_vec(), 1_203_699_983));
    assert_eq!(m[1], (b"\r\n2\r\n".to_vec(), 1_203_714_000));
}

macro_rules! scripts {
    ($($name:ident => $script:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run($script);
            }
        )*
    };
}

scripts! {
    sort_addresses => "sort-addresses",
    sort_arrival => "sort-arrival",
    sort_date => "sort-date",
    sort_display_from => "sort-display-from",
    sort_display_to => "sort-display-to",
    sort_partial => "sort-partial",
    sort_size => "sort-size",
    sort_subject => "sort-subject",
    esort => "esort",
    thread1 => "thread",
    thread2 => "thread2",
    thread3 => "thread3",
    thread4 => "thread4",
    thread5 => "thread5",
    thread6 => "thread6",
    thread7 => "thread7",
    thread8 => "thread8",
    thread_orderedsubject => "thread-orderedsubject",
    thread_orderedsubject2 => "thread-orderedsubject2",
}
