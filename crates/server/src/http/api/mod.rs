//! The API's resources, one module each: [`events`] (Server-Sent Events of changes),
//! [`mailboxes`] (the account's folders), [`messages`] (list and search, read, parts, raw
//! source, flags, move, delete), [`transcript`] (the SMTP dialogue that delivered a message),
//! [`send`] (submit a message as the user); for administrators [`queue`] and [`accounts`].

pub mod accounts;
pub mod events;
pub mod mailboxes;
pub mod messages;
pub mod queue;
pub mod send;
pub mod transcript;
