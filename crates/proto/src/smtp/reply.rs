//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463, RFC 2034).
//!
//! ```text
//! Reply-line     = *( Reply-code "-" [ textstring ] CRLF )
//!                     Reply-code [ SP textstring ] CRLF        ; RFC 5321 §4.2
//! Reply-code     = %x32-35 %x30-35 %x30-39
//! status-code    = class "." subject "." detail                ; RFC 3463 §2
//! class          = "2" / "4" / "5"
//! subject, detail = 1*3digit
//! ```
//!
//! With ENHANCEDSTATUSCODES (RFC 2034 §4) every line of a reply carries the enhanced code right
//! after the basic code: `250-2.0.0 first` / `250 2.0.0 last`. EHLO replies are the one place
//! where we send none, so the capability lines stay bare (`250-PIPELINING`), as clients expect.
//!
//! Reply text never contains CR, LF or other control characters on the wire: they are replaced
//! by spaces in [`Reply::to_bytes`], so text derived from client input (an echoed address, a
//! verb) can never inject an extra reply line.

use std::fmt;

/// An RFC 3463 enhanced status code, e.g. `5.1.1`. Displays as `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedCode(pub u8, pub u16, pub u16);

impl EnhancedCode {
    /// Parses `"2.1.0"`. `None` unless it matches RFC 3463 §2: class 2, 4 or 5; subject and
    /// detail of 1 to 3 digits each.
    pub fn parse(s: &str) -> Option<EnhancedCode> {
        let mut parts = s.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let class = match class {
            "2" => 2,
            "4" => 4,
            "5" => 5,
            _ => return None,
        };
        Some(EnhancedCode(class, digits3(subject)?, digits3(detail)?))
    }
}

fn digits3(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One SMTP reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit basic code (RFC 5321 §4.2.1).
    pub code: u16,
    /// The enhanced code shown after the basic code on every line, if any.
    pub enhanced: Option<EnhancedCode>,
    /// The text lines; an empty vector sends one line with no text.
    pub lines: Vec<String>,
}

impl Reply {
    /// `Reply::new(250, "2.1.0", "Ok")`. `enhanced` may be `""` for none; a malformed
    /// enhanced code also gives none (never a panic).
    pub fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: EnhancedCode::parse(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply (e.g. EHLO with `enhanced = ""`, or HELP).
    pub fn multiline(code: u16, enhanced: &str, lines: Vec<String>) -> Self {
        Reply {
            code,
            enhanced: EnhancedCode::parse(enhanced),
            lines,
        }
    }

    /// The wire form: `CODE-` on every line but the last, `CODE ` on the last, each followed
    /// by CRLF and each carrying the enhanced code when there is one (RFC 2034 §4).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_lines(|line| {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        });
        out
    }

    /// 2xx and 3xx replies (RFC 5321 §4.2.1: positive completion / positive intermediate).
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 4xx replies: transient negative completion (RFC 5321 §4.2.1).
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx replies: permanent negative completion (RFC 5321 §4.2.1).
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    fn write_lines(&self, mut sink: impl FnMut(&str)) {
        let empty = [String::new()];
        let lines: &[String] = if self.lines.is_empty() {
            &empty
        } else {
            &self.lines
        };
        let last = lines.len() - 1;
        let mut line = String::new();
        for (i, text) in lines.iter().enumerate() {
            line.clear();
            // RFC 5321 §4.2.1: continuation lines use "-", the last line SP (or nothing).
            let sep = if i == last { ' ' } else { '-' };
            line.push_str(&format!("{:03}", self.code));
            let mut rest = String::new();
            if let Some(e) = self.enhanced {
                rest.push_str(&e.to_string());
            }
            if !text.is_empty() {
                if !rest.is_empty() {
                    rest.push(' ');
                }
                // Control characters would break the framing (or inject a reply line).
                rest.extend(text.chars().map(|c| if c.is_control() { ' ' } else { c }));
            }
            if rest.is_empty() {
                if sep == '-' {
                    line.push('-');
                }
            } else {
                line.push(sep);
                line.push_str(&rest);
            }
            sink(&line);
        }
    }
}

