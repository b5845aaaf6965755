//! Quote of the Day (RFC 865) quotes, sans-IO.
//!
//! A quotes file holds quotes separated by lines that contain only `%` (the fortune(6)
//! format). Each quote is sent with CR LF line ends and must stay under 512 octets on the wire
//! (RFC 865: "the quote ... should be less than 512 characters"); a file that breaks that is
//! refused when the config is checked, not cut at run time.
use std::path::Path;

/// RFC 865: a quote is shorter than this, in octets as sent.
pub const MAX_QUOTE: usize = 512;
/// A quotes file larger than this is refused (it is read into memory).
pub const MAX_FILE: u64 = 1 << 20;

const BUILTIN: &str = "\
Be conservative in what you do, be liberal in what you accept from others.
  -- Jon Postel, RFC 793
%
Simplicity is prerequisite for reliability.
  -- Edsger W. Dijkstra
%
The best way to predict the future is to invent it.
  -- Alan Kay
%
There is nothing so practical as a good theory.
  -- Kurt Lewin
%
Premature optimization is the root of all evil.
  -- Donald E. Knuth
%
We reject kings, presidents and voting. We believe in rough consensus and running code.
  -- David D. Clark
%
Measure twice, cut once.
  -- Proverb
";

/// The quotes a qotd service answers with, already in wire form (CR LF line ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotes {
    list: Vec<Vec<u8>>,
}

impl Quotes {
    /// The built-in quotes.
    pub fn builtin() -> Self {
        // The built-in text is checked by a unit test; fall back to one line regardless.
        Self::parse(BUILTIN).unwrap_or_else(|_| Quotes {
            list: vec![b"Measure twice, cut once.\r\n".to_vec()],
        })
    }

    /// Reads a quotes file; the error text says what is wrong and where.
    pub fn load(path: &Path) -> Result<Self, String> {
        let meta =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if meta.len() > MAX_FILE {
            return Err(format!(
                "{} is {} octets; the limit is {MAX_FILE}",
                path.display(),
                meta.len()
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses fortune format text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut list = Vec::new();
        let mut current: Vec<&str> = Vec::new();
        let mut number = 0;
        let mut flush = |current: &mut Vec<&str>, list: &mut Vec<Vec<u8>>| -> Result<(), String> {
            while current.last().is_some_and(|l| l.trim().is_empty()) {
                current.pop();
            }
            let start = current.iter().position(|l| !l.trim().is_empty());
            if let Some(start) = start {
                number += 1;
                let mut wire = Vec::new();
                for l in &current[start..] {
                    if l.chars().any(|c| c.is_control() && c != '\t') {
                        return Err(format!("quote {number} contains a control character"));
                    }
                    wire.extend_from_slice(l.as_bytes());
                    wire.extend_from_slice(b"\r\n");
                }
                if wire.len() >= MAX_QUOTE {
                    return Err(format!(
                        "quote {number} is {} octets; RFC 865 wants less than {MAX_QUOTE}",
                        wire.len()
                    ));
                }
                list.push(wire);
            }
            current.clear();
            Ok(())
        };
        for line in text.lines() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line == "%" {
                flush(&mut current, &mut list)?;
            } else {
                current.push(line);
            }
        }
        flush(&mut current, &mut list)?;
        if list.is_empty() {
            return Err("no quotes (separate quotes with lines holding only %)".into());
        }
        Ok(Quotes { list })
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Quote number `i` (modulo the count), in wire form.
    pub fn get(&self, i: usize) -> &[u8] {
        match self.list.get(i % self.list.len().max(1)) {
            Some(q) => q,
            None => b"\r\n",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_quotes_are_valid() {
        let q = Quotes::parse(BUILTIN).expect("built-in quotes parse");
        assert_eq!(q.len(), 7);
        assert_eq!(Quotes::builtin(), q);
        for i in 0..q.len() {
            assert!(q.get(i).len() < MAX_QUOTE);
            assert!(q.get(i).ends_with(b"\r\n"));
        }
        assert!(q.get(0).starts_with(b"Be conservative"));
    }

    #[test]
    fn fortune_format() {
        let q = Quotes::parse("one\nline two\n%\n\n  two  \n%\n%\nthree\r\n").expect("parses");
        assert_eq!(q.len(), 3);
        assert_eq!(q.get(0), b"one\r\nline two\r\n");
        assert_eq!(q.get(1), b"  two  \r\n");
        assert_eq!(q.get(2), b"three\r\n");
        assert_eq!(q.get(3), q.get(0));
    }

    #[test]
    fn refuses_bad_files() {
        assert!(Quotes::parse("").unwrap_err().contains("no quotes"));
        assert!(Quotes::parse("%\n%\n").is_err());
        let long = "x".repeat(510);
        let e = Quotes::parse(&format!("short\n%\n{long}\n")).unwrap_err();
        assert!(e.contains("quote 2 is 512 octets"), "{e}");
        assert!(Quotes::parse(&"x".repeat(509)).is_ok()); // 511 octets with CR LF
        assert!(Quotes::parse("bell\x07").unwrap_err().contains("control"));
        assert!(Quotes::load(Path::new("/nonexistent/q"))
            .unwrap_err()
            .contains("cannot read"));
    }
}
