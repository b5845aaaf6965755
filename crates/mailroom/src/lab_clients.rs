//! Clients for the socket-lab services: `mailroom calc` and `mailroom sntp`.
//!
//! Both are blocking std::net clients with a timeout on every wait. Exit status: 0 = answer,
//! 1 = the server answered with an error (`ERR ...`, or an SNTP kiss-o'-death), 2 = no usable
//! answer (timeout, refused, connection lost). The SNTP packet code and the RFC 4330 §5
//! offset/delay math are `mailroom_services::sntp`; this file only does the I/O and printing.
use anyhow::{bail, Context};
use mailroom_services::client::{sntp_query, QueryError};
use mailroom_services::sntp::{self, Measurement};
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

/// Exit status when the server answered with an error.
const EXIT_SERVER_ERROR: u8 = 1;
/// Exit status when no usable answer came.
const EXIT_NO_ANSWER: u8 = 2;

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = mailroom_services::config::parse_duration(s)?;
    if d.is_zero() {
        return Err("the timeout must be more than 0".into());
    }
    Ok(d)
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without EXPR, reads one expression per line from standard input and prints each answer.
Put options before EXPR: everything after EXPR's first word belongs to the expression.
Exit status: 0 result, 1 the server answered ERR, 2 no answer (timeout, refused, closed).

Why the timeout? Over UDP a lost request, a lost answer and a server that is not running all
look the same: nothing arrives. Without a timeout the client would wait forever.")]
pub struct CalcArgs {
    /// The calculator server, HOST:PORT (e.g. 127.0.0.1:2030).
    pub server: String,
    /// Use UDP (one datagram per request) instead of TCP.
    #[arg(long, short = 'u')]
    pub udp: bool,
    /// How long to wait for each answer ("5s", "500ms", or seconds).
    #[arg(long, short = 't', default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// The expression, e.g. `2*(3+4)` or `ADD 3 4`; several words are joined with spaces.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub expr: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Prints the server's stratum, reference id, leap indicator, the clock offset and round-trip
delay (RFC 4330 §5: offset = ((T2-T1)+(T3-T4))/2, delay = (T4-T1)-(T3-T2)) and the server's
time. A positive offset means the server's clock is ahead of this one. Never sets the clock.
Exit status: 0 answer, 1 kiss-o'-death, 2 no answer.")]
pub struct SntpArgs {
    /// The server: HOST or HOST:PORT (default port 123), e.g. 127.0.0.1:2123 or [::1]:2123.
    pub server: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the answer ("5s", "500ms", or seconds).
    #[arg(long, short = 't', default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// Resolves `HOST:PORT`, `[v6]:PORT`, or (with `default_port`) `HOST`, `v6`.
fn resolve(server: &str, default_port: Option<u16>) -> anyhow::Result<SocketAddr> {
    if let Ok(a) = server.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let (Ok(ip), Some(port)) = (server.parse::<IpAddr>(), default_port) {
        return Ok(SocketAddr::new(ip, port));
    }
    let with_port = match server.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => {
            server.to_string()
        }
        _ => match default_port {
            Some(p) => format!("{server}:{p}"),
            None => bail!("{server:?} is not HOST:PORT (e.g. 127.0.0.1:2030)"),
        },
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {server:?}"))?
        .next()
        .with_context(|| format!("{server:?} has no address"))
}

fn no_answer(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("mailroom calc: {msg}");
    ExitCode::from(EXIT_NO_ANSWER)
}

fn udp_silence_text(addr: SocketAddr, timeout: Duration) -> String {
    format!(
        "no answer from {addr} within {timeout:?} over UDP: the request or the answer may have \
         been lost, or no calculator runs there (UDP itself never tells, which is why a client \
         needs a timeout)"
    )
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One transport's way of asking one question.
enum Conn {
    Tcp {
        reader: BufReader<TcpStream>,
        writer: TcpStream,
    },
    Udp(UdpSocket),
}

enum Answer {
    Line(String),
    /// Exit with this status (the message is printed already).
    Fail(ExitCode),
}

impl Conn {
    fn open(addr: SocketAddr, udp: bool, timeout: Duration) -> Result<Conn, ExitCode> {
        if udp {
            let local: SocketAddr = if addr.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                SocketAddr::from(([0u16; 8], 0))
            };
            let sock = UdpSocket::bind(local)
                .and_then(|s| s.connect(addr).map(|_| s))
                .map_err(|e| no_answer(format!("cannot use UDP to {addr}: {e}")))?;
            return Ok(Conn::Udp(sock));
        }
        let s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| {
            if is_timeout(&e) {
                no_answer(format!(
                    "cannot connect to {addr}: no answer within {timeout:?}"
                ))
            } else {
                no_answer(format!("cannot connect to {addr}: {e}"))
            }
        })?;
        let _ = s.set_nodelay(true);
        let reader = s
            .try_clone()
            .map(BufReader::new)
            .map_err(|e| no_answer(format!("{addr}: {e}")))?;
        Ok(Conn::Tcp { reader, writer: s })
    }

