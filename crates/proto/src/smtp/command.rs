//! SMTP command parser (RFC 5321 §4.1 and the extensions mailroom speaks).
//!
//! The grammar we accept, with our deliberate leniency marked (*):
//!
//! ```text
//! command    = [*WSP] verb [WSP args] [*WSP]           ; * leading/trailing blanks ignored
//! verb       = any case (*)                           ; RFC 5321 §2.4: verbs are case-insensitive
//! helo       = "HELO" SP name                          ; RFC 5321 §4.1.1.1 (any printable token)
//! ehlo       = "EHLO" SP name
//! mail       = "MAIL FROM:" [*WSP] Reverse-path [SP Mail-parameters]   ; §4.1.1.2
//! rcpt       = "RCPT TO:" [*WSP] ( "<Postmaster>" / Forward-path ) [SP Rcpt-parameters] ; §4.1.1.3
//! data       = "DATA"                                  ; §4.1.1.4
//! bdat       = "BDAT" SP 1*20DIGIT [SP "LAST"]         ; RFC 3030 §2
//! rset / quit / starttls = verb alone                  ; §4.1.1.5, §4.1.1.10, RFC 3207 §4
//! noop       = "NOOP" [SP String]                      ; §4.1.1.9: the argument is ignored
//! vrfy / expn = verb SP String                         ; §4.1.1.6, §4.1.1.7
//! help       = "HELP" [SP String]                      ; §4.1.1.8
//! auth       = "AUTH" SP sasl-mech [SP (base64 / "=")] ; RFC 4954 §4
//!
//! Reverse-path = Path / "<>"                           ; §4.1.2
//! Path       = "<" [ A-d-l ":" ] Mailbox ">"           ; the source route A-d-l is dropped (§3.3, §C)
//!            / Mailbox (*)                             ; unbracketed, as Postfix accepts
//! Mailbox    = Local-part "@" ( Domain / address-literal )
//! Local-part = Dot-string / Quoted-string              ; UTF-8 allowed, RFC 6531 §3.3
//! address-literal = "[" ( IPv4 / "IPv6:" IPv6 ) "]"   ; §4.1.3
//! esmtp-param = esmtp-keyword ["=" esmtp-value]        ; §4.1.2
//! esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
//! esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii) ; RFC 6531 §3.3
//! ```
//!
//! Where we are strict, and why: HELO/EHLO need exactly one argument; MAIL needs `FROM:` and RCPT
//! needs `TO:`; `<>` is only a reverse path; an address needs an `@` and a domain (only RCPT's
//! `<Postmaster>` may go without, §4.1.1.3); the length limits of §4.5.3.1.1 (local part 64
//! octets) and §4.5.3.1.2 (domain 255 octets) are enforced; verbs without arguments refuse them.
//! A NUL byte anywhere or invalid UTF-8 rejects the whole line. The parser never panics.
//!
//! Whether an UTF-8 address is acceptable (the client must have said SMTPUTF8, RFC 6531 §3.4)
//! is a session decision for the server: see [`Address::is_ascii`].

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::reply::EnhancedCode;

/// A mailbox `local@domain`. `local` is stored unquoted (a quoted local part's quotes and
/// backslash escapes are removed); [`fmt::Display`] quotes it again when needed. Both parts keep
/// their case; compare domains with [`Address::domain_lower`]. An address literal keeps its
/// brackets in `domain` (`[127.0.0.1]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// The local part, unquoted.
    pub local: String,
    /// The domain or address literal as written.
    pub domain: String,
}

/// Why a string is not a valid mailbox. The messages complete `bad address <x>: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Nothing at all.
    #[error("the address is empty")]
    Empty,
    /// No `@domain` part.
    #[error("it has no @domain part")]
    NoDomain,
    /// Nothing before the `@`.
    #[error("there is nothing before the @")]
    EmptyLocal,
    /// RFC 5321 §4.5.3.1.1.
    #[error("the part before the @ is longer than 64 octets")]
    LocalTooLong,
    /// RFC 5321 §4.5.3.1.2.
    #[error("the domain is longer than 255 octets")]
    DomainTooLong,
    /// Not a Dot-string nor a Quoted-string.
    #[error("the part before the @ is not valid (special characters and spaces need double quotes, e.g. \"john doe\"@example.test)")]
    BadLocal,
    /// Not a domain name.
    #[error("the domain is not a valid domain name")]
    BadDomain,
    /// `[...]` that is neither IPv4 nor `IPv6:` (RFC 5321 §4.1.3).
    #[error("an address literal must be [IPv4 address] or [IPv6:IPv6 address]")]
    BadLiteral,
}

impl Address {
    /// Parses a mailbox (no angle brackets): `Local-part "@" ( Domain / address-literal )`,
    /// RFC 5321 §4.1.2, with UTF-8 allowed in both parts as RFC 6531 §3.3 extends it.
    pub fn parse(s: &str) -> Result<Address, AddressError> {
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        let (local_raw, rest) = if s.starts_with('"') {
            let end = quoted_end(s).ok_or(AddressError::BadLocal)?;
            s.split_at(end)
        } else {
            // '@' is not atext, so the first '@' ends a Dot-string.
            match s.find('@') {
                Some(i) => s.split_at(i),
                None => (s, ""),
            }
        };
        let domain = match rest.strip_prefix('@') {
            Some(d) => d,
            None if rest.is_empty() => return Err(AddressError::NoDomain),
            None => return Err(AddressError::BadLocal),
        };
        if local_raw.is_empty() {
            return Err(AddressError::EmptyLocal);
        }
        if domain.is_empty() {
            return Err(AddressError::NoDomain);
        }
        // RFC 5321 §4.5.3.1.1: 64 octets for the local part (as transmitted).
        if local_raw.len() > 64 {
            return Err(AddressError::LocalTooLong);
        }
        // RFC 5321 §4.5.3.1.2: 255 octets for a domain.
        if domain.len() > 255 {
            return Err(AddressError::DomainTooLong);
        }
        let local = if local_raw.starts_with('"') {
            unquote(local_raw).ok_or(AddressError::BadLocal)?
        } else if is_dot_string(local_raw) {
            local_raw.to_string()
        } else {
            return Err(AddressError::BadLocal);
        };
        if local.is_empty() {
            // `""@example.test`: allowed by the grammar, "SHOULD be avoided" (§4.1.2); refused.
            return Err(AddressError::EmptyLocal);
        }
        validate_domain(domain)?;
        Ok(Address {
            local,
            domain: domain.to_string(),
        })
    }

    /// The domain in lower case, for comparisons (domains are case-insensitive, RFC 5321 §2.4).
    pub fn domain_lower(&self) -> String {
        self.domain.to_lowercase()
    }

    /// True when both parts are ASCII; otherwise the transaction needs SMTPUTF8 (RFC 6531 §3.4).
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.is_ascii()
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_dot_string(&self.local) {
            f.write_str(&self.local)?;
        } else {
            // RFC 5321 §4.1.2: Quoted-string, with "\" and DQUOTE escaped as quoted-pairs.
            f.write_str("\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        }
        write!(f, "@{}", self.domain)
    }
}

/// The MAIL FROM path; `<>` is the null reverse path used by bounces (RFC 5321 §4.5.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversePath {
    /// `<>`.
    Null,
    /// A sender mailbox.
    Address(Address),
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Address(a) => write!(f, "<{a}>"),
        }
    }
}

