//! The one test-support module of the integration tests (each test file says `mod support;`):
//! a real `mailroom serve` on ephemeral loopback ports with a fresh data directory, and the
//! clients that talk to it.
//!
//! - [`config`]: [`ServerConfig`], the one writer of server configs (listeners, traces,
//!   limits, accounts, anything else appended);
//! - [`server`]: [`TestServer`], which starts the binary with such a config, waits until it
//!   is ready, reads its store, runs the CLI and Python scripts beside it;
//! - [`client`]: [`Client`], a raw line client (a person at telnet), and SMTP replies;
//! - [`smtp`], [`pop3`], [`imap`]: each protocol's helpers (submitting, a byte-exact POP3
//!   client, a tagged IMAP client, messages to send);
//! - [`http`]: Python helpers for the HTTP API (calls, JSON, error checks);
//! - [`peers`]: servers for two domains (a.test, b.test) joined by routes;
//! - [`tls`]: a server with every TLS listener, its certificate, Python with an SSL context;
//! - `browser.rs`: headless Chromium through chromedriver (WebDriver); only the web inbox's
//!   tests include it (`#[path]`), so the other test binaries do not compile a WebDriver client;
//! - [`cli`]: running `mailroom` as a user does (the agent, `calc`, ...), and fake servers
//!   that play a script;
//! - [`python`]: Python helpers that need no server;
//! - [`dns`]: a DNS server on a loopback port answering from a table the test fills.
#![allow(dead_code, unused_imports)]

pub mod cli;
pub mod client;
pub mod config;
pub mod dns;
pub mod http;
pub mod imap;
pub mod peers;
pub mod pop3;
pub mod python;
pub mod server;
pub mod smtp;
pub mod tls;

pub use cli::{bin, free_port, repo_root};
pub use client::{Client, Reply};
pub use config::ServerConfig;
pub use server::TestServer;
pub use smtp::{b64, submit, wire_body};

/// The domain of the test servers' accounts.
pub const DOMAIN: &str = "example.test";
/// The accounts every [`ServerConfig::example`] server has: (address, password).
pub const ALICE: (&str, &str) = ("alice@example.test", "secret");
pub const BOB: (&str, &str) = ("bob@example.test", "hunter2");
pub const CAROL: (&str, &str) = ("carol@example.test", "carolpw");
