//! A real headless Chromium driven through WebDriver (chromedriver, the `fantoccini`
//! client). Each [`Browser`] starts its own chromedriver on a free port, so browser tests
//! run in parallel. Chromium or chromedriver missing fails the test (never a skip):
//! `scripts/test` installs the Debian packages `chromium` and `chromium-driver` when it can.

use crate::servers::free_port;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the screenshots go: `FIELDTRAIL_SCREENSHOTS`, else `docs/screenshots` (committed).
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("FIELDTRAIL_SCREENSHOTS").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/screenshots")),
        PathBuf::from,
    )
}

fn find(names: &[&str], fixed: &[&str]) -> Option<PathBuf> {
    for f in fixed {
        let p = PathBuf::from(f);
        if p.is_file() {
            return Some(p);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// A headless Chromium session and its own chromedriver.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: Child,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session (1280 px wide).
    pub async fn start() -> Self {
        let chromium = std::env::var_os("FIELDTRAIL_CHROMIUM")
            .map(PathBuf::from)
            .or_else(|| find(&["chromium", "chromium-browser"], &["/usr/bin/chromium"]))
            .expect("Chromium is missing: install it (Debian: apt-get install chromium chromium-driver), or run scripts/test, which does");
        let chromedriver = find(&["chromedriver"], &["/usr/bin/chromedriver"])
            .expect("chromedriver is missing: install it (Debian: apt-get install chromium-driver), or run scripts/test, which does");
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--lang=fr-FR", "--hide-scrollbars"],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a headless Chromium session");
        Self { client, driver }
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    /// The current URL's path and query.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
            .len()
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .click()
            .await
            .expect("click");
    }

    /// Runs `script` in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("script")
    }

    /// Polls (every 20 ms, at most `limit`) until the script `condition` returns true; the
    /// time it took. Panics naming `what` when it never does.
    pub async fn wait_until(&self, condition: &str, limit: Duration, what: &str) -> Duration {
        let started = Instant::now();
        loop {
            if self.js(&format!("return Boolean({condition});")).await == json!(true) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{what}: not within {limit:?} (condition: {condition})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The whole page's HTML.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("source")
    }

    /// Writes a screenshot of the whole page (up to 4,000 px high) to
    /// `<screenshot_dir>/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let height = self
            .js("return document.documentElement.scrollHeight;")
            .await
            .as_u64()
            .unwrap_or(1000)
            .clamp(600, 4000);
        self.client
            .set_window_size(1280, u32::try_from(height).unwrap_or(1000) + 120)
            .await
            .expect("resize");
        let png = self.client.screenshot().await.expect("screenshot");
        self.client
            .set_window_size(1280, 1000)
            .await
            .expect("resize back");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
