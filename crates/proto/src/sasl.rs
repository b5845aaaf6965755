//! SASL pieces shared by SMTP AUTH (RFC 4954) and POP3 AUTH (RFC 5034).
//!
//! The exchange, as the server driver runs it (RFC 4954 §4):
//!
//! ```text
//! C: AUTH PLAIN [initial-response]       initial-response = base64 / "=" (empty)
//! S: 334 [base64 challenge]              only if there was no initial response
//! C: base64 response  |  "*" (cancel → 501 5.0.0)
//! S: 235 2.7.0 Authentication successful  |  535 5.7.8 ...
//! ```
//!
//! - PLAIN (RFC 4616 §2): one response, `[authzid] NUL authcid NUL passwd`, UTF-8.
//! - LOGIN (draft-murchison-sasl-login, obsolete but what lab clients and Outlook use): the
//!   server sends [`LOGIN_USERNAME_CHALLENGE`], then [`LOGIN_PASSWORD_CHALLENGE`]; each response
//!   is one base64 line. Decode them with [`decode_text`].

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// Why a SASL response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// Not base64 (RFC 4954 §4: the server rejects it with 501).
    #[error("invalid base64")]
    Base64,
    /// Decoded, but not a valid message for the mechanism.
    #[error("malformed SASL response: {0}")]
    Malformed(&'static str),
    /// The client sent `*` (RFC 4954 §4).
    #[error("authentication cancelled")]
    Cancelled,
}

/// Decoding accepts input with or without `=` padding (some clients drop it).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 with padding, for challenges (RFC 4954 §4).
pub fn b64_encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decodes a client response line (without its CRLF; surrounding blanks are ignored).
/// `*` is [`SaslError::Cancelled`] (RFC 4954 §4); `=` (the empty initial response, RFC 4954
/// §4) and an empty line are an empty response.
pub fn decode_response(line: &str) -> Result<Vec<u8>, SaslError> {
    let line = line.trim_matches(|c| c == ' ' || c == '\t');
    match line {
        "*" => Err(SaslError::Cancelled),
        "=" | "" => Ok(Vec::new()),
        _ => LENIENT.decode(line).map_err(|_| SaslError::Base64),
    }
}

/// Decodes a response that must be UTF-8 text (the LOGIN user name and password).
pub fn decode_text(line: &str) -> Result<String, SaslError> {
    let bytes = decode_response(line)?;
    String::from_utf8(bytes).map_err(|_| SaslError::Malformed("the response is not UTF-8"))
}

/// The decoded PLAIN message. `Debug` masks the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// Authorization identity; empty means "same as authcid".
    pub authzid: String,
    /// Authentication identity (the user name).
    pub authcid: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"********")
            .finish()
    }
}

/// RFC 4616 §2: `message = [authzid] UTF8NUL authcid UTF8NUL passwd`; each part UTF-8 without
/// NUL, authcid and passwd non-empty (1*SAFE).
pub fn parse_plain(decoded: &[u8]) -> Result<PlainCredentials, SaslError> {
    let mut parts = decoded.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed(
            "expected authorization id, NUL, user name, NUL, password",
        ));
    };
    let text = |b: &[u8]| {
        String::from_utf8(b.to_vec())
            .map_err(|_| SaslError::Malformed("the credentials are not UTF-8"))
    };
    if authcid.is_empty() {
        return Err(SaslError::Malformed("the user name is empty"));
    }
    if password.is_empty() {
        return Err(SaslError::Malformed("the password is empty"));
    }
    Ok(PlainCredentials {
        authzid: text(authzid)?,
        authcid: text(authcid)?,
        password: text(password)?,
    })
}