/// The RCPT TO path; `<Postmaster>` without a domain is the local postmaster (RFC 5321 §4.1.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    /// `<Postmaster>` (any case) without a domain.
    Postmaster,
    /// A recipient mailbox.
    Address(Address),
}

impl fmt::Display for ForwardPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<Postmaster>"),
            ForwardPath::Address(a) => write!(f, "<{a}>"),
        }
    }
}

/// An ESMTP parameter of MAIL or RCPT (`SIZE=1000`, `BODY=8BITMIME`, `SMTPUTF8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The keyword, upper-cased (keywords are case-insensitive, RFC 5321 §2.4).
    pub keyword: String,
    /// The value as sent, if any.
    pub value: Option<String>,
}

/// A parsed SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `HELO name` (RFC 5321 §4.1.1.1).
    Helo(String),
    /// `EHLO name` (RFC 5321 §4.1.1.1).
    Ehlo(String),
    /// `MAIL FROM:<path> [params]` (RFC 5321 §4.1.1.2).
    Mail {
        /// The reverse path.
        from: ReversePath,
        /// ESMTP parameters.
        params: Vec<Param>,
    },
    /// `RCPT TO:<path> [params]` (RFC 5321 §4.1.1.3).
    Rcpt {
        /// The forward path.
        to: ForwardPath,
        /// ESMTP parameters.
        params: Vec<Param>,
    },
    /// `DATA` (RFC 5321 §4.1.1.4).
    Data,
    /// `BDAT size [LAST]` (RFC 3030 §2).
    Bdat {
        /// Chunk size in octets.
        size: u64,
        /// `LAST` was given.
        last: bool,
    },
    /// `RSET` (RFC 5321 §4.1.1.5).
    Rset,
    /// `NOOP [string]` (RFC 5321 §4.1.1.9).
    Noop,
    /// `QUIT` (RFC 5321 §4.1.1.10).
    Quit,
    /// `STARTTLS` (RFC 3207 §4).
    StartTls,
    /// `VRFY string` (RFC 5321 §4.1.1.6).
    Vrfy(String),
    /// `EXPN string` (RFC 5321 §4.1.1.7).
    Expn(String),
    /// `HELP [topic]` (RFC 5321 §4.1.1.8).
    Help(Option<String>),
    /// `AUTH mechanism [initial-response]` (RFC 4954 §4).
    Auth {
        /// The SASL mechanism name, upper-cased.
        mechanism: String,
        /// The initial response as sent (base64, or `=` for an empty one); never logged.
        initial_response: Option<String>,
    },
}

impl Command {
    /// The verb in upper case, for traces and HELP.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Helo(_) => "HELO",
            Command::Ehlo(_) => "EHLO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::StartTls => "STARTTLS",
            Command::Vrfy(_) => "VRFY",
            Command::Expn(_) => "EXPN",
            Command::Help(_) => "HELP",
            Command::Auth { .. } => "AUTH",
        }
    }
}

/// Every verb [`parse_command`] knows, in the order HELP lists them.
pub const VERBS: &[&str] = &[
    "AUTH", "BDAT", "DATA", "EHLO", "EXPN", "HELO", "HELP", "MAIL", "NOOP", "QUIT", "RCPT", "RSET",
    "STARTTLS", "VRFY",
];

/// Why a command line was refused. Each message is a complete sentence telling a person at a
/// telnet prompt what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The verb is not one we know.
    #[error("unknown command '{verb}'; try HELP")]
    Unknown {
        /// The verb as typed (shortened, control characters replaced).
        verb: String,
    },
    /// A known verb with bad arguments; `hint` says what to type.
    #[error("{hint}")]
    Syntax {
        /// The verb, upper-cased.
        verb: &'static str,
        /// A complete sentence with an example.
        hint: String,
    },
    /// A NUL byte in the line (RFC 5321 §4.1.1: commands are text).
    #[error("the command contains a NUL byte, which SMTP does not allow; type it again")]
    Nul,
    /// A CR followed by NUL: what telnet sends for a carriage return that is not the end of
    /// the line (RFC 854), e.g. for `printf 'EHLO x\r\n' | telnet ...`, whose `\r` telnet
    /// sends as CR NUL before its own CR LF.
    #[error("the command contains a CR followed by a NUL byte: telnet sends a carriage return that way when it is not the line end (printf's \\r, say); end lines with \\n only when piping into telnet, or use nc -C; type it again")]
    CrNul,
    /// The line is not valid UTF-8.
    #[error("the command is not valid UTF-8; type it again in plain text")]
    NotUtf8,
    /// An empty line.
    #[error("empty command; type a command such as EHLO your.host.name, or HELP")]
    Empty,
}

impl CommandError {
    /// True for an unknown verb (500 5.5.1); every other error is about syntax (501).
    pub fn is_unknown(&self) -> bool {
        matches!(self, CommandError::Unknown { .. })
    }

    /// Suggested basic reply code (RFC 5321 §4.2.2): 500 for an unknown command, 501 otherwise.
    pub fn code(&self) -> u16 {
        if self.is_unknown() {
            500
        } else {
            501
        }
    }

    /// Suggested enhanced code (RFC 3463 §3.6): 5.5.1 invalid command, 5.5.4 invalid
    /// arguments, 5.5.2 a line that could not be interpreted at all.
    pub fn enhanced(&self) -> EnhancedCode {
        match self {
            CommandError::Unknown { .. } => EnhancedCode(5, 5, 1),
            CommandError::Syntax { .. } => EnhancedCode(5, 5, 4),
            CommandError::Nul
            | CommandError::CrNul
            | CommandError::NotUtf8
            | CommandError::Empty => EnhancedCode(5, 5, 2),
        }
    }
}

fn syntax(verb: &'static str, hint: impl Into<String>) -> CommandError {
    CommandError::Syntax {
        verb,
        hint: hint.into(),
    }
}

