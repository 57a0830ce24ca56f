//! Headless Chromium driven over WebDriver (fantoccini) for the web UI's tests: a
//! chromedriver of the test's own on a free port, a fresh profile, screenshots kept under
//! `target/ui-screenshots/<test>/`. A missing chromium or chromedriver fails the test
//! (deploy/test installs them).

use crate::eventually;
use crate::servers::free_port;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a page element or a live change may take to show (generous: the suite runs
/// tests side by side on two cores, Chromium included).
pub const SHOWS_WITHIN: Duration = Duration::from_secs(60);

pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
    shots: PathBuf,
    step: std::sync::atomic::AtomicU32,
    /// The UI's base URL (`http://127.0.0.1:<port>`).
    pub base: String,
}

fn which(names: &[&str]) -> String {
    for n in names {
        for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
            let p = format!("{dir}/{n}");
            if std::path::Path::new(&p).exists() {
                return p;
            }
        }
    }
    panic!("none of {names:?} is installed: deploy/test installs chromium and chromium-driver")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; `test` names the screenshots'
    /// folder, `base` is the stack's URL without `/api`.
    pub async fn start(test: &str, base: &str) -> Browser {
        let driver_bin = which(&["chromedriver"]);
        let chromium = which(&["chromium", "chromium-browser"]);
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile =
            std::env::temp_dir().join(format!("saltant-chromium-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&profile).expect("profile folder");
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/ui-screenshots")
            .join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshot folder");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--no-first-run", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }
        });
        let caps: serde_json::Map<String, Value> = caps.as_object().cloned().expect("object");
        let url = format!("http://127.0.0.1:{port}");
        let client = eventually(
            Duration::from_secs(30),
            "chromedriver to start a session",
            || {
                let caps = caps.clone();
                let url = url.clone();
                async move {
                    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                        .capabilities(caps)
                        .connect(&url)
                        .await
                        .ok()
                }
            },
        )
        .await;
        client
            .set_window_size(1280, 1000)
            .await
            .expect("set the window size");
        Browser {
            client,
            driver,
            profile,
            shots,
            step: std::sync::atomic::AtomicU32::new(0),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The element matching `css`, waiting for it to exist.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(SHOWS_WITHIN)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
    }

    /// The text of `css`, waiting for it to exist (and read again if a live update
    /// swapped it meanwhile).
    pub async fn text(&self, css: &str) -> String {
        eventually(SHOWS_WITHIN, &format!("the text of {css}"), || {
            self.text_now(css)
        })
        .await
    }

    /// Types `text` into the field `css` (emptied first).
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        e.send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clicks `css` and waits for the next page to load (a link or a form's button).
    pub async fn navigate(&self, css: &str) {
        self.js("window.__leaving = 1; return null").await;
        self.click(css).await;
        eventually(SHOWS_WITHIN, &format!("the page after {css}"), || async {
            let done = self
                .client
                .execute(
                    "return window.__leaving === undefined && document.readyState === 'complete'",
                    vec![],
                )
                .await
                .ok()?;
            (done == Value::Bool(true)).then_some(())
        })
        .await;
    }

    /// Runs `script` (a function body: `return …`) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("run {script}: {e}"))
    }

    /// The text of `css` now, if it is there (a live region may be swapped meanwhile).
    pub async fn text_now(&self, css: &str) -> Option<String> {
        self.client
            .find(Locator::Css(css))
            .await
            .ok()?
            .text()
            .await
            .ok()
    }

    /// Waits until the text of `css` contains `needle` (the page changing by itself).
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let what = format!("{css} to show {needle:?}");
        eventually(SHOWS_WITHIN, &what, || async {
            let t = self.text_now(css).await?;
            t.contains(needle).then_some(t)
        })
        .await
    }

    /// The page's heading.
    pub async fn h1(&self) -> String {
        self.text("h1").await
    }

    /// Saves a screenshot named after the step (`01-signed-in.png`, …).
    pub async fn screenshot(&self, name: &str) {
        let n = self.step.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        std::fs::write(self.shots.join(format!("{n:02}-{name}.png")), png)
            .expect("save screenshot");
    }

    /// Ends the session, then chromedriver and the profile (on drop).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test: chromedriver goes (it ends its Chromium), and the profile.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
