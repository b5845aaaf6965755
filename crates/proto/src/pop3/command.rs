//! POP3 command parser (RFC 1939 §3-§7, RFC 2449 CAPA, RFC 5034 AUTH).
//!
//! The grammar we accept, with our deliberate leniency marked (*):
//!
//! ```text
//! command   = [*WSP] keyword [WSP args] [*WSP]   ; * surrounding blanks ignored (not for PASS)
//! keyword   = 3*4ALPHA, any case                 ; RFC 1939 §3: keywords are case-insensitive
//! user      = "USER" SP name                     ; §7; name = one word without blanks
//! pass      = "PASS" SP string                   ; §7: the rest of the line after ONE space,
//!                                                ;     verbatim (passwords may contain spaces)
//! apop      = "APOP" SP name SP digest           ; §7; digest = 32 hex digits (any case *)
//! auth      = "AUTH" [SP mechanism [SP initial-response]]   ; RFC 5034 §4; without an
//!                                                ;     argument: RFC 1734's mechanism list (*)
//! capa      = "CAPA"                             ; RFC 2449 §5
//! stls      = "STLS"                             ; RFC 2595 §4
//! quit / stat / noop / rset = keyword alone      ; §5, §6
//! list      = "LIST" [SP msg]                    ; §5
//! uidl      = "UIDL" [SP msg]                    ; §7
//! retr / dele = keyword SP msg                   ; §5
//! top       = "TOP" SP msg SP lines              ; §7
//! msg       = 1*DIGIT, 1 .. 4294967295           ; §3: "message-number" starts at 1
//! lines     = 1*DIGIT (non-negative; huge values saturate: "the whole body")
//! ```
//!
//! Where we are strict, and why: commands that take no argument refuse one (a telnet user who
//! typed `STAT 1` learns that STAT has no argument instead of being silently misunderstood);
//! numbers are plain decimal digits (no sign, no blanks inside), and 0 is refused because
//! message numbers start at 1 (RFC 1939 §3). A NUL byte anywhere or invalid UTF-8 rejects the
//! whole line (RFC 1939 §3: commands are ASCII text). The parser never panics.
//!
//! RFC 1939 §3 allows arguments of up to 40 characters; we do not enforce that (addresses and
//! AUTH initial responses are longer) — the line length limit bounds everything instead.

use std::fmt;

/// A parsed POP3 command. Which state accepts it is the session's decision, not the parser's.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name` (RFC 1939 §7).
    User(String),
    /// `PASS string` (RFC 1939 §7). Never logged: `Debug` masks it.
    Pass(String),
    /// `APOP name digest` (RFC 1939 §7); `digest` is lower-cased.
    Apop {
        /// The mailbox name.
        name: String,
        /// MD5(timestamp + secret) as 32 lower-case hex digits.
        digest: String,
    },
    /// `AUTH [mechanism [initial-response]]` (RFC 5034 §4). `mechanism` is upper-cased;
    /// `None` asks for the list of mechanisms (RFC 1734 §2 behaviour, which some clients use).
    Auth {
        /// The SASL mechanism, upper-cased.
        mechanism: Option<String>,
        /// The initial response as sent (base64, or `=` for an empty one). Never logged.
        initial_response: Option<String>,
    },
    /// `CAPA` (RFC 2449 §5).
    Capa,
    /// `STLS` (RFC 2595 §4).
    Stls,
    /// `QUIT` (RFC 1939 §5, §6).
    Quit,
    /// `STAT` (RFC 1939 §5).
    Stat,
    /// `LIST [msg]` (RFC 1939 §5).
    List(Option<u32>),
    /// `RETR msg` (RFC 1939 §5).
    Retr(u32),
    /// `DELE msg` (RFC 1939 §5).
    Dele(u32),
    /// `NOOP` (RFC 1939 §5).
    Noop,
    /// `RSET` (RFC 1939 §5).
    Rset,
    /// `TOP msg n` (RFC 1939 §7).
    Top {
        /// The message number.
        msg: u32,
        /// How many body lines to send after the header (saturated at `u64::MAX`).
        lines: u64,
    },
    /// `UIDL [msg]` (RFC 1939 §7).
    Uidl(Option<u32>),
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Pass(_) => f.write_str("Pass(****)"),
            Command::Auth {
                mechanism,
                initial_response,
            } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field(
                    "initial_response",
                    &initial_response.as_ref().map(|_| "****"),
                )
                .finish(),
            Command::User(n) => f.debug_tuple("User").field(n).finish(),
            Command::Apop { name, digest } => f
                .debug_struct("Apop")
                .field("name", name)
                .field("digest", digest)
                .finish(),
            Command::List(n) => f.debug_tuple("List").field(n).finish(),
            Command::Retr(n) => f.debug_tuple("Retr").field(n).finish(),
            Command::Dele(n) => f.debug_tuple("Dele").field(n).finish(),
            Command::Uidl(n) => f.debug_tuple("Uidl").field(n).finish(),
            Command::Top { msg, lines } => f
                .debug_struct("Top")
                .field("msg", msg)
                .field("lines", lines)
                .finish(),
            other => f.write_str(other.keyword()),
        }
    }
}

