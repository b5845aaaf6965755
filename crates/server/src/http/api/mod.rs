//! The API's resources, one module each: [`events`] (Server-Sent Events of changes), [`mailboxes`] (the account's folders) and
//! [`messages`] (list and search, read, parts, raw source, flags, move, delete) and
//! [`transcript`] (the SMTP dialogue that delivered a message).

pub mod events;
pub mod mailboxes;
pub mod messages;
pub mod transcript;