/// LOGIN's first challenge, `Username:` in base64.
pub const LOGIN_USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
/// LOGIN's second challenge, `Password:` in base64.
pub const LOGIN_PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_challenges() {
        assert_eq!(b64_encode(b"Username:"), LOGIN_USERNAME_CHALLENGE);
        assert_eq!(b64_encode(b"Password:"), LOGIN_PASSWORD_CHALLENGE);
    }

    #[test]
    fn encode_table() {
        for (data, want) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"\0alice\0secret", "AGFsaWNlAHNlY3JldA=="),
        ] {
            assert_eq!(b64_encode(data), want);
        }
    }

    #[test]
    fn decode_table() {
        let cases: &[(&str, Result<&[u8], SaslError>)] = &[
            ("*", Err(SaslError::Cancelled)),
            (" * ", Err(SaslError::Cancelled)),
            ("=", Ok(b"")),
            ("", Ok(b"")),
            ("YWxpY2VAZXhhbXBsZS50ZXN0", Ok(b"alice@example.test")),
            ("c2VjcmV0", Ok(b"secret")),
            ("Zg==", Ok(b"f")),
            ("Zg", Ok(b"f")),
            ("Zm8=", Ok(b"fo")),
            ("Zm8", Ok(b"fo")),
            ("Zm9v  ", Ok(b"foo")),
            ("AGFsaWNlAHNlY3JldA==", Ok(b"\0alice\0secret")),
            ("**", Err(SaslError::Base64)),
            ("Zg=", Ok(b"f")), // short padding is tolerated too
            ("Z", Err(SaslError::Base64)),
            ("Zm9v!", Err(SaslError::Base64)),
            ("Zm 9v", Err(SaslError::Base64)),
            ("Zm9v====", Err(SaslError::Base64)),
            ("Zh==", Err(SaslError::Base64)),
            ("é", Err(SaslError::Base64)),
            ("==", Err(SaslError::Base64)),
        ];
        for (line, want) in cases {
            assert_eq!(
                decode_response(line),
                want.clone().map(<[u8]>::to_vec),
                "{line:?}"
            );
        }
    }

    #[test]
    fn decode_text_table() {
        assert_eq!(decode_text("YWxpY2U="), Ok("alice".to_string()));
        assert_eq!(decode_text("w6k="), Ok("é".to_string()));
        assert_eq!(decode_text("*"), Err(SaslError::Cancelled));
        assert!(matches!(decode_text("/w=="), Err(SaslError::Malformed(_))));
    }

    fn creds(z: &str, c: &str, p: &str) -> PlainCredentials {
        PlainCredentials {
            authzid: z.into(),
            authcid: c.into(),
            password: p.into(),
        }
    }

    #[test]
    fn plain_table() {
        let cases: &[(&[u8], Option<PlainCredentials>)] = &[
            (b"\0alice\0secret", Some(creds("", "alice", "secret"))),
            (
                b"admin\0alice@example.test\0pa ss",
                Some(creds("admin", "alice@example.test", "pa ss")),
            ),
            (
                "\0jörg\0pässword".as_bytes(),
                Some(creds("", "jörg", "pässword")),
            ),
            (b"", None),
            (b"alice", None),
            (b"\0alice", None),
            (b"\0alice\0", None),
            (b"\0\0secret", None),
            (b"\0alice\0sec\0ret", None),
            (b"\0al\xffice\0secret", None),
            (b"\xff\0alice\0secret", None),
            (b"\0alice\0\xff", None),
        ];
        for (input, want) in cases {
            let got = parse_plain(input);
            match want {
                Some(c) => assert_eq!(got.as_ref(), Ok(c), "{input:?}"),
                None => assert!(matches!(got, Err(SaslError::Malformed(_))), "{input:?}"),
            }
        }
    }

    #[test]
    fn plain_end_to_end_and_masked_debug() {
        let c = parse_plain(&decode_response("AGFsaWNlAHNlY3JldA==").unwrap()).unwrap();
        assert_eq!(c, creds("", "alice", "secret"));
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("alice"), "{debug}");
    }

    #[test]
    fn error_messages() {
        assert_eq!(SaslError::Base64.to_string(), "invalid base64");
        assert_eq!(SaslError::Cancelled.to_string(), "authentication cancelled");
        assert_eq!(
            SaslError::Malformed("the password is empty").to_string(),
            "malformed SASL response: the password is empty"
        );
    }
}