impl Command {
    /// The keyword in upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Apop { .. } => "APOP",
            Command::Auth { .. } => "AUTH",
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::Quit => "QUIT",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Top { .. } => "TOP",
            Command::Uidl(_) => "UIDL",
        }
    }

    /// RFC 1939 §3: commands valid in the AUTHORIZATION state (CAPA: RFC 2449 §5; AUTH:
    /// RFC 5034 §4; STLS: RFC 2595 §4).
    pub fn valid_in_authorization(&self) -> bool {
        matches!(
            self,
            Command::User(_)
                | Command::Pass(_)
                | Command::Apop { .. }
                | Command::Auth { .. }
                | Command::Capa
                | Command::Stls
                | Command::Quit
        )
    }

    /// RFC 1939 §3: commands valid in the TRANSACTION state (CAPA: RFC 2449 §5).
    pub fn valid_in_transaction(&self) -> bool {
        matches!(
            self,
            Command::Stat
                | Command::List(_)
                | Command::Retr(_)
                | Command::Dele(_)
                | Command::Noop
                | Command::Rset
                | Command::Top { .. }
                | Command::Uidl(_)
                | Command::Capa
                | Command::Quit
        )
    }
}

/// Every keyword [`parse_command`] knows.
pub const KEYWORDS: &[&str] = &[
    "APOP", "AUTH", "CAPA", "DELE", "LIST", "NOOP", "PASS", "QUIT", "RETR", "RSET", "STAT", "STLS",
    "TOP", "UIDL", "USER",
];

/// Why a command line was refused. Each message is a sentence telling a person at a telnet
/// prompt what to type instead; the server sends it after `-ERR `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The keyword is not one we know.
    #[error("unknown command '{keyword}'; type CAPA to see what this server understands")]
    Unknown {
        /// The keyword as typed (shortened, control characters replaced).
        keyword: String,
    },
    /// A known keyword with bad arguments; `hint` says what to type.
    #[error("{hint}")]
    Syntax {
        /// The keyword, upper-cased.
        keyword: &'static str,
        /// A complete sentence with an example.
        hint: String,
    },
    /// A NUL byte in the line (RFC 1939 §3: commands are printable text).
    #[error("the command contains a NUL byte, which POP3 does not allow; type it again")]
    Nul,
    /// The line is not valid UTF-8.
    #[error("the command is not valid UTF-8; type it again in plain text")]
    NotUtf8,
    /// An empty line.
    #[error("empty command; type a command such as USER alice@example.test, or CAPA")]
    Empty,
    /// The line was longer than the limit (reported by the line reader; RFC 2449 §4 allows
    /// 255 octets per command line, we accept `limit`).
    #[error(
        "command line too long (the limit is {limit} octets); POP3 commands are short, e.g. RETR 1"
    )]
    TooLong {
        /// The limit in force.
        limit: usize,
    },
}

