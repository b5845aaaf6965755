//! Delivery status notifications (RFC 3464): a multipart/report (RFC 6522) with a readable
//! explanation, a message/delivery-status part, and the original message's headers.

/// One recipient that could not be delivered.
#[derive(Debug, Clone)]
pub struct Failure {
    pub recipient: String,
    /// Enhanced status code, e.g. "5.1.1" (RFC 3463).
    pub status: String,
    /// The remote server's reply or our own reason, e.g. "550 5.1.1 <x>: no such user here".
    pub diagnostic: String,
    /// The host that gave the reply, when there was one.
    pub remote_mta: Option<String>,
}

/// Builds the DSN message sent to `original_sender` (From MAILER-DAEMON, envelope sender `<>`).
pub fn build_dsn(
    hostname: &str,
    original_sender: &str,
    arrival_unix: i64,
    failures: &[Failure],
    original: &[u8],
) -> Vec<u8> {
    let boundary = format!("=_mailroom_{:016x}", rand::random::<u64>());
    let now = chrono::Utc::now().to_rfc2822();
    let arrival = chrono::DateTime::from_timestamp(arrival_unix, 0)
        .map(|d| d.to_rfc2822())
        .unwrap_or_else(|| now.clone());
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"
    ));
    m.push_str(&format!("To: <{original_sender}>\r\n"));
    m.push_str("Subject: Undelivered Mail Returned to Sender\r\n");
    m.push_str(&format!("Date: {now}\r\n"));
    m.push_str(&format!(
        "Message-ID: <{:016x}.dsn@{hostname}>\r\n",
        rand::random::<u64>()
    ));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str("This is a MIME-encapsulated delivery status notification.\r\n\r\n");

    // Part 1: for people.
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ));
    m.push_str(&format!(
        "This is the mail system at {hostname}.\r\n\r\nYour message could not be delivered to the following recipient(s):\r\n\r\n"
    ));
    for f in failures {
        m.push_str(&format!("  <{}>\r\n", f.recipient));
        match &f.remote_mta {
            Some(host) => m.push_str(&format!(
                "    {host} said: {}\r\n\r\n",
                one_line(&f.diagnostic)
            )),
            None => m.push_str(&format!("    {}\r\n\r\n", one_line(&f.diagnostic))),
        }
    }
    m.push_str("The headers of your message follow in the last part.\r\n\r\n");

    // Part 2: machine-readable status (RFC 3464 §2.2, §2.3).
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    m.push_str(&format!("Reporting-MTA: dns; {hostname}\r\n"));
    m.push_str(&format!("Arrival-Date: {arrival}\r\n"));
    for f in failures {
        m.push_str("\r\n");
        m.push_str(&format!("Final-Recipient: rfc822; {}\r\n", f.recipient));
        m.push_str("Action: failed\r\n");
        m.push_str(&format!("Status: {}\r\n", f.status));
        if let Some(host) = &f.remote_mta {
            m.push_str(&format!("Remote-MTA: dns; {host}\r\n"));
            m.push_str(&format!(
                "Diagnostic-Code: smtp; {}\r\n",
                one_line(&f.diagnostic)
            ));
        } else {
            m.push_str(&format!(
                "Diagnostic-Code: X-mailroom; {}\r\n",
                one_line(&f.diagnostic)
            ));
        }
        m.push_str(&format!("Last-Attempt-Date: {now}\r\n"));
    }
    m.push_str("\r\n");

    // Part 3: the original headers (RFC 6522 §3: text/rfc822-headers).
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ));
    let mut out = m.into_bytes();
    out.extend_from_slice(header_section(original));
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// The header section of a message (up to and including the line before the blank line).
fn header_section(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") {
        return &[];
    }
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &message[..i + 2],
        None => message,
    }
}

fn one_line(s: &str) -> String {
    s.split(['\r', '\n'])
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The enhanced status code in a reply text ("550 5.1.1 ..." → "5.1.1"), or a default by class.
pub fn status_of(code: u16, text: &str) -> String {
    let word = text.split_whitespace().next().unwrap_or("");
    let parts: Vec<&str> = word.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return word.to_string();
    }
    if code >= 500 {
        "5.0.0".into()
    } else {
        "4.0.0".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_has_the_three_parts() {
        let dsn = build_dsn(
            "mx.a.test",
            "alice@a.test",
            0,
            &[Failure {
                recipient: "nobody@b.test".into(),
                status: "5.1.1".into(),
                diagnostic: "550 5.1.1 <nobody@b.test>: no such user here".into(),
                remote_mta: Some("127.0.0.1".into()),
            }],
            b"Subject: hi\r\nFrom: alice@a.test\r\n\r\nsecret body\r\n",
        );
        let t = String::from_utf8(dsn).unwrap();
        assert!(t.contains("Content-Type: multipart/report; report-type=delivery-status;"));
        assert!(t.contains(
            "Final-Recipient: rfc822; nobody@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
        assert!(t.contains("Diagnostic-Code: smtp; 550 5.1.1 <nobody@b.test>: no such user here"));
        assert!(t.contains(
            "Content-Type: text/rfc822-headers\r\n\r\nSubject: hi\r\nFrom: alice@a.test\r\n"
        ));
        assert!(!t.contains("secret body"), "only the headers are returned");
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_of(550, "5.1.1 no such user"), "5.1.1");
        assert_eq!(status_of(550, "no such user"), "5.0.0");
        assert_eq!(status_of(451, "try later"), "4.0.0");
    }
}
