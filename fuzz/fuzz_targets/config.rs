//! The server's config loader (`mailroom_server::config`) on arbitrary TOML text:
//! `Config::parse`, and the size and host:port parsers its keys go through. Checks:
//! - never panics (a config file is read before anything else runs: a panic is no message);
//! - an error names the file, and an invalid value names its key;
//! - an accepted config passes `validate()` again, and parsing is deterministic;
//! - a size that parses fits in i64 and reads back from its digits; a host:port that parses
//!   prints back to the same host and port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_server::config::{parse_host_port, parse_size, show_size, Config, ConfigError};

const FILE: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text, FILE) {
        Ok(cfg) => {
            assert_eq!(cfg.source, FILE);
            assert!(cfg.validate().is_ok());
            assert!(cfg.limits.max_incoming_memory >= cfg.limits.max_message_size);
            let domains = cfg.local_domains();
            assert!(domains.windows(2).all(|w| w[0] < w[1]), "{domains:?}");
            let again = Config::parse(&text, FILE).expect("parsed once");
            assert_eq!(format!("{again:?}"), format!("{cfg:?}"));
        }
        Err(e) => {
            assert!(e.to_string().starts_with(FILE), "{e}");
            match e {
                ConfigError::Invalid { key, .. } => assert!(!key.is_empty()),
                ConfigError::Parse { .. } => {}
                ConfigError::Read { .. } => panic!("parse read a file: {e}"),
            }
        }
    }

    // One line of the input as a size and as host:port.
    let line = text.lines().next().unwrap_or("");
    match parse_size(line) {
        Ok(n) => {
            assert!(i64::try_from(n).is_ok());
            assert_eq!(parse_size(&n.to_string()), Ok(n));
            let _ = show_size(n);
        }
        Err(m) => assert!(!m.contains('\n'), "{m:?}"),
    }
    if let Some((host, port)) = parse_host_port(line) {
        assert!(!host.is_empty() && !host.contains(char::is_whitespace));
        assert_eq!(
            parse_host_port(&format!("{host}:{port}")),
            Some((host, port))
        );
    }
});