/// The wire text without CRLFs, lines joined by `"\n"` (for logs and protocol traces).
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut result = Ok(());
        self.write_lines(|line| {
            if result.is_ok() {
                if !first {
                    result = f.write_str("\n");
                }
                if result.is_ok() {
                    result = f.write_str(line);
                }
            }
            first = false;
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_code_parse_table() {
        let cases: &[(&str, Option<EnhancedCode>)] = &[
            ("2.1.0", Some(EnhancedCode(2, 1, 0))),
            ("5.7.139", Some(EnhancedCode(5, 7, 139))),
            ("4.4.2", Some(EnhancedCode(4, 4, 2))),
            ("5.999.999", Some(EnhancedCode(5, 999, 999))),
            ("", None),
            ("3.1.0", None),
            ("2.1", None),
            ("2.1.0.1", None),
            ("2..0", None),
            ("2.1000.0", None),
            ("2.+1.0", None),
            ("2.1.-0", None),
            ("x.y.z", None),
            ("25.1.0", None),
            (" 2.1.0", None),
        ];
        for (s, want) in cases {
            assert_eq!(EnhancedCode::parse(s), *want, "{s:?}");
        }
        assert_eq!(EnhancedCode(5, 1, 1).to_string(), "5.1.1");
    }

    #[test]
    fn wire_form_table() {
        let cases: Vec<(Reply, &str)> = vec![
            (Reply::new(250, "2.1.0", "Ok"), "250 2.1.0 Ok\r\n"),
            (Reply::new(250, "", "Ok"), "250 Ok\r\n"),
            (Reply::new(250, "bogus", "Ok"), "250 Ok\r\n"),
            (
                Reply::new(220, "", "mx.example.test ESMTP"),
                "220 mx.example.test ESMTP\r\n",
            ),
            (Reply::new(221, "2.0.0", "Bye"), "221 2.0.0 Bye\r\n"),
            (Reply::new(334, "", "VXNlcm5hbWU6"), "334 VXNlcm5hbWU6\r\n"),
            // RFC 4954 §4: an empty challenge is "334 " (we send "334").
            (Reply::new(334, "", ""), "334\r\n"),
            (Reply::new(250, "2.0.0", ""), "250 2.0.0\r\n"),
            (Reply::multiline(250, "", vec![]), "250\r\n"),
            (
                Reply::multiline(
                    250,
                    "",
                    vec![
                        "mx.example.test".into(),
                        "PIPELINING".into(),
                        "8BITMIME".into(),
                    ],
                ),
                "250-mx.example.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            ),
            (
                Reply::multiline(214, "2.0.0", vec!["a".into(), "b".into()]),
                "214-2.0.0 a\r\n214 2.0.0 b\r\n",
            ),
            (
                Reply::multiline(250, "", vec!["".into(), "".into()]),
                "250-\r\n250\r\n",
            ),
            // Injection attempt through echoed text.
            (
                Reply::new(501, "5.1.3", "bad <x\r\n250 ok>"),
                "501 5.1.3 bad <x  250 ok>\r\n",
            ),
            (Reply::new(7, "", "x"), "007 x\r\n"),
        ];
        for (reply, want) in cases {
            assert_eq!(String::from_utf8(reply.to_bytes()).unwrap(), want);
            assert_eq!(reply.to_string(), want.trim_end().replace("\r\n", "\n"));
        }
    }

    #[test]
    fn classes() {
        for (code, pos, trans, perm) in [
            (220, true, false, false),
            (354, true, false, false),
            (421, false, true, false),
            (550, false, false, true),
            (199, false, false, false),
        ] {
            let r = Reply::new(code, "", "");
            assert_eq!(r.is_positive(), pos, "{code}");
            assert_eq!(r.is_transient(), trans, "{code}");
            assert_eq!(r.is_permanent(), perm, "{code}");
        }
    }
}