/// Parses one command line (without its CRLF/LF terminator). Never panics.
pub fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    // RFC 5321 §4.1.1 commands are text lines; a NUL has no business there.
    if line.windows(2).any(|w| w == b"\r\0") {
        return Err(CommandError::CrNul);
    }
    if line.contains(&0) {
        return Err(CommandError::Nul);
    }
    // RFC 6531 §3.3 allows UTF-8 in addresses; anything else that is not UTF-8 is refused.
    let line = std::str::from_utf8(line).map_err(|_| CommandError::NotUtf8)?;
    // Leniency: leading and trailing blanks (telnet users) are ignored.
    let line = line.trim_matches(is_wsp);
    if line.is_empty() {
        return Err(CommandError::Empty);
    }
    let (verb, rest) = match line.find(is_wsp) {
        Some(i) => (&line[..i], line[i..].trim_start_matches(is_wsp)),
        None => (line, ""),
    };
    // RFC 5321 §2.4: verbs are case-insensitive.
    match verb.to_ascii_uppercase().as_str() {
        "HELO" => parse_helo("HELO", rest).map(Command::Helo),
        "EHLO" => parse_helo("EHLO", rest).map(Command::Ehlo),
        "MAIL" => parse_mail(rest),
        "RCPT" => parse_rcpt(rest),
        "DATA" => no_args("DATA", rest, Command::Data),
        "RSET" => no_args("RSET", rest, Command::Rset),
        "QUIT" => no_args("QUIT", rest, Command::Quit),
        "STARTTLS" => no_args("STARTTLS", rest, Command::StartTls),
        // RFC 5321 §4.1.1.9: "NOOP [ SP String ]"; the string is ignored.
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help(if rest.is_empty() {
            None
        } else {
            Some(rest.to_string())
        })),
        "VRFY" => one_string("VRFY", rest, "VRFY bob or VRFY bob@example.test").map(Command::Vrfy),
        "EXPN" => one_string("EXPN", rest, "EXPN staff").map(Command::Expn),
        "BDAT" => parse_bdat(rest),
        "AUTH" => parse_auth(rest),
        // `PASSsecret`, `AUTHsecret`: the reply (and so the trace) does not repeat a secret.
        _ => Err(CommandError::Unknown {
            verb: shown(&crate::secrets::mask_secrets(verb), 32),
        }),
    }
}

/// SP or HTAB: the blanks we accept between tokens (RFC 5234 WSP; leniency, RFC 5321 uses SP).
fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Client text safe to echo in a reply: at most `max` characters, control characters as '?'.
fn shown(s: &str, max: usize) -> String {
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

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_wsp).filter(|w| !w.is_empty())
}

fn no_args(verb: &'static str, rest: &str, cmd: Command) -> Result<Command, CommandError> {
    if rest.is_empty() {
        Ok(cmd)
    } else {
        Err(syntax(
            verb,
            format!("{verb} takes no arguments; type just {verb}"),
        ))
    }
}

fn one_string(verb: &'static str, rest: &str, example: &str) -> Result<String, CommandError> {
    if rest.is_empty() {
        Err(syntax(
            verb,
            format!("{verb} needs an argument, e.g. {example}"),
        ))
    } else {
        Ok(rest.to_string())
    }
}

/// RFC 5321 §4.1.1.1. The argument should be the client's FQDN or an address literal, but
/// §4.1.4 forbids refusing mail because it is wrong, and lab clients send all sorts of names,
/// so any printable token of at most 255 octets is accepted.
fn parse_helo(verb: &'static str, rest: &str) -> Result<String, CommandError> {
    let example = format!("{verb} needs your host name, e.g. {verb} pc1.example.test");
    let mut args = words(rest);
    let Some(name) = args.next() else {
        return Err(syntax(verb, example));
    };
    if args.next().is_some() {
        return Err(syntax(
            verb,
            format!("{verb} takes only one argument, your host name, e.g. {verb} pc1.example.test"),
        ));
    }
    if name.len() > 255 || name.chars().any(char::is_control) {
        return Err(syntax(verb, example));
    }
    Ok(name.to_string())
}

const MAIL_EXAMPLE: &str = "MAIL FROM:<you@example.test>";
const RCPT_EXAMPLE: &str = "RCPT TO:<friend@example.test>";

/// RFC 5321 §4.1.1.2: `MAIL FROM:<reverse-path> [SP Mail-parameters]`.
fn parse_mail(rest: &str) -> Result<Command, CommandError> {
    let Some(after) = strip_prefix_ignore_case(rest, "FROM:") else {
        return Err(syntax(
            "MAIL",
            format!("MAIL needs FROM: and the sender's address; type {MAIL_EXAMPLE} (or MAIL FROM:<> for a bounce)"),
        ));
    };
    let (path, params) = split_path("MAIL", after, MAIL_EXAMPLE)?;
    let from = match path {
        // RFC 5321 §4.5.5: the null reverse path.
        Path::Bracketed("") => ReversePath::Null,
        Path::Bracketed(p) | Path::Bare(p) => {
            ReversePath::Address(mailbox("MAIL", p, MAIL_EXAMPLE)?)
        }
    };
    let params = parse_params("MAIL", params, MAIL_EXAMPLE)?;
    Ok(Command::Mail { from, params })
}

/// RFC 5321 §4.1.1.3: `RCPT TO:( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )`.
fn parse_rcpt(rest: &str) -> Result<Command, CommandError> {
    let Some(after) = strip_prefix_ignore_case(rest, "TO:") else {
        return Err(syntax(
            "RCPT",
            format!("RCPT needs TO: and the recipient's address; type {RCPT_EXAMPLE}"),
        ));
    };
    let (path, params) = split_path("RCPT", after, RCPT_EXAMPLE)?;
    let to = match path {
        Path::Bracketed("") => {
            return Err(syntax(
                "RCPT",
                format!(
                "<> is not a recipient (it is only allowed in MAIL FROM:<>); type {RCPT_EXAMPLE}"
            ),
            ))
        }
        // RFC 5321 §4.1.1.3: "Postmaster" without a domain, case-insensitive.
        Path::Bracketed(p) | Path::Bare(p) if p.eq_ignore_ascii_case("postmaster") => {
            ForwardPath::Postmaster
        }
        Path::Bracketed(p) | Path::Bare(p) => {
            ForwardPath::Address(mailbox("RCPT", p, RCPT_EXAMPLE)?)
        }
    };
    let params = parse_params("RCPT", params, RCPT_EXAMPLE)?;
    Ok(Command::Rcpt { to, params })
}

/// What stood where a path belongs.
enum Path<'a> {
    /// `<...>`: the content between the brackets, blanks trimmed.
    Bracketed(&'a str),
    /// Leniency (Postfix does the same): an address without angle brackets.
    Bare(&'a str),
}

/// Splits `[*WSP] path [WSP params]` into the path and the parameter text.
fn split_path<'a>(
    verb: &'static str,
    s: &'a str,
    example: &str,
) -> Result<(Path<'a>, &'a str), CommandError> {
    let s = s.trim_start_matches(is_wsp);
    if s.is_empty() {
        return Err(syntax(
            verb,
            format!("{verb} needs an address after the colon; type {example}"),
        ));
    }
    if let Some(inner) = s.strip_prefix('<') {
        let Some(end) = find_outside_quotes(inner, |c| c == '>') else {
            return Err(syntax(
                verb,
                format!("the address is missing its closing '>'; type {example}"),
            ));
        };
        let after = &inner[end + 1..];
        if !after.is_empty() && !after.starts_with(is_wsp) {
            return Err(syntax(
                verb,
                format!(
                    "put a space between the address and '{}'; type {example}",
                    shown(after, 32)
                ),
            ));
        }
        Ok((Path::Bracketed(inner[..end].trim_matches(is_wsp)), after))
    } else {
        let end = find_outside_quotes(s, is_wsp).unwrap_or(s.len());
        Ok((Path::Bare(&s[..end]), &s[end..]))
    }
}

