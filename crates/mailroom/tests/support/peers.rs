//! Mail between domains on one machine (the queue's tests, chaos, the queue's TLS): server A
//! hosts a.test (alice, carol), server B hosts b.test (bob); routes join them.

use super::ServerConfig;

pub const ALICE_A: (&str, &str) = ("alice@a.test", "alicepw");
pub const CAROL_A: (&str, &str) = ("carol@a.test", "carolpw");
pub const BOB_B: (&str, &str) = ("bob@b.test", "bobpw");

/// Server A: host mx.a.test with alice and carol, no listener yet.
pub fn server_a() -> ServerConfig {
    ServerConfig::host("mx.a.test").accounts(&[ALICE_A, CAROL_A])
}

/// Server B: host mx.b.test with bob, no listener yet.
pub fn server_b() -> ServerConfig {
    ServerConfig::host("mx.b.test").accounts(&[BOB_B])
}
