//! Fuzzes the SMTP command path: the line splitter, the command parser, the address printer
//! and the reply encoder. Run: `cargo +nightly fuzz run smtp_command` (see ../README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_proto::line::{LineError, LineReader};
use mailroom_proto::smtp::{parse_command, Address, Command, ForwardPath, Reply, ReversePath};

const MAX_LINE: usize = 510;

fn check_line(line: &[u8]) {
    match parse_command(line) {
        Ok(cmd) => {
            assert!(!cmd.verb().is_empty());
            let address = match &cmd {
                Command::Mail {
                    from: ReversePath::Address(a),
                    ..
                } => Some(a),
                Command::Rcpt {
                    to: ForwardPath::Address(a),
                    ..
                } => Some(a),
                _ => None,
            };
            if let Some(a) = address {
                // What we print (e.g. in Received: or a bounce) must parse back to the same.
                let printed = a.to_string();
                assert_eq!(Address::parse(&printed).as_ref(), Ok(a), "{printed:?}");
                assert!(a.local.len() <= 64 && a.domain.len() <= 255);
            }
            if let Command::Mail { params, .. } | Command::Rcpt { params, .. } = &cmd {
                for p in params {
                    assert_eq!(p.keyword, p.keyword.to_ascii_uppercase());
                }
            }
        }
        Err(e) => {
            // The error text goes back to the client: it must be one well-formed reply line.
            let reply = Reply::new(e.code(), &e.enhanced().to_string(), e.to_string());
            let wire = reply.to_bytes();
            assert!(wire.ends_with(b"\r\n"));
            let body = &wire[..wire.len() - 2];
            assert!(!body.contains(&b'\r') && !body.contains(&b'\n'), "{wire:?}");
            assert_eq!(e.is_unknown(), e.code() == 500);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The whole input as one line.
    check_line(data);

    // The input as a stream, pushed in two pieces at a point chosen by the input.
    let split = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let (a, b) = data.split_at(split);
    let mut reader = LineReader::new(MAX_LINE);
    let mut lines = 0usize;
    for piece in [a, b] {
        reader.push(piece);
        while let Some(line) = reader.next_line() {
            lines += 1;
            match line {
                Ok(line) => {
                    assert!(line.len() <= MAX_LINE);
                    assert!(!line.contains(&b'\n'));
                    check_line(&line);
                }
                Err(LineError::TooLong { limit }) => assert_eq!(limit, MAX_LINE),
            }
        }
        // Bounded memory: only a partial line remains, truncated to MAX_LINE + 2 octets.
        assert!(reader.buffered_len() <= MAX_LINE + 2);
    }
    assert_eq!(lines, data.iter().filter(|&&c| c == b'\n').count());
    let rest = reader.take_buffered();
    assert!(!rest.contains(&b'\n'));
    assert_eq!(reader.buffered_len(), 0);
});