/// Byte index of the first char matching `want` outside a quoted string (RFC 5321 §4.1.2
/// Quoted-string, with backslash quoted-pairs).
fn find_outside_quotes(s: &str, want: impl Fn(char) -> bool) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
        } else if c == '"' {
            in_quotes = true;
        } else if want(c) {
            return Some(i);
        }
    }
    None
}

/// Parses the content of a path: drops a source route (RFC 5321 §4.1.2 A-d-l; §3.3 and
/// Appendix C say to accept and ignore it), then parses the mailbox.
fn mailbox(verb: &'static str, path: &str, example: &str) -> Result<Address, CommandError> {
    let mailbox = match strip_source_route(path) {
        Some(m) => m,
        None => {
            return Err(syntax(
                verb,
                format!(
                    "bad source route in <{}>; routes are obsolete, just type {example}",
                    shown(path, 80)
                ),
            ))
        }
    };
    Address::parse(mailbox).map_err(|e| {
        syntax(
            verb,
            format!("bad address <{}>: {e}; type {example}", shown(mailbox, 80)),
        )
    })
}

/// `A-d-l = At-domain *( "," At-domain ) ":"` followed by the mailbox. Returns the mailbox,
/// or `None` for a malformed route. A path without a route is returned unchanged.
fn strip_source_route(path: &str) -> Option<&str> {
    if !path.starts_with('@') {
        return Some(path);
    }
    // The ':' ending the route, outside an address literal ("@[IPv6:::1]" has colons).
    let mut in_literal = false;
    let mut colon = None;
    for (i, c) in path.char_indices() {
        match c {
            '[' => in_literal = true,
            ']' => in_literal = false,
            ':' if !in_literal => {
                colon = Some(i);
                break;
            }
            _ => {}
        }
    }
    let colon = colon?;
    for hop in path[..colon].split(',') {
        let domain = hop.strip_prefix('@')?;
        if domain.is_empty() || domain.len() > 255 || validate_domain(domain).is_err() {
            return None;
        }
    }
    Some(&path[colon + 1..])
}

/// RFC 5321 §4.1.2 `Mail-parameters = esmtp-param *(SP esmtp-param)`.
fn parse_params(verb: &'static str, s: &str, example: &str) -> Result<Vec<Param>, CommandError> {
    let mut params = Vec::new();
    for word in words(s) {
        let (keyword, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        let keyword_ok = keyword
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
            && keyword
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531 §3.3).
        let value_ok = value.is_none_or(|v| {
            !v.is_empty()
                && v.chars().all(|c| {
                    if c.is_ascii() {
                        c.is_ascii_graphic() && c != '='
                    } else {
                        !c.is_control()
                    }
                })
        });
        if !keyword_ok || !value_ok {
            return Err(syntax(
                verb,
                format!(
                    "bad parameter '{}': parameters look like KEYWORD or KEYWORD=value after a space, e.g. {example} SIZE=1000",
                    shown(word, 64)
                ),
            ));
        }
        params.push(Param {
            keyword: keyword.to_ascii_uppercase(),
            value: value.map(str::to_string),
        });
    }
    Ok(params)
}

/// RFC 3030 §2: `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ]`,
/// `chunk-size = 1*DIGIT`, `end-marker = "LAST"`. We bound the size to 20 digits (u64).
fn parse_bdat(rest: &str) -> Result<Command, CommandError> {
    let hint = || {
        syntax(
            "BDAT",
            "BDAT needs the chunk size in octets and, for the last chunk, LAST, e.g. BDAT 1000 LAST",
        )
    };
    let mut args = words(rest);
    let size = args.next().ok_or_else(hint)?;
    if size.is_empty() || size.len() > 20 || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(hint());
    }
    let size: u64 = size.parse().map_err(|_| hint())?;
    let last = match args.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(hint()),
    };
    if args.next().is_some() {
        return Err(hint());
    }
    Ok(Command::Bdat { size, last })
}

/// RFC 4954 §4: `"AUTH" SP sasl-mech [SP initial-response]`; RFC 4422 §3.1:
/// `sasl-mech = 1*20mech-char`, `mech-char = UPPER-ALPHA / DIGIT / "-" / "_"` (we accept any
/// case and upper-case it). The initial response is kept as sent (`=` included): the server
/// decodes it (see [`crate::sasl::decode_response`]).
fn parse_auth(rest: &str) -> Result<Command, CommandError> {
    let hint = || {
        syntax(
            "AUTH",
            "AUTH needs a mechanism and optionally an initial response, e.g. AUTH PLAIN or AUTH LOGIN",
        )
    };
    let mut args = words(rest);
    let mechanism = args.next().ok_or_else(hint)?;
    if mechanism.len() > 20
        || !mechanism
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(hint());
    }
    let initial_response = args.next().map(str::to_string);
    if args.next().is_some() {
        return Err(hint());
    }
    Ok(Command::Auth {
        mechanism: mechanism.to_ascii_uppercase(),
        initial_response,
    })
}

/// RFC 5322 §3.2.3 atext as used by RFC 5321 §4.1.2 Atom, extended with UTF-8 (RFC 6531 §3.3).
fn is_atext(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
    } else {
        !c.is_control()
    }
}

/// `Dot-string = Atom *("." Atom)`.
fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// Index just past the closing DQUOTE of the Quoted-string starting `s`.
fn quoted_end(s: &str) -> Option<usize> {
    let inner = s.strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(1 + i + 1);
        }
    }
    None
}

/// The content of a Quoted-string (RFC 5321 §4.1.2 QcontentSMTP), quoted-pairs resolved.
fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            // quoted-pairSMTP = %d92 %d32-126
            '\\' => match chars.next() {
                Some(e @ ' '..='~') => out.push(e),
                _ => return None,
            },
            // qtextSMTP = %d32-33 / %d35-91 / %d93-126 / UTF8-non-ascii
            '"' => return None,
            ' '..='~' => out.push(c),
            c if !c.is_ascii() && !c.is_control() => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

/// `Domain / address-literal` (RFC 5321 §4.1.2, §4.1.3), U-labels allowed (RFC 6531 §3.3).
fn validate_domain(d: &str) -> Result<(), AddressError> {
    if let Some(rest) = d.strip_prefix('[') {
        let inner = rest.strip_suffix(']').ok_or(AddressError::BadLiteral)?;
        // RFC 5321 §4.1.3: IPv6-address-literal = "IPv6:" IPv6-addr (the tag is case-insensitive
        // as all ABNF strings are).
        if let Some(v6) = strip_prefix_ignore_case(inner, "IPv6:") {
            return v6
                .parse::<Ipv6Addr>()
                .map(|_| ())
                .map_err(|_| AddressError::BadLiteral);
        }
        // General-address-literal needs an IANA-registered tag; none is besides IPv6, so only
        // IPv4 remains.
        return inner
            .parse::<Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| AddressError::BadLiteral);
    }
    for label in d.split('.') {
        if !is_label(label) {
            return Err(AddressError::BadDomain);
        }
    }
    Ok(())
}

