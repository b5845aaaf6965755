//! Client side of SMTP and POP3 (placeholder: being written).
