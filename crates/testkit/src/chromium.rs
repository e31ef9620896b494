//! Headless Chromium for end-to-end tests of the web chat: a chromedriver this process starts
//! on a free loopback port, and one WebDriver session on it (fantoccini; the protocol is never
//! written by hand here). It owns the browser's lifetime: chromedriver runs in a process group
//! of its own with the browser inside, and the group is killed on drop, so a test that panics
//! leaves nothing running. Without /usr/bin/chromium or /usr/bin/chromedriver (Debian's
//! `chromium` and `chromium-driver`) a test is skipped with a line on stderr, or fails when
//! `CI` is set, because CI installs them.

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::{Value, json};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Without these Chromium hangs on a closed network (update, sync and QUIC probes) and in a
/// container (no sandbox, no GPU, a small /dev/shm).
const FLAGS: [&str; 9] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// The longest a page may take to reach a state a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

pub struct Chromium {
    pub client: Client,
    // Dropped after the client and before the profile folder it writes into.
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// The chromedriver process; dropping it kills its process group (it and the browser).
struct Driver {
    child: Child,
    log: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = kill_process_group(Pid::from_child(&self.child), Signal::KILL);
        let _ = self.child.wait();
    }
}

impl Driver {
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        let start = (start..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(log.len());
        format!("chromedriver log (tail):\n{}", &log[start..])
    }

    /// Until chromedriver accepts connections on `port`.
    async fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromedriver exited with {status}\n{}", self.log_tail());
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within {PATIENCE:?}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Chromium {
    /// A fresh browser (its own profile folder) with a window of `width`×`height` CSS pixels;
    /// None, after a "skipped" line on stderr, when Chromium is not installed and `CI` is unset.
    pub async fn launch(width: u32, height: u32) -> Option<Chromium> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        if !missing.is_empty() {
            let missing = missing.join(" and ");
            assert!(
                std::env::var_os("CI").is_none(),
                "{missing} missing: CI must install the Debian packages chromium chromium-driver (.ci/run does)"
            );
            // Straight to stderr, past the test harness's capture, so that a skip shows.
            let _ = writeln!(
                std::io::stderr(),
                "skipped: install chromium chromium-driver ({missing} missing)"
            );
            return None;
        }

        let profile = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let log = profile.path().join("chromedriver.log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let mut driver = Driver { child, log };
        driver.wait_listening(port).await;

        // A loaded machine now and then fails to bring Chromium up in time ("DevToolsActivePort
        // file doesn't exist"): try again with a fresh profile before giving up.
        let mut attempt = 0;
        let client = loop {
            attempt += 1;
            let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
            args.push(format!(
                "--user-data-dir={}",
                profile.path().join(format!("profile-{attempt}")).display()
            ));
            let capabilities = json!({
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            });
            let Value::Object(capabilities) = capabilities else {
                unreachable!("a JSON object literal")
            };
            let url = format!("http://127.0.0.1:{port}");
            let mut builder = ClientBuilder::new(HttpConnector::new());
            let connecting = builder.capabilities(capabilities).connect(&url);
            let failure = match tokio::time::timeout(PATIENCE, connecting).await {
                Ok(Ok(client)) => break client,
                Ok(Err(e)) => format!("no browser session: {e}"),
                Err(_) => format!("no browser session within {PATIENCE:?}"),
            };
            assert!(attempt < 3, "{failure} (3 attempts)\n{}", driver.log_tail());
            let _ = writeln!(std::io::stderr(), "{failure}; starting Chromium again");
        };
        // Not `--window-size`: Chromium widens a window given that way to at least 500 px.
        client
            .set_window_size(width, height)
            .await
            .expect("set the window size");
        Some(Chromium {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Ask `probe` every 50 ms until it answers Ok, and return that; panic after [`PATIENCE`]
    /// naming `what`, with the probe's last Err and the page's text.
    pub async fn eventually<T>(
        &self,
        what: &str,
        mut probe: impl AsyncFnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match probe().await {
                Ok(done) => return done,
                Err(why) if Instant::now() >= deadline => {
                    let text = self
                        .run("return document.body.innerText", Value::Null)
                        .await;
                    panic!(
                        "waited {PATIENCE:?} for {what}: {why}\nthe page shows:\n{}",
                        text.as_str().unwrap_or_default()
                    );
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Run `script` (a function body; `arguments[0]` is `arg`) until it returns something
    /// other than null or false, and return that (see [`Chromium::eventually`]).
    pub async fn wait_for(&self, what: &str, script: &str, arg: Value) -> Value {
        self.eventually(what, async || match self.run(script, arg.clone()).await {
            Value::Null | Value::Bool(false) => Err("not yet".into()),
            done => Ok(done),
        })
        .await
    }

    /// Run `script` (a function body; `arguments[0]` is `arg`) in the page; its result.
    pub async fn run(&self, script: &str, arg: Value) -> Value {
        self.client
            .execute(script, vec![arg])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// End the session (the browser quits); the drop then stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}
