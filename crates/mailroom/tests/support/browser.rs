//! A real browser for the web inbox's tests: Debian's `chromium` driven through
//! `chromedriver` (WebDriver) with the fantoccini client. [`Browser::start`] starts
//! chromedriver on an ephemeral loopback port and a headless Chromium with a fresh profile;
//! both end when the [`Browser`] is dropped. Missing programs fail the test with what to
//! install (never a silent pass). Screenshots go to `target/web-inbox-screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::support::{free_port, repo_root};

/// The first of `names` found on PATH.
fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

pub struct Browser {
    pub client: Client,
    pub rt: tokio::runtime::Runtime,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Chromium, headless, behind a chromedriver of its own.
    pub fn start() -> Browser {
        let chromium = which(&["chromium", "chromium-browser", "google-chrome"]).expect(
            "the web inbox tests need Chromium: install Debian's `chromium` and `chromium-driver` \
             (apt-get install chromium chromium-driver; .ci/run does this)",
        );
        let driver_bin = which(&["chromedriver"]).expect(
            "the web inbox tests need chromedriver: install Debian's `chromium-driver` \
             (apt-get install chromium chromium-driver; .ci/run does this)",
        );
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let url = format!("http://127.0.0.1:{port}");
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,860",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let caps = match caps {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        let client = rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let mut b =
                    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
                b.capabilities(caps.clone());
                match b.connect(&url).await {
                    Ok(c) => break c,
                    Err(e) if Instant::now() > deadline => {
                        panic!("chromedriver on {url} did not start a Chromium session: {e}")
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        Browser {
            client,
            rt,
            driver,
            _profile: profile,
        }
    }

    /// Runs one future of WebDriver commands.
    pub fn run<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    /// Waits up to `secs` for an element matching the CSS selector.
    pub fn wait_css(&self, css: &str, secs: u64) -> fantoccini::elements::Element {
        self.run(async {
            self.client
                .wait()
                .at_most(Duration::from_secs(secs))
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no element {css} within {secs} s: {e}"))
        })
    }

    /// Runs JavaScript in the page (WebDriver's execute, which the page's CSP does not stop).
    pub fn js(&self, script: &str) -> serde_json::Value {
        self.run(self.client.execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("script {script:?} failed: {e}"))
    }

    /// Polls a script until it returns true.
    pub fn wait_js(&self, script: &str, secs: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.js(script) == serde_json::Value::Bool(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let shot = self.screenshot("failure");
        panic!(
            "{what}: not within {secs} s (screenshot {})",
            shot.display()
        );
    }

    /// Saves a screenshot as `target/web-inbox-screenshots/{name}.png`; returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"))
            .join("web-inbox-screenshots");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}.png"));
        if let Ok(png) = self.run(self.client.screenshot()) {
            let _ = std::fs::write(&path, png);
        }
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let c = self.client.clone();
        let _ = self.rt.block_on(c.close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