/// `sub-domain = Let-dig [Ldh-str]` (max 63 octets, RFC 1035 §2.3.4), or a U-label.
fn is_label(label: &str) -> bool {
    if label.is_ascii() {
        let b = label.as_bytes();
        match (b.first(), b.last()) {
            (Some(first), Some(last)) => {
                b.len() <= 63
                    && first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            }
            _ => false,
        }
    } else {
        // A U-label (RFC 5890); full IDNA validation is left to the DNS. We only refuse
        // characters that can never be part of a label.
        !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| {
                if c.is_ascii() {
                    c.is_ascii_alphanumeric() || c == '-'
                } else {
                    !c.is_control() && !c.is_whitespace()
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(local: &str, domain: &str) -> Address {
        Address {
            local: local.into(),
            domain: domain.into(),
        }
    }

    fn mail(local: &str, domain: &str) -> Command {
        Command::Mail {
            from: ReversePath::Address(addr(local, domain)),
            params: vec![],
        }
    }

    fn rcpt(local: &str, domain: &str) -> Command {
        Command::Rcpt {
            to: ForwardPath::Address(addr(local, domain)),
            params: vec![],
        }
    }

    fn param(k: &str, v: Option<&str>) -> Param {
        Param {
            keyword: k.into(),
            value: v.map(Into::into),
        }
    }

    /// Expected outcome: a command, or a syntax error of the given verb, or another error.
    enum Want {
        Ok(Command),
        Syntax(&'static str),
        Err(CommandError),
    }
    use Want::*;

    #[test]
    fn command_table() {
        let long_local = format!("MAIL FROM:<{}@example.test>", "a".repeat(64));
        let too_long_local = format!("MAIL FROM:<{}@example.test>", "a".repeat(65));
        let domain_255 = vec!["d".repeat(63); 4].join(".");
        let long_domain = format!("RCPT TO:<a@{domain_255}>");
        let too_long_domain = format!("RCPT TO:<a@b.{domain_255}>");
        let long_label = format!("RCPT TO:<a@{}.test>", "x".repeat(64));
        let helo_255 = format!("HELO {}", "h".repeat(255));
        let helo_256 = format!("HELO {}", "h".repeat(256));
        let cases: Vec<(&str, Want)> = vec![
            // HELO / EHLO (RFC 5321 §4.1.1.1)
            (
                "HELO pc1.example.test",
                Ok(Command::Helo("pc1.example.test".into())),
            ),
            ("helo pc1", Ok(Command::Helo("pc1".into()))),
            ("EHLO [192.0.2.1]", Ok(Command::Ehlo("[192.0.2.1]".into()))),
            ("ehlo   x.test   ", Ok(Command::Ehlo("x.test".into()))),
            ("  EHLO x.test", Ok(Command::Ehlo("x.test".into()))),
            ("EHLO\tx.test", Ok(Command::Ehlo("x.test".into()))),
            ("HELO", Syntax("HELO")),
            ("HELO   ", Syntax("HELO")),
            ("EHLO", Syntax("EHLO")),
            ("HELO a b", Syntax("HELO")),
            ("HELO a\x01b", Syntax("HELO")),
            (&helo_255, Ok(Command::Helo("h".repeat(255)))),
            (&helo_256, Syntax("HELO")),
            // MAIL (RFC 5321 §4.1.1.2), the lenient forms first
            (
                "MAIL FROM:<alice@example.test>",
                Ok(mail("alice", "example.test")),
            ),
            (
                "mail from:<alice@example.test>",
                Ok(mail("alice", "example.test")),
            ),
            (
                "MAIL FROM: <alice@example.test>",
                Ok(mail("alice", "example.test")),
            ),
            (
                "MAIL from:alice@example.test",
                Ok(mail("alice", "example.test")),
            ),
            (
                "MAIL FROM: alice@example.test",
                Ok(mail("alice", "example.test")),
            ),
            (
                "MAIL From: info@sender.test",
                Ok(mail("info", "sender.test")),
            ),
            (
                "MAIL   FROM:<alice@example.test>   ",
                Ok(mail("alice", "example.test")),
            ),
            (
                "MAIL FROM:< alice@example.test >",
                Ok(mail("alice", "example.test")),
            ),
            (
                "MAIL FROM:<Alice@Example.TEST>",
                Ok(mail("Alice", "Example.TEST")),
            ),
            (
                "MAIL FROM:<>",
                Ok(Command::Mail {
                    from: ReversePath::Null,
                    params: vec![],
                }),
            ),
            (
                "MAIL FROM: <> SIZE=100",
                Ok(Command::Mail {
                    from: ReversePath::Null,
                    params: vec![param("SIZE", Some("100"))],
                }),
            ),
            (
                "MAIL FROM:<a@b.test> size=1000 body=8BITMIME SMTPUTF8",
                Ok(Command::Mail {
                    from: ReversePath::Address(addr("a", "b.test")),
                    params: vec![
                        param("SIZE", Some("1000")),
                        param("BODY", Some("8BITMIME")),
                        param("SMTPUTF8", None),
                    ],
                }),
            ),
            (
                "MAIL FROM: a@b.test SIZE=10",
                Ok(Command::Mail {
                    from: ReversePath::Address(addr("a", "b.test")),
                    params: vec![param("SIZE", Some("10"))],
                }),
            ),
            (
                "MAIL FROM:<a@b.test>  AUTH=<>  X-FOO-1=bar",
                Ok(Command::Mail {
                    from: ReversePath::Address(addr("a", "b.test")),
                    params: vec![param("AUTH", Some("<>")), param("X-FOO-1", Some("bar"))],
                }),
            ),
            // source routes are dropped (RFC 5321 §3.3, Appendix C)
            (
                "MAIL FROM:<@x.test,@y.test:u@d.test>",
                Ok(mail("u", "d.test")),
            ),
            ("MAIL FROM:<@[IPv6:::1]:u@d.test>", Ok(mail("u", "d.test"))),
            ("MAIL FROM:<@x.test:u@d.test>", Ok(mail("u", "d.test"))),
            ("MAIL FROM:<@:u@d.test>", Syntax("MAIL")),
            ("MAIL FROM:<@x.test u@d.test>", Syntax("MAIL")),
            ("MAIL FROM:<@x.test,y.test:u@d.test>", Syntax("MAIL")),
            // quoted local parts and literals (RFC 5321 §4.1.2, §4.1.3)
            (
                "MAIL FROM:<\"john doe\"@example.test>",
                Ok(mail("john doe", "example.test")),
            ),
            (
                "MAIL FROM:\"john doe\"@example.test",
                Ok(mail("john doe", "example.test")),
            ),
            (
                "MAIL FROM:<\"a>b\"@example.test>",
                Ok(mail("a>b", "example.test")),
            ),
            (
                "MAIL FROM:<\"a\\\"b\"@example.test>",
                Ok(mail("a\"b", "example.test")),
            ),
            (
                "MAIL FROM:<user@[127.0.0.1]>",
                Ok(mail("user", "[127.0.0.1]")),
            ),
            ("RCPT TO:<user@[IPv6:::1]>", Ok(rcpt("user", "[IPv6:::1]"))),
            (
                "RCPT TO:<user@[ipv6:2001:db8::1]>",
                Ok(rcpt("user", "[ipv6:2001:db8::1]")),
            ),
            ("RCPT TO:<user@[300.0.0.1]>", Syntax("RCPT")),
            ("RCPT TO:<user@[IPv6:zz]>", Syntax("RCPT")),
            ("RCPT TO:<user@[x-tag:stuff]>", Syntax("RCPT")),
            ("RCPT TO:<user@[127.0.0.1>", Syntax("RCPT")),
            // SMTPUTF8 (RFC 6531 §3.3)
            (
                "MAIL FROM:<jörg@bücher.example>",
                Ok(mail("jörg", "bücher.example")),
            ),
            ("RCPT TO:<用户@例子.广告>", Ok(rcpt("用户", "例子.广告"))),
            // MAIL, strict
            ("MAIL", Syntax("MAIL")),
            ("MAIL alice@example.test", Syntax("MAIL")),
            ("MAIL FROM <alice@example.test>", Syntax("MAIL")),
            ("MAIL TO:<alice@example.test>", Syntax("MAIL")),
            ("MAIL FROM:", Syntax("MAIL")),
            ("MAIL FROM:   ", Syntax("MAIL")),
            ("MAIL FROM:<alice>", Syntax("MAIL")),
            ("MAIL FROM:alice", Syntax("MAIL")),
            ("MAIL FROM:<alice@>", Syntax("MAIL")),
            ("MAIL FROM:<@example.test>", Syntax("MAIL")),
            ("MAIL FROM:<alice@example.test", Syntax("MAIL")),
            ("MAIL FROM:<alice@example.test>SIZE=1", Syntax("MAIL")),
            ("MAIL FROM:<a b@example.test>", Syntax("MAIL")),
            ("MAIL FROM:<a..b@example.test>", Syntax("MAIL")),
            ("MAIL FROM:<.a@example.test>", Syntax("MAIL")),
            ("MAIL FROM:<a.@example.test>", Syntax("MAIL")),
            ("MAIL FROM:<\"\"@example.test>", Syntax("MAIL")),
            ("MAIL FROM:<\"unterminated@example.test>", Syntax("MAIL")),
            ("MAIL FROM:<\"a\"b@example.test>", Syntax("MAIL")),
            ("MAIL FROM:<a@example..test>", Syntax("MAIL")),
            ("MAIL FROM:<a@example.test.>", Syntax("MAIL")),
            ("MAIL FROM:<a@-example.test>", Syntax("MAIL")),
            ("MAIL FROM:<a@example-.test>", Syntax("MAIL")),
            ("MAIL FROM:<a@exa_mple.test>", Syntax("MAIL")),
            ("MAIL FROM:<a@b@example.test>", Syntax("MAIL")),
            ("MAIL FROM:<a@b.test> =x", Syntax("MAIL")),
            ("MAIL FROM:<a@b.test> -X", Syntax("MAIL")),
            ("MAIL FROM:<a@b.test> SIZE=", Syntax("MAIL")),
            ("MAIL FROM:<a@b.test> SIZE=1=2", Syntax("MAIL")),
            ("MAIL FROM:<a@b.test> K_Y=1", Syntax("MAIL")),
            ("MAIL FROM:<a@b.test> SIZE=1\x7f", Syntax("MAIL")),
            (&long_local, Ok(mail(&"a".repeat(64), "example.test"))),
            (&too_long_local, Syntax("MAIL")),
            // RCPT (RFC 5321 §4.1.1.3)
            (
                "RCPT TO:<bob@example.test>",
                Ok(rcpt("bob", "example.test")),
            ),
            (
                "rcpt to:<bob@example.test>",
                Ok(rcpt("bob", "example.test")),
            ),
            (
                "RCPT TO: <bob@example.test>",
                Ok(rcpt("bob", "example.test")),
            ),
            (
                "RCPT To: info@example.test",
                Ok(rcpt("info", "example.test")),
            ),
            ("RCPT TO:bob@example.test", Ok(rcpt("bob", "example.test"))),
            (
                "RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.test",
                Ok(Command::Rcpt {
                    to: ForwardPath::Address(addr("bob", "example.test")),
                    params: vec![
                        param("NOTIFY", Some("SUCCESS,FAILURE")),
                        param("ORCPT", Some("rfc822;bob@example.test")),
                    ],
                }),
            ),
            (
                "RCPT TO:<Postmaster>",
                Ok(Command::Rcpt {
                    to: ForwardPath::Postmaster,
                    params: vec![],
                }),
            ),
            (
                "RCPT TO:<postmaster>",
                Ok(Command::Rcpt {
                    to: ForwardPath::Postmaster,
                    params: vec![],
                }),
            ),
            (
                "RCPT TO: POSTMASTER",
                Ok(Command::Rcpt {
                    to: ForwardPath::Postmaster,
                    params: vec![],
                }),
            ),
            (
                "RCPT TO:<Postmaster@example.test>",
                Ok(rcpt("Postmaster", "example.test")),
            ),
            ("RCPT TO:<>", Syntax("RCPT")),
            ("RCPT TO: <>", Syntax("RCPT")),
            ("RCPT TO:<bob>", Syntax("RCPT")),
            ("RCPT TO:bob", Syntax("RCPT")),
            ("RCPT bob@example.test", Syntax("RCPT")),
            ("RCPT FROM:<bob@example.test>", Syntax("RCPT")),
            ("RCPT TO:", Syntax("RCPT")),
            ("RCPT", Syntax("RCPT")),
            (&long_domain, Ok(rcpt("a", &domain_255))),
            (&too_long_domain, Syntax("RCPT")),
            (&long_label, Syntax("RCPT")),
            // DATA / RSET / QUIT / STARTTLS take no arguments
            ("DATA", Ok(Command::Data)),
            ("data  ", Ok(Command::Data)),
            ("DATA now", Syntax("DATA")),
            ("RSET", Ok(Command::Rset)),
            ("RSET x", Syntax("RSET")),
            ("QUIT", Ok(Command::Quit)),
            ("quit", Ok(Command::Quit)),
            ("QUIT now", Syntax("QUIT")),
            ("STARTTLS", Ok(Command::StartTls)),
            ("StartTLS", Ok(Command::StartTls)),
            ("STARTTLS x", Syntax("STARTTLS")),
            // NOOP ignores its argument, HELP has an optional one, VRFY/EXPN need one
            ("NOOP", Ok(Command::Noop)),
            ("NOOP anything at all", Ok(Command::Noop)),
            ("HELP", Ok(Command::Help(None))),
            ("HELP  MAIL ", Ok(Command::Help(Some("MAIL".into())))),
            ("VRFY bob", Ok(Command::Vrfy("bob".into()))),
            ("VRFY John Smith", Ok(Command::Vrfy("John Smith".into()))),
            ("VRFY", Syntax("VRFY")),
            ("EXPN staff", Ok(Command::Expn("staff".into()))),
            ("EXPN", Syntax("EXPN")),
            // BDAT (RFC 3030 §2)
            (
                "BDAT 1000",
                Ok(Command::Bdat {
                    size: 1000,
                    last: false,
                }),
            ),
            (
                "BDAT 0 LAST",
                Ok(Command::Bdat {
                    size: 0,
                    last: true,
                }),
            ),
            (
                "bdat 12 last",
                Ok(Command::Bdat {
                    size: 12,
                    last: true,
                }),
            ),
            (
                "BDAT 007",
                Ok(Command::Bdat {
                    size: 7,
                    last: false,
                }),
            ),
            (
                "BDAT 18446744073709551615 LAST",
                Ok(Command::Bdat {
                    size: u64::MAX,
                    last: true,
                }),
            ),
            ("BDAT 18446744073709551616", Syntax("BDAT")),
            ("BDAT 000000000000000000001", Syntax("BDAT")),
            ("BDAT", Syntax("BDAT")),
            ("BDAT -1", Syntax("BDAT")),
            ("BDAT +1", Syntax("BDAT")),
            ("BDAT 1x", Syntax("BDAT")),
            ("BDAT 1 FIRST", Syntax("BDAT")),
            ("BDAT 1 LAST x", Syntax("BDAT")),
            ("BDAT ١٢", Syntax("BDAT")),
            // AUTH (RFC 4954 §4)
            (
                "AUTH LOGIN",
                Ok(Command::Auth {
                    mechanism: "LOGIN".into(),
                    initial_response: None,
                }),
            ),
            (
                "auth plain AGFsaWNlAHNlY3JldA==",
                Ok(Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial_response: Some("AGFsaWNlAHNlY3JldA==".into()),
                }),
            ),
            (
                "AUTH PLAIN =",
                Ok(Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial_response: Some("=".into()),
                }),
            ),
            (
                "AUTH CRAM-MD5",
                Ok(Command::Auth {
                    mechanism: "CRAM-MD5".into(),
                    initial_response: None,
                }),
            ),
            (
                "AUTH SCRAM-SHA-256-PLUS",
                Ok(Command::Auth {
                    mechanism: "SCRAM-SHA-256-PLUS".into(),
                    initial_response: None,
                }),
            ),
            ("AUTH", Syntax("AUTH")),
            ("AUTH PLAIN a b", Syntax("AUTH")),
            ("AUTH PL@IN", Syntax("AUTH")),
            ("AUTH ABCDEFGHIJKLMNOPQRSTU", Syntax("AUTH")),
            // unknown verbs and broken lines
            ("XYZ", Err(CommandError::Unknown { verb: "XYZ".into() })),
            (
                "MAILFROM:<a@b.test>",
                Err(CommandError::Unknown {
                    verb: "MAILFROM:<a@b.test>".into(),
                }),
            ),
            (
                "TURN",
                Err(CommandError::Unknown {
                    verb: "TURN".into(),
                }),
            ),
            (
                "QUIT\r",
                Err(CommandError::Unknown {
                    verb: "QUIT?".into(),
                }),
            ),
            ("", Err(CommandError::Empty)),
            ("   \t ", Err(CommandError::Empty)),
        ];
        for (line, want) in cases {
            let got = parse_command(line.as_bytes());
            match want {
                Ok(cmd) => assert_eq!(got, Result::Ok(cmd), "{line:?}"),
                Syntax(verb) => match got {
                    Result::Err(CommandError::Syntax { verb: v, hint }) => {
                        assert_eq!(v, verb, "{line:?}");
                        assert!(!hint.is_empty());
                    }
                    other => panic!("{line:?}: expected a {verb} syntax error, got {other:?}"),
                },
                Err(e) => assert_eq!(got, Result::Err(e), "{line:?}"),
            }
        }
    }

    #[test]
    fn byte_level_errors() {
        let cases: &[(&[u8], CommandError)] = &[
            (b"MAIL FROM:<a\0@b.test>", CommandError::Nul),
            (b"\0", CommandError::Nul),
            (b"QUIT\0", CommandError::Nul),
            (b"EHLO x\r\0", CommandError::CrNul),
            (b"\xff\0", CommandError::Nul),
            (b"HELO \xff\xfe", CommandError::NotUtf8),
            (b"MAIL FROM:<j\xf6rg@example.test>", CommandError::NotUtf8),
        ];
        for (line, want) in cases {
            assert_eq!(parse_command(line).as_ref(), Result::Err(want), "{line:?}");
        }
    }

    #[test]
    fn hints_tell_the_user_what_to_type() {
        let cases: &[(&str, &str)] = &[
            (
                "HELO",
                "HELO needs your host name, e.g. HELO pc1.example.test",
            ),
            (
                "EHLO",
                "EHLO needs your host name, e.g. EHLO pc1.example.test",
            ),
            ("MAIL", "MAIL FROM:<you@example.test>"),
            (
                "MAIL FROM:alice",
                "bad address <alice>: it has no @domain part",
            ),
            ("RCPT TO:<>", "only allowed in MAIL FROM:<>"),
            ("DATA now", "DATA takes no arguments; type just DATA"),
            ("BDAT x", "BDAT 1000 LAST"),
            ("AUTH", "AUTH PLAIN"),
            ("VRFY", "VRFY needs an argument"),
            ("XYZ", "unknown command 'XYZ'; try HELP"),
            ("", "EHLO"),
        ];
        for (line, fragment) in cases {
            let e = parse_command(line.as_bytes()).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains(fragment),
                "{line:?}: {msg:?} lacks {fragment:?}"
            );
        }
    }

    #[test]
    fn echoed_text_is_shortened_and_sanitized() {
        let verb = format!("X{}", "y".repeat(100));
        let e = parse_command(verb.as_bytes()).unwrap_err();
        let CommandError::Unknown { verb } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(verb.chars().count(), 35);
        let e = parse_command(b"X\x1b[2J").unwrap_err();
        assert_eq!(
            e,
            CommandError::Unknown {
                verb: "X?[2J".into()
            }
        );
        let e = parse_command(b"MAIL FROM:<a\x07@b.test>").unwrap_err();
        assert!(!e.to_string().contains('\x07'), "{e}");
    }

    #[test]
    fn error_codes() {
        let unknown = parse_command(b"XYZ").unwrap_err();
        assert!(unknown.is_unknown());
        assert_eq!(
            (unknown.code(), unknown.enhanced()),
            (500, EnhancedCode(5, 5, 1))
        );
        let syntax = parse_command(b"HELO").unwrap_err();
        assert!(!syntax.is_unknown());
        assert_eq!(
            (syntax.code(), syntax.enhanced()),
            (501, EnhancedCode(5, 5, 4))
        );
        for e in [
            CommandError::Nul,
            CommandError::NotUtf8,
            CommandError::Empty,
        ] {
            assert!(!e.is_unknown());
            assert_eq!((e.code(), e.enhanced()), (501, EnhancedCode(5, 5, 2)));
        }
    }

    #[test]
    fn verbs() {
        let cases: &[(&str, &str)] = &[
            ("HELO x", "HELO"),
            ("EHLO x", "EHLO"),
            ("MAIL FROM:<>", "MAIL"),
            ("RCPT TO:<Postmaster>", "RCPT"),
            ("DATA", "DATA"),
            ("BDAT 1", "BDAT"),
            ("RSET", "RSET"),
            ("NOOP", "NOOP"),
            ("QUIT", "QUIT"),
            ("STARTTLS", "STARTTLS"),
            ("VRFY x", "VRFY"),
            ("EXPN x", "EXPN"),
            ("HELP", "HELP"),
            ("AUTH PLAIN", "AUTH"),
        ];
        assert_eq!(cases.len(), VERBS.len());
        for (line, verb) in cases {
            assert_eq!(parse_command(line.as_bytes()).unwrap().verb(), *verb);
            assert!(VERBS.contains(verb));
        }
    }

    #[test]
    fn address_table() {
        type Case = (
            &'static str,
            Result<(&'static str, &'static str), AddressError>,
        );
        let cases: &[Case] = &[
            ("a@b", Result::Ok(("a", "b"))),
            (
                "first.last+tag@sub.example.test",
                Result::Ok(("first.last+tag", "sub.example.test")),
            ),
            (
                "!#$%&'*+-/=?^_`{|}~@x.test",
                Result::Ok(("!#$%&'*+-/=?^_`{|}~", "x.test")),
            ),
            (
                "\"john doe\"@example.test",
                Result::Ok(("john doe", "example.test")),
            ),
            ("\"a\\\\b\"@x.test", Result::Ok(("a\\b", "x.test"))),
            ("\"a@b\"@x.test", Result::Ok(("a@b", "x.test"))),
            ("u@[192.0.2.1]", Result::Ok(("u", "[192.0.2.1]"))),
            (
                "u@[IPv6:2001:db8::1]",
                Result::Ok(("u", "[IPv6:2001:db8::1]")),
            ),
            ("u@123.example", Result::Ok(("u", "123.example"))),
            (
                "u@xn--bcher-kva.example",
                Result::Ok(("u", "xn--bcher-kva.example")),
            ),
            ("", Result::Err(AddressError::Empty)),
            ("alice", Result::Err(AddressError::NoDomain)),
            ("alice@", Result::Err(AddressError::NoDomain)),
            ("@x.test", Result::Err(AddressError::EmptyLocal)),
            ("\"\"@x.test", Result::Err(AddressError::EmptyLocal)),
            ("\"a\"", Result::Err(AddressError::NoDomain)),
            ("\"a\"x@x.test", Result::Err(AddressError::BadLocal)),
            ("\"a\\\"@x.test", Result::Err(AddressError::BadLocal)),
            ("\"a\tb\"@x.test", Result::Err(AddressError::BadLocal)),
            ("a(b)@x.test", Result::Err(AddressError::BadLocal)),
            ("a\u{85}b@x.test", Result::Err(AddressError::BadLocal)),
            ("a@x..test", Result::Err(AddressError::BadDomain)),
            ("a@.x.test", Result::Err(AddressError::BadDomain)),
            ("a@x test", Result::Err(AddressError::BadDomain)),
            ("a@bü-.test", Result::Err(AddressError::BadDomain)),
            ("a@[1.2.3]", Result::Err(AddressError::BadLiteral)),
            ("a@[IPv6:1.2.3.4]", Result::Err(AddressError::BadLiteral)),
            ("a@[]", Result::Err(AddressError::BadLiteral)),
            ("a@[1.2.3.4", Result::Err(AddressError::BadLiteral)),
        ];
        for (s, want) in cases {
            let got = Address::parse(s);
            let want = want.clone().map(|(l, d)| addr(l, d));
            assert_eq!(got, want, "{s:?}");
        }
        let local65 = format!("{}@x.test", "a".repeat(65));
        assert_eq!(
            Address::parse(&local65),
            Result::Err(AddressError::LocalTooLong)
        );
        // 64 octets of UTF-8 (32 two-octet characters) is fine, 66 is not.
        let utf8_64 = format!("{}@x.test", "é".repeat(32));
        assert!(Address::parse(&utf8_64).is_ok());
        let utf8_66 = format!("{}@x.test", "é".repeat(33));
        assert_eq!(
            Address::parse(&utf8_66),
            Result::Err(AddressError::LocalTooLong)
        );
        let domain256 = format!("a@{}", "a.".repeat(128));
        assert_eq!(
            Address::parse(&domain256),
            Result::Err(AddressError::DomainTooLong)
        );
    }

    #[test]
    fn address_display_and_helpers() {
        let cases: &[(&str, &str)] = &[
            ("alice@example.test", "alice@example.test"),
            ("\"john doe\"@example.test", "\"john doe\"@example.test"),
            ("\"john\"@example.test", "john@example.test"),
            ("\"a\\\"b\"@example.test", "\"a\\\"b\"@example.test"),
            ("\"a\\\\b\"@example.test", "\"a\\\\b\"@example.test"),
            ("\"a..b\"@example.test", "\"a..b\"@example.test"),
            ("u@[IPv6:::1]", "u@[IPv6:::1]"),
        ];
        for (input, shown) in cases {
            let a: Address = input.parse().unwrap();
            assert_eq!(a.to_string(), *shown);
            // Display output parses back to the same address.
            assert_eq!(Address::parse(&a.to_string()), Result::Ok(a));
        }
        let a = Address::parse("Bob@Example.TEST").unwrap();
        assert_eq!(a.domain_lower(), "example.test");
        assert_eq!(a.domain, "Example.TEST");
        assert!(a.is_ascii());
        assert!(!Address::parse("bob@bücher.example").unwrap().is_ascii());
        assert_eq!(ReversePath::Null.to_string(), "<>");
        assert_eq!(
            ReversePath::Address(a.clone()).to_string(),
            "<Bob@Example.TEST>"
        );
        assert_eq!(ForwardPath::Postmaster.to_string(), "<Postmaster>");
        assert_eq!(ForwardPath::Address(a).to_string(), "<Bob@Example.TEST>");
    }

    #[test]
    fn never_panics_on_awkward_input() {
        let mut inputs: Vec<Vec<u8>> = vec![
            b"MAIL FROM:<\"".to_vec(),
            b"MAIL FROM:<\"\\".to_vec(),
            b"MAIL FROM:\"\\".to_vec(),
            b"MAIL FROM:<@".to_vec(),
            b"MAIL FROM:<@[".to_vec(),
            b"MAIL FROM:<@[:".to_vec(),
            b"RCPT TO:<a@[".to_vec(),
            b"RCPT TO:<a@[]".to_vec(),
            b"RCPT TO:<a@[IPv6:".to_vec(),
            "RCPT TO:<é@é>".as_bytes().to_vec(),
            "MAIL FROMé".as_bytes().to_vec(),
            "MAIL FRO".as_bytes().to_vec(),
            "RCPT T".as_bytes().to_vec(),
            "MAIL FROM:<a@b> é=é".as_bytes().to_vec(),
        ];
        // Every prefix of some tricky lines, cut at every byte.
        for line in [
            "MAIL FROM:<@[IPv6:::1],@x.test:\"jö \\\"hn\"@[IPv6:2001:db8::1]> SIZE=1 X=é",
            "RCPT TO: \"a b\"@例子.广告 NOTIFY=NEVER",
            "BDAT 18446744073709551615 LAST",
        ] {
            for i in 0..=line.len() {
                inputs.push(line.as_bytes()[..i].to_vec());
            }
        }
        for input in inputs {
            let _ = parse_command(&input);
        }
    }
}
