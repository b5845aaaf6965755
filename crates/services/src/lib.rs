//! The classic socket-lab services (placeholder: being written).
use serde::Deserialize;

/// `[services]` table of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesConfig {}

impl ServicesConfig {
    /// What `mailroom serve` runs when started without a config file.
    pub fn dev_default() -> Self {
        Self::default()
    }
    /// Checks values; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// One bound service: its name ("echo/tcp") and the address it listens on.
#[derive(Debug, Clone)]
pub struct Bound {
    pub name: String,
    pub addr: std::net::SocketAddr,
}

/// Binds every configured service and spawns its tasks; they stop when `shutdown` becomes true.
pub async fn start(
    _cfg: &ServicesConfig,
    _shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<Vec<Bound>> {
    Ok(Vec::new())
}