fn syntax(keyword: &'static str, hint: impl Into<String>) -> CommandError {
    CommandError::Syntax {
        keyword,
        hint: hint.into(),
    }
}

/// Parses one command line (without its CRLF/LF terminator). Never panics.
pub fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    // RFC 1939 §3: commands are text; a NUL has no business there.
    if line.contains(&0) {
        return Err(CommandError::Nul);
    }
    let line = std::str::from_utf8(line).map_err(|_| CommandError::NotUtf8)?;
    // Leniency: leading blanks are ignored (telnet users). Trailing blanks are ignored for
    // every command except PASS, whose argument is the rest of the line verbatim.
    let line = line.trim_start_matches(is_wsp);
    if line.trim_end_matches(is_wsp).is_empty() {
        return Err(CommandError::Empty);
    }
    let (keyword, raw_rest) = match line.find(is_wsp) {
        Some(i) => (&line[..i], &line[i..]),
        None => (line, ""),
    };
    let rest = raw_rest.trim_matches(is_wsp);
    // RFC 1939 §3: keywords are case-insensitive.
    match keyword.to_ascii_uppercase().as_str() {
        "USER" => parse_user(rest).map(Command::User),
        "PASS" => parse_pass(raw_rest).map(Command::Pass),
        "APOP" => parse_apop(rest),
        "AUTH" => parse_auth(rest),
        "CAPA" => no_args("CAPA", rest, Command::Capa),
        "STLS" => no_args("STLS", rest, Command::Stls),
        "QUIT" => no_args("QUIT", rest, Command::Quit),
        "STAT" => no_args("STAT", rest, Command::Stat),
        "NOOP" => no_args("NOOP", rest, Command::Noop),
        "RSET" => no_args("RSET", rest, Command::Rset),
        "LIST" => optional_msg("LIST", rest).map(Command::List),
        "UIDL" => optional_msg("UIDL", rest).map(Command::Uidl),
        "RETR" => required_msg("RETR", rest).map(Command::Retr),
        "DELE" => required_msg("DELE", rest).map(Command::Dele),
        "TOP" => parse_top(rest),
        // `PASSsecret`: the reply (and so the trace) does not repeat a secret.
        _ => Err(CommandError::Unknown {
            keyword: shown(&crate::secrets::mask_secrets(keyword), 32),
        }),
    }
}

/// SP or HTAB (leniency: RFC 1939 §3 separates arguments with a single SP).
fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_wsp).filter(|w| !w.is_empty())
}