    fn ask(&mut self, addr: SocketAddr, expr: &str, timeout: Duration) -> Answer {
        match self {
            Conn::Tcp { reader, writer } => {
                let sent = writer
                    .set_write_timeout(Some(timeout))
                    .and_then(|_| writer.write_all(format!("{expr}\r\n").as_bytes()));
                if let Err(e) = sent {
                    return Answer::Fail(no_answer(format!("cannot send to {addr}: {e}")));
                }
                if let Err(e) = reader.get_ref().set_read_timeout(Some(timeout)) {
                    return Answer::Fail(no_answer(format!("{addr}: {e}")));
                }
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) => Answer::Fail(no_answer(format!(
                        "{addr} closed the connection without an answer"
                    ))),
                    Ok(_) => Answer::Line(line.trim_end_matches(['\r', '\n']).to_string()),
                    Err(e) if is_timeout(&e) => Answer::Fail(no_answer(format!(
                        "no answer from {addr} within {timeout:?}: the connection is open but \
                         nothing came back (is this the calculator?)"
                    ))),
                    Err(e) => Answer::Fail(no_answer(format!("reading from {addr}: {e}"))),
                }
            }
            Conn::Udp(sock) => {
                // Drop late answers to earlier requests so they are not taken for this one.
                let mut buf = vec![0u8; 65_536];
                if sock.set_nonblocking(true).is_ok() {
                    while sock.recv(&mut buf).is_ok() {}
                    let _ = sock.set_nonblocking(false);
                }
                if let Err(e) = sock.send(expr.as_bytes()) {
                    return Answer::Fail(no_answer(format!("cannot send to {addr}: {e}")));
                }
                if let Err(e) = sock.set_read_timeout(Some(timeout)) {
                    return Answer::Fail(no_answer(format!("{addr}: {e}")));
                }
                match sock.recv(&mut buf) {
                    Ok(n) => Answer::Line(
                        String::from_utf8_lossy(&buf[..n])
                            .trim_end_matches(['\r', '\n'])
                            .to_string(),
                    ),
                    Err(e) if is_timeout(&e) => {
                        Answer::Fail(no_answer(udp_silence_text(addr, timeout)))
                    }
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        Answer::Fail(no_answer(format!(
                            "nothing is listening on {addr} (ICMP port unreachable)"
                        )))
                    }
                    Err(e) => Answer::Fail(no_answer(format!("reading from {addr}: {e}"))),
                }
            }
        }
    }
}

