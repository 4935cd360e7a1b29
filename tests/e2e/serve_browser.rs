//! `--serve` in a real browser: Debian's chromium, driven by Playwright
//! (`tests/e2e/browser/follow_saves.py`), follows saves by itself: the page
//! reloads on a new version, shows the overlay on a failed one, and drops it
//! on the next good one.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::Duration;

use crate::serve::{Serving, serve};
use crate::support::skip_example;

/// How long the browser may take for a step: its own waits are 20 s; this
/// adds its start.
const STEP: Duration = Duration::from_secs(40);

/// The Python with Playwright in it (`.ci/install-guests`), or what is missing.
fn playwright() -> Result<PathBuf, String> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Err("missing chromium (apt-get install --no-install-recommends chromium)".into());
    }
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".toolchains/venv/bin/python");
    let found = Command::new(&python)
        .args(["-c", "import playwright.sync_api"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    match found {
        true => Ok(python),
        false => {
            Err("missing Playwright (pip install playwright==1.65.2 in .toolchains/venv)".into())
        }
    }
}

/// The browser script, its lines read as they come.
struct Browser {
    child: Child,
    lines: Receiver<String>,
}

impl Browser {
    /// Waits for the script's next line and checks it is `wanted`.
    fn expect(&mut self, wanted: &str, serving: &mut Serving) {
        match self.lines.recv_timeout(STEP) {
            Ok(line) if line == wanted => {}
            Ok(line) => panic!(
                "the browser said {line:?}, not {wanted:?}; {}",
                serving.live.transcript()
            ),
            Err(_) => panic!(
                "the browser said nothing for {STEP:?} (waiting for {wanted:?}); {}",
                serving.live.transcript()
            ),
        }
    }

    /// Tells the script a save was made.
    fn saved(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(b"saved\n").expect("tell the browser");
        stdin.flush().expect("tell the browser");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_a_browser_reloads_on_each_save_and_shows_a_failed_one_over_the_page() {
    let python = match playwright() {
        Ok(python) => python,
        Err(missing) => return skip_example("browser", &missing),
    };
    let Some(mut serving) = serve(&[]) else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/browser/follow_saves.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(serving.url("/"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the browser script");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, lines) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut browser = Browser { child, lines };

    browser.expect("saw MARK-000000", &mut serving);
    serving.save(1);
    serving.next_version();
    browser.saved();
    browser.expect("saw MARK-000001", &mut serving);

    serving.save_bytes(b"garbage, not WebAssembly");
    serving.live.expect_status("still serving version");
    browser.saved();
    browser.expect("overlay", &mut serving);

    serving.save(3);
    serving.next_version();
    browser.saved();
    browser.expect("saw MARK-000003", &mut serving);
    browser.expect("done", &mut serving);
}
