//! PostgreSQL for tests: one private cluster per test process, a fresh database per test.
//!
//! [`pg_database`] returns the URL of a new, empty database (`t_<random>`). The cluster is
//! the one named by `MAILROOM_TEST_PG_URL` (a URL whose role may create databases, as CI's
//! `.ci/run` exports), or else one this process starts with `scripts/pg-test-cluster.sh` in a
//! temporary directory and stops when it exits. Without PostgreSQL installed the test fails
//! and says how to install it: it never passes without having run.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The environment variable naming an already running cluster for the tests.
pub const PG_URL_VAR: &str = "MAILROOM_TEST_PG_URL";

struct Cluster {
    url: String,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static STARTED_DIR: OnceLock<PathBuf> = OnceLock::new();

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-cluster.sh")
}

extern "C" fn stop_cluster() {
    if let Some(dir) = STARTED_DIR.get() {
        let _ = std::process::Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(dir)
            .output();
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn start() -> Result<Cluster, String> {
    if let Ok(url) = std::env::var(PG_URL_VAR) {
        if !url.trim().is_empty() {
            return Ok(Cluster { url });
        }
    }
    let dir = std::env::temp_dir().join(format!(
        "mailroom-pg-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let out = std::process::Command::new("bash")
        .arg(script())
        .arg("start")
        .arg(&dir)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!(
            "cannot start a PostgreSQL cluster for the tests: {}\nInstall PostgreSQL (Debian: apt-get install postgresql) or set {PG_URL_VAR} to a running one",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let _ = STARTED_DIR.set(dir);
    // SAFETY: registering a plain extern "C" function with no captured state.
    unsafe {
        libc::atexit(stop_cluster);
    }
    Ok(Cluster { url })
}

/// The URL of the cluster's maintenance database (`postgres`), starting the cluster if needed.
/// Panics, saying how to get PostgreSQL, when there is none.
pub fn pg_cluster_url() -> String {
    match CLUSTER.get_or_init(start) {
        Ok(c) => c.url.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// Creates an empty database for one test and returns its URL. Runs on a thread of its own,
/// so async tests may call it.
pub fn pg_database() -> String {
    let base = pg_cluster_url();
    std::thread::spawn(move || {
        let name = format!("t_{:016x}", rand::random::<u64>());
        let mut client = ::postgres::Client::connect(&base, ::postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test cluster at {base}: {e}"));
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        match base.rfind('/') {
            Some(i) if base[..i].contains("://") && i > base.find("://").unwrap_or(0) + 2 => {
                let (head, tail) = base.split_at(i);
                let query = tail.find('?').map(|q| &tail[q..]).unwrap_or("");
                format!("{head}/{name}{query}")
            }
            _ => format!("{base}/{name}"),
        }
    })
    .join()
    .unwrap_or_else(|_| panic!("cannot create a test database"))
}