pub fn calc_main(args: CalcArgs) -> anyhow::Result<ExitCode> {
    let addr = resolve(&args.server, None)?;
    let mut conn = match Conn::open(addr, args.udp, args.timeout) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if !args.expr.is_empty() {
        let expr = args.expr.join(" ");
        if expr.contains(['\n', '\r']) {
            bail!("the expression must be one line");
        }
        return Ok(match conn.ask(addr, &expr, args.timeout) {
            Answer::Line(l) => {
                println!("{l}");
                if l.starts_with("ERR") {
                    ExitCode::from(EXIT_SERVER_ERROR)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Answer::Fail(code) => code,
        });
    }
    // Interactive: one expression per line.
    let stdin = io::stdin();
    let prompt = stdin.is_terminal();
    let mut out = io::stdout();
    let mut input = stdin.lock();
    loop {
        if prompt {
            print!("calc> ");
            out.flush()?;
        }
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            return Ok(ExitCode::SUCCESS);
        }
        let expr = line.trim_end_matches(['\r', '\n']);
        if prompt && expr.trim().is_empty() {
            continue;
        }
        match conn.ask(addr, expr, args.timeout) {
            Answer::Line(l) => {
                println!("{l}");
                out.flush()?;
            }
            // Over UDP one lost datagram does not end the session; over TCP it does.
            Answer::Fail(code) => {
                if !args.udp {
                    return Ok(code);
                }
            }
        }
    }
}

pub fn sntp_main(args: SntpArgs) -> anyhow::Result<ExitCode> {
    let addr = resolve(&args.server, Some(sntp::NTP_PORT))?;
    let m = match sntp_query(addr, args.timeout) {
        Ok(m) => m,
        Err(QueryError::Reply(e @ sntp::ReplyError::KissOfDeath(_))) => {
            eprintln!("mailroom sntp: {addr}: {e}");
            return Ok(ExitCode::from(EXIT_SERVER_ERROR));
        }
        Err(e) => {
            eprintln!("mailroom sntp: {e}");
            return Ok(ExitCode::from(EXIT_NO_ANSWER));
        }
    };
    let p = &m.reply;
    // RFC 4330 §5: a client should not use an unsynchronized server's time. We only report it.
    if p.leap == sntp::LEAP_UNSYNCHRONIZED || p.stratum > 15 {
        eprintln!(
            "mailroom sntp: warning: {addr} says its clock is not synchronized (leap indicator {}, stratum {}); do not set a clock from it",
            p.leap, p.stratum
        );
    }
    if args.json {
        println!("{}", to_json(addr, &m));
    } else {
        print!("{}", to_text(addr, &m));
    }
    Ok(ExitCode::SUCCESS)
}

fn to_text(addr: SocketAddr, m: &Measurement) -> String {
    let p = &m.reply;
    let ahead = if m.offset >= 0.0 {
        "server ahead"
    } else {
        "server behind"
    };
    format!(
        "server:          {addr}\n\
         stratum:         {}\n\
         reference id:    {}\n\
         leap indicator:  {} ({})\n\
         version:         {}\n\
         precision:       2^{} s\n\
         root delay:      {:.6} s\n\
         root dispersion: {:.6} s\n\
         offset:          {:+.6} s ({ahead})\n\
         delay:           {:.6} s\n\
         server time:     {}\n",
        p.stratum,
        sntp::ref_id_text(p.stratum, &p.ref_id),
        p.leap,
        sntp::leap_text(p.leap),
        p.version,
        p.precision,
        sntp::short_to_secs(p.root_delay),
        sntp::short_to_secs(p.root_dispersion),
        m.offset,
        m.delay,
        p.transmit.to_rfc3339(),
    )
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn to_json(addr: SocketAddr, m: &Measurement) -> String {
    let p = &m.reply;
    let (secs, nanos) = p.transmit.to_unix();
    let fields = [
        ("server", json_str(&addr.to_string())),
        ("stratum", p.stratum.to_string()),
        (
            "reference_id",
            json_str(&sntp::ref_id_text(p.stratum, &p.ref_id)),
        ),
        (
            "reference_id_hex",
            json_str(
                &p.ref_id
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            ),
        ),
        ("leap", p.leap.to_string()),
        ("leap_text", json_str(sntp::leap_text(p.leap))),
        ("version", p.version.to_string()),
        ("mode", p.mode.to_string()),
        ("poll", p.poll.to_string()),
        ("precision", p.precision.to_string()),
        (
            "root_delay",
            format!("{:.9}", sntp::short_to_secs(p.root_delay)),
        ),
        (
            "root_dispersion",
            format!("{:.9}", sntp::short_to_secs(p.root_dispersion)),
        ),
        ("offset", format!("{:.9}", m.offset)),
        ("delay", format!("{:.9}", m.delay)),
        ("server_time", json_str(&p.transmit.to_rfc3339())),
        ("server_time_unix", format!("{secs}.{nanos:09}")),
    ];
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", json_str(k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct TestCli {
        #[command(subcommand)]
        cmd: Sub,
    }

    #[derive(clap::Subcommand)]
    enum Sub {
        Calc(CalcArgs),
        Sntp(SntpArgs),
    }

    fn calc(args: &[&str]) -> CalcArgs {
        let v = std::iter::once("t")
            .chain(std::iter::once("calc"))
            .chain(args.iter().copied());
        match TestCli::try_parse_from(v).expect("parses").cmd {
            Sub::Calc(a) => a,
            Sub::Sntp(_) => panic!("not calc"),
        }
    }

    #[test]
    fn calc_arguments() {
        let a = calc(&["127.0.0.1:2030", "ADD", "3", "4"]);
        assert_eq!(
            (a.server.as_str(), a.udp, a.expr.join(" ")),
            ("127.0.0.1:2030", false, "ADD 3 4".into())
        );
        let a = calc(&["127.0.0.1:2030", "--udp", "-t", "2s", "-3", "+", "4"]);
        assert!(a.udp);
        assert_eq!(a.timeout, Duration::from_secs(2));
        assert_eq!(a.expr.join(" "), "-3 + 4");
        let a = calc(&["--udp", "127.0.0.1:2030", "-2^2"]);
        assert!(a.udp);
        assert_eq!(a.expr, vec!["-2^2"]);
        let a = calc(&["127.0.0.1:2030"]);
        assert!(a.expr.is_empty());
        assert_eq!(a.timeout, Duration::from_secs(5));
    }

    #[test]
    fn addresses() {
        let l = |s: &str, d| {
            resolve(s, d)
                .map(|a| a.to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(l("127.0.0.1:2030", None), Ok("127.0.0.1:2030".into()));
        assert_eq!(l("[::1]:2123", None), Ok("[::1]:2123".into()));
        assert_eq!(l("127.0.0.1", Some(123)), Ok("127.0.0.1:123".into()));
        assert_eq!(l("::1", Some(123)), Ok("[::1]:123".into()));
        assert_eq!(
            l("localhost:2030", None).map(|a| a.ends_with(":2030")),
            Ok(true)
        );
        assert!(l("127.0.0.1", None).is_err());
    }

    #[test]
    fn json_is_well_formed() {
        let t1 = sntp::NtpTimestamp(0x8000_0000_0000_0000);
        let req = sntp::client_request(t1);
        let params = sntp::ServerParams {
            stratum: 10,
            ref_id: *b"LOCL",
            unsynchronized: false,
        };
        let r = sntp::server_reply(&req, &params, t1, t1);
        let m = sntp::parse_reply(&r.encode(), t1, t1).expect("valid");
        let j = to_json("127.0.0.1:2123".parse().unwrap(), &m);
        assert!(
            j.starts_with(
                "{\"server\":\"127.0.0.1:2123\",\"stratum\":10,\"reference_id\":\"LOCL\""
            ),
            "{j}"
        );
        assert!(j.contains("\"offset\":0.000000000"), "{j}");
        assert_eq!(json_str("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
        let t = to_text("127.0.0.1:2123".parse().unwrap(), &m);
        assert!(
            t.contains("stratum:         10\n") && t.contains("reference id:    LOCL\n"),
            "{t}"
        );
    }
}
