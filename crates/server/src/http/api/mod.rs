//! The API's resources, one module each: [`mailboxes`] (the account's folders) and
//! [`messages`] (list and search, read, parts, raw source, flags, move, delete).

pub mod mailboxes;
pub mod messages;
