//! The README's quick start, replayed (issue 16, "done when"): the telnet session transcript
//! of "A whole SMTP session by telnet" is read from README.md, its `C:` lines are sent to a
//! real server and every `S:` line is compared with what the server answers. The host name
//! (`myhost`) and the queue id stand for whatever the server says there; everything else must
//! match word for word, so the README cannot drift from the server again.

mod support;

use support::cli::repo_root;
use support::{Client, TestServer};

/// The `C:` / `S:` lines of the first code block after `heading`, each without its
/// explanatory `(comment)` (after two or more spaces).
fn transcript(readme: &str, heading: &str) -> Vec<(char, String)> {
    let at = readme.find(heading).expect("the README's heading");
    let rest = &readme[at..];
    let start = rest.find("```\n").expect("a code block") + 4;
    let end = start + rest[start..].find("```").expect("the block's end");
    rest[start..end]
        .lines()
        .filter_map(|l| {
            let (who, text) = if let Some(t) = l.strip_prefix("C:") {
                ('C', t)
            } else if let Some(t) = l.strip_prefix("S:") {
                ('S', t)
            } else {
                return None;
            };
            let text = text.strip_prefix(' ').unwrap_or(text);
            let text = match text.find("  (") {
                Some(i) => text[..i].trim_end(),
                None => text,
            };
            Some((who, text.to_string()))
        })
        .collect()
}

/// Word by word: `myhost` matches any host name, the README's queue id any queue id.
fn matches(expected: &str, got: &str) -> bool {
    let (e, g): (Vec<&str>, Vec<&str>) = (
        expected.split_whitespace().collect(),
        got.split_whitespace().collect(),
    );
    e.len() == g.len()
        && e.iter().zip(&g).all(|(e, g)| {
            e == g
                || e.strip_prefix("250-myhost").is_some() && g.starts_with("250-")
                || *e == "myhost"
                || *e == "4F2A9C01B3D7" && g.chars().all(|c| c.is_ascii_hexdigit())
        })
}

#[test]
fn the_readme_smtp_session_is_what_the_server_answers() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let lines = transcript(&readme, "## A whole SMTP session by telnet");
    assert!(lines.len() > 20, "{lines:?}");
    assert!(
        readme.contains("$ telnet 127.0.0.1 24587"),
        "the walkthrough talks to the submission port"
    );
    let s = TestServer::start();
    let mut c = Client::connect(s.submission());
    let mut diffs = Vec::new();
    for (who, text) in &lines {
        if *who == 'C' {
            c.send(text);
            continue;
        }
        let got = c.line().unwrap_or_default();
        if !matches(text, &got) {
            diffs.push(format!("README: {text}\nserver: {got}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "the README's session differs from the server's:\n{}",
        diffs.join("\n\n")
    );
    assert_eq!(s.inbox("bob@example.test").len(), 1);
}

#[test]
fn the_comparison_can_fail() {
    assert!(matches(
        "250 2.0.0 Ok: queued as 4F2A9C01B3D7",
        "250 2.0.0 Ok: queued as 00AB"
    ));
    assert!(matches(
        "220 myhost ESMTP mailroom ready",
        "220 mx.example.test ESMTP mailroom ready"
    ));
    assert!(!matches("250 2.1.0 Sender ok", "250 2.1.0 Sender <a@b> ok"));
    assert!(!matches("S: 250 AUTH PLAIN LOGIN", "S: 250 AUTH PLAIN"));
}