/// Client text safe to echo in a reply: at most `max` characters, control characters as '?'.
pub fn shown(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

fn no_args(keyword: &'static str, rest: &str, cmd: Command) -> Result<Command, CommandError> {
    if rest.is_empty() {
        Ok(cmd)
    } else {
        Err(syntax(
            keyword,
            format!("{keyword} takes no arguments; type just {keyword}"),
        ))
    }
}

/// RFC 1939 §7: `USER name`. One word; mailroom's names are addresses.
fn parse_user(rest: &str) -> Result<String, CommandError> {
    let mut args = words(rest);
    let Some(name) = args.next() else {
        return Err(syntax(
            "USER",
            "USER needs your user name, e.g. USER alice@example.test",
        ));
    };
    if args.next().is_some() {
        return Err(syntax(
            "USER",
            "USER takes one argument, your user name without spaces, e.g. USER alice@example.test",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(syntax(
            "USER",
            "the user name contains control characters; type e.g. USER alice@example.test",
        ));
    }
    Ok(name.to_string())
}

/// RFC 1939 §7: "PASS string". The password is everything after the single space that follows
/// the keyword, spaces included (the RFC notes that servers may allow spaces in passwords).
fn parse_pass(raw_rest: &str) -> Result<String, CommandError> {
    let pw = raw_rest
        .strip_prefix(' ')
        .or_else(|| raw_rest.strip_prefix('\t'))
        .unwrap_or(raw_rest);
    if pw.is_empty() {
        return Err(syntax("PASS", "PASS needs your password, e.g. PASS secret"));
    }
    Ok(pw.to_string())
}

const APOP_EXAMPLE: &str = "APOP alice@example.test c4c9334bac560ecc979e58001b3e22fb";

/// RFC 1939 §7: `APOP name digest`, the digest being 32 lower-case hex digits (we accept
/// upper case too and lower-case it).
fn parse_apop(rest: &str) -> Result<Command, CommandError> {
    let mut args = words(rest);
    let (Some(name), Some(digest), None) = (args.next(), args.next(), args.next()) else {
        return Err(syntax(
            "APOP",
            format!("APOP needs your user name and the MD5 digest of the greeting's <...> timestamp followed by your password, e.g. {APOP_EXAMPLE}"),
        ));
    };
    if digest.len() != 32 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(syntax(
            "APOP",
            format!("the APOP digest must be 32 hexadecimal digits, e.g. {APOP_EXAMPLE}"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(syntax(
            "APOP",
            format!("the user name contains control characters; type e.g. {APOP_EXAMPLE}"),
        ));
    }
    Ok(Command::Apop {
        name: name.to_string(),
        digest: digest.to_ascii_lowercase(),
    })
}

/// RFC 5034 §4: `AUTH mechanism [initial-response]`; a bare `AUTH` lists the mechanisms
/// (RFC 1734 behaviour).
fn parse_auth(rest: &str) -> Result<Command, CommandError> {
    let mut args = words(rest);
    let mechanism = args.next();
    let initial = args.next();
    if args.next().is_some() {
        return Err(syntax(
            "AUTH",
            "AUTH takes a mechanism and at most one initial response, e.g. AUTH PLAIN or AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=",
        ));
    }
    // RFC 4422 §3.1: mechanism names are 1-20 of A-Z, 0-9, '-' and '_'.
    if let Some(m) = mechanism {
        if m.is_empty()
            || m.len() > 20
            || !m
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(syntax(
                "AUTH",
                format!(
                    "'{}' is not a SASL mechanism name; type AUTH PLAIN or AUTH LOGIN",
                    shown(m, 32)
                ),
            ));
        }
    }
    Ok(Command::Auth {
        mechanism: mechanism.map(str::to_ascii_uppercase),
        initial_response: initial.map(str::to_string),
    })
}

/// A message number (RFC 1939 §3: "message-number" counts from 1).
fn msg_number(keyword: &'static str, arg: &str, example: &str) -> Result<u32, CommandError> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax(
            keyword,
            format!(
                "'{}' is not a message number; type a number, e.g. {example} (LIST shows your messages)",
                shown(arg, 32)
            ),
        ));
    }
    let digits = arg.trim_start_matches('0');
    if digits.is_empty() {
        return Err(syntax(
            keyword,
            format!("message numbers start at 1, e.g. {example} (LIST shows your messages)"),
        ));
    }
    digits.parse::<u32>().map_err(|_| {
        syntax(
            keyword,
            format!(
                "there is no message {}; type LIST to see your messages",
                shown(arg, 32)
            ),
        )
    })
}

fn optional_msg(keyword: &'static str, rest: &str) -> Result<Option<u32>, CommandError> {
    let mut args = words(rest);
    let example = format!("{keyword} 1");
    match (args.next(), args.next()) {
        (None, _) => Ok(None),
        (Some(n), None) => msg_number(keyword, n, &example).map(Some),
        (Some(_), Some(_)) => Err(syntax(
            keyword,
            format!("{keyword} takes at most one message number; type {keyword} or {keyword} 1"),
        )),
    }
}

fn required_msg(keyword: &'static str, rest: &str) -> Result<u32, CommandError> {
    let mut args = words(rest);
    let example = format!("{keyword} 1");
    match (args.next(), args.next()) {
        (None, _) => Err(syntax(
            keyword,
            format!("{keyword} needs a message number, e.g. {example} (LIST shows your messages)"),
        )),
        (Some(n), None) => msg_number(keyword, n, &example),
        (Some(_), Some(_)) => Err(syntax(
            keyword,
            format!("{keyword} takes one message number, e.g. {example}"),
        )),
    }
}

const TOP_EXAMPLE: &str = "TOP 1 10 (the header of message 1 and the first 10 lines of its body)";

/// RFC 1939 §7: `TOP msg n`, n a non-negative number of body lines.
fn parse_top(rest: &str) -> Result<Command, CommandError> {
    let mut args = words(rest);
    let (Some(msg), Some(lines), None) = (args.next(), args.next(), args.next()) else {
        return Err(syntax(
            "TOP",
            format!("TOP needs a message number and a number of lines, e.g. {TOP_EXAMPLE}"),
        ));
    };
    let msg = msg_number("TOP", msg, TOP_EXAMPLE)?;
    if !lines.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax(
            "TOP",
            format!(
                "'{}' is not a number of lines; type e.g. {TOP_EXAMPLE}",
                shown(lines, 32)
            ),
        ));
    }
    // More lines than fit in a u64 simply means "the whole body".
    let lines = lines.parse::<u64>().unwrap_or(u64::MAX);
    Ok(Command::Top { msg, lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn(keyword: &'static str) -> Result<Command, &'static str> {
        Err(keyword)
    }

    /// Ok(command) or Err(keyword of the syntax error / a tag for the other errors).
    fn parse(line: &[u8]) -> Result<Command, &'static str> {
        parse_command(line).map_err(|e| match e {
            CommandError::Syntax { keyword, .. } => keyword,
            CommandError::Unknown { .. } => "unknown",
            CommandError::Nul => "nul",
            CommandError::NotUtf8 => "utf8",
            CommandError::Empty => "empty",
            CommandError::TooLong { .. } => "long",
        })
    }

    #[test]
    fn table() {
        let user = |s: &str| Ok(Command::User(s.into()));
        let pass = |s: &str| Ok(Command::Pass(s.into()));
        let auth = |m: Option<&str>, r: Option<&str>| {
            Ok(Command::Auth {
                mechanism: m.map(Into::into),
                initial_response: r.map(Into::into),
            })
        };
        let cases: Vec<(&[u8], Result<Command, &'static str>)> = vec![
            // Authorization state commands.
            (b"USER alice@example.test", user("alice@example.test")),
            (b"user alice", user("alice")),
            (b"  UsEr\talice  ", user("alice")),
            (b"USER", syn("USER")),
            (b"USER ", syn("USER")),
            (b"USER a b", syn("USER")),
            (b"PASS secret", pass("secret")),
            (b"pass two words", pass("two words")),
            (b"PASS  leading", pass(" leading")),
            (b"PASS trailing ", pass("trailing ")),
            (b"PASS", syn("PASS")),
            (b"PASS ", syn("PASS")),
            (
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fb",
                Ok(Command::Apop {
                    name: "mrose".into(),
                    digest: "c4c9334bac560ecc979e58001b3e22fb".into(),
                }),
            ),
            (
                b"apop mrose C4C9334BAC560ECC979E58001B3E22FB",
                Ok(Command::Apop {
                    name: "mrose".into(),
                    digest: "c4c9334bac560ecc979e58001b3e22fb".into(),
                }),
            ),
            (b"APOP mrose", syn("APOP")),
            (b"APOP", syn("APOP")),
            (b"APOP mrose c4c9", syn("APOP")),
            (b"APOP mrose c4c9334bac560ecc979e58001b3e22fg", syn("APOP")),
            (b"APOP a b c", syn("APOP")),
            (b"AUTH", auth(None, None)),
            (b"AUTH plain", auth(Some("PLAIN"), None)),
            (
                b"AUTH PLAIN AGFsaWNlAHNlY3JldA==",
                auth(Some("PLAIN"), Some("AGFsaWNlAHNlY3JldA==")),
            ),
            (b"AUTH PLAIN =", auth(Some("PLAIN"), Some("="))),
            (
                b"AUTH LOGIN YWxpY2U=",
                auth(Some("LOGIN"), Some("YWxpY2U=")),
            ),
            (b"AUTH CRAM-MD5", auth(Some("CRAM-MD5"), None)),
            (b"AUTH PLAIN a b", syn("AUTH")),
            (b"AUTH PL@IN", syn("AUTH")),
            (b"AUTH ABCDEFGHIJKLMNOPQRSTU", syn("AUTH")),
            (b"CAPA", Ok(Command::Capa)),
            (b"capa", Ok(Command::Capa)),
            (b"CAPA x", syn("CAPA")),
            (b"STLS", Ok(Command::Stls)),
            (b"QUIT", Ok(Command::Quit)),
            (b"quit ", Ok(Command::Quit)),
            (b"QUIT now", syn("QUIT")),
            // Transaction state commands.
            (b"STAT", Ok(Command::Stat)),
            (b"STAT 1", syn("STAT")),
            (b"NOOP", Ok(Command::Noop)),
            (b"RSET", Ok(Command::Rset)),
            (b"RSET 1", syn("RSET")),
            (b"LIST", Ok(Command::List(None))),
            (b"LIST 1", Ok(Command::List(Some(1)))),
            (b"list 007", Ok(Command::List(Some(7)))),
            (b"LIST 0", syn("LIST")),
            (b"LIST 000", syn("LIST")),
            (b"LIST -1", syn("LIST")),
            (b"LIST +1", syn("LIST")),
            (b"LIST one", syn("LIST")),
            (b"LIST 1 2", syn("LIST")),
            (b"LIST 4294967295", Ok(Command::List(Some(u32::MAX)))),
            (b"LIST 4294967296", syn("LIST")),
            (b"LIST 99999999999999999999999999", syn("LIST")),
            (b"UIDL", Ok(Command::Uidl(None))),
            (b"UIDL 2", Ok(Command::Uidl(Some(2)))),
            (b"UIDL x", syn("UIDL")),
            (b"RETR 1", Ok(Command::Retr(1))),
            (b"retr\t12", Ok(Command::Retr(12))),
            (b"RETR", syn("RETR")),
            (b"RETR 0", syn("RETR")),
            (b"RETR 1 2", syn("RETR")),
            (b"RETR 1.5", syn("RETR")),
            (b"RETR 1x", syn("RETR")),
            (b"DELE 3", Ok(Command::Dele(3))),
            (b"DELE", syn("DELE")),
            (b"DELE a", syn("DELE")),
            (b"TOP 1 0", Ok(Command::Top { msg: 1, lines: 0 })),
            (b"top 2 10", Ok(Command::Top { msg: 2, lines: 10 })),
            (
                b"TOP 1 99999999999999999999999999",
                Ok(Command::Top {
                    msg: 1,
                    lines: u64::MAX,
                }),
            ),
            (b"TOP 1", syn("TOP")),
            (b"TOP", syn("TOP")),
            (b"TOP 0 1", syn("TOP")),
            (b"TOP 1 -1", syn("TOP")),
            (b"TOP 1 x", syn("TOP")),
            (b"TOP 1 2 3", syn("TOP")),
            // Everything else.
            (b"XYZ", Err("unknown")),
            (b"LAST", Err("unknown")),
            (b"RETR1", Err("unknown")),
            (b"", Err("empty")),
            (b"   ", Err("empty")),
            (b"\t", Err("empty")),
            (b"US\0ER alice", Err("nul")),
            (b"PASS se\0cret", Err("nul")),
            (b"\0", Err("nul")),
            (b"USER \xff", Err("utf8")),
            (
                "USER jörg@example.test".as_bytes(),
                user("jörg@example.test"),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line), want, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn messages_are_helpful_sentences() {
        let msg = |l: &[u8]| parse_command(l).unwrap_err().to_string();
        assert_eq!(
            msg(b"XYZ"),
            "unknown command 'XYZ'; type CAPA to see what this server understands"
        );
        assert_eq!(
            msg(b"RETR"),
            "RETR needs a message number, e.g. RETR 1 (LIST shows your messages)"
        );
        assert_eq!(
            msg(b"RETR 0"),
            "message numbers start at 1, e.g. RETR 1 (LIST shows your messages)"
        );
        assert_eq!(
            msg(b"DELE abc"),
            "'abc' is not a message number; type a number, e.g. DELE 1 (LIST shows your messages)"
        );
        assert_eq!(msg(b"STAT 1"), "STAT takes no arguments; type just STAT");
        assert!(msg(b"TOP 1").contains("TOP 1 10"));
        assert!(msg(b"USER").contains("USER alice@example.test"));
        assert!(msg(b"\0").contains("NUL"));
        assert_eq!(
            CommandError::TooLong { limit: 2048 }.to_string(),
            "command line too long (the limit is 2048 octets); POP3 commands are short, e.g. RETR 1"
        );
    }

    #[test]
    fn unknown_keyword_is_shortened_and_sanitized() {
        let long = format!("{}\x07", "X".repeat(100));
        let e = parse_command(long.as_bytes()).unwrap_err();
        let CommandError::Unknown { keyword } = e else {
            panic!("{e:?}")
        };
        assert_eq!(keyword, format!("{}...", "X".repeat(32)));
        let e = parse_command(b"A\x1bB").unwrap_err().to_string();
        assert!(e.contains("'A?B'"), "{e}");
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        // The trace masks client lines itself (crate::secrets::mask_secrets); this
        // is about `{:?}` of a parsed command.
        let c = parse_command(b"PASS hunter2").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let c = parse_command(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==").unwrap();
        assert!(!format!("{c:?}").contains("AGFs"));
    }

    #[test]
    fn states() {
        let auth_only = [
            "USER a",
            "PASS b",
            "APOP a 0123456789abcdef0123456789abcdef",
            "AUTH PLAIN",
            "STLS",
        ];
        let trans_only = [
            "STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL",
        ];
        for l in auth_only {
            let c = parse_command(l.as_bytes()).unwrap();
            assert!(
                c.valid_in_authorization() && !c.valid_in_transaction(),
                "{l}"
            );
        }
        for l in trans_only {
            let c = parse_command(l.as_bytes()).unwrap();
            assert!(
                !c.valid_in_authorization() && c.valid_in_transaction(),
                "{l}"
            );
        }
        for l in ["CAPA", "QUIT"] {
            let c = parse_command(l.as_bytes()).unwrap();
            assert!(
                c.valid_in_authorization() && c.valid_in_transaction(),
                "{l}"
            );
        }
    }

    #[test]
    fn every_keyword_parses_to_itself() {
        for k in KEYWORDS {
            let line = match *k {
                "USER" | "PASS" => format!("{k} x"),
                "APOP" => format!("{k} x 0123456789abcdef0123456789abcdef"),
                "RETR" | "DELE" => format!("{k} 1"),
                "TOP" => format!("{k} 1 1"),
                _ => k.to_string(),
            };
            assert_eq!(parse_command(line.as_bytes()).unwrap().keyword(), *k);
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap deterministic fuzz: every keyword with assorted junk arguments.
        let junk: &[&[u8]] = &[
            b"",
            b" ",
            b"\t",
            b"0",
            b"1",
            b" 1 ",
            b"-",
            b"\xff",
            b"\xc3",
            b" \xc3\xa9",
            b"=",
            b"*",
            b" 1 1 1",
            b" 18446744073709551616 1",
            b" 1 18446744073709551616",
            b"\r",
            b"\n",
        ];
        for k in KEYWORDS.iter().chain(&["X", ""]) {
            for a in junk {
                for b in junk {
                    let mut line = k.as_bytes().to_vec();
                    line.extend_from_slice(a);
                    line.extend_from_slice(b);
                    let _ = parse_command(&line);
                }
            }
        }
    }
}
