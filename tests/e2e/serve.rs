//! `--serve` end to end: the real binary serving the HTTP probe
//! (`tests/guests/http-probe`), asked by real clients (curl, raw sockets;
//! a browser in `tests/e2e/serve_browser.rs`), new versions saved as
//! editors save them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::components::build_test_guest;
use crate::support::{Dir, LiveWasm, Stream, WAIT, live_wasm, skip_example};

/// The bytes the probe answers with, which [`version`] replaces.
const MARK: &[u8] = b"MARK-000000";

/// The HTTP probe built for `wasm32-wasip2`, once per test process; `None`
/// (skipped, except under CI) when the target is missing.
pub(crate) fn http_probe() -> Option<Vec<u8>> {
    static BUILT: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let wasm = build_test_guest("http-probe", "wasm32-wasip2", "http_probe.wasm")?;
        Ok(std::fs::read(&wasm).expect("read the HTTP probe"))
    });
    match built {
        Ok(bytes) => Some(bytes.clone()),
        Err(missing) => {
            skip_example("http-probe", missing);
            None
        }
    }
}

/// The probe with its mark `MARK-000000` made `MARK-{mark:06}`: a new
/// version, of the same length.
pub(crate) fn version(probe: &[u8], mark: u32) -> Vec<u8> {
    let new = format!("MARK-{mark:06}");
    assert_eq!(new.len(), MARK.len(), "a mark of six digits");
    let mut bytes = probe.to_vec();
    let mut found = 0;
    let mut at = 0;
    while let Some(offset) = bytes[at..].windows(MARK.len()).position(|w| w == MARK) {
        let start = at + offset;
        bytes[start..start + MARK.len()].copy_from_slice(new.as_bytes());
        at = start + MARK.len();
        found += 1;
    }
    assert!(found > 0, "no {MARK:?} in the probe");
    bytes
}

/// The mark's number in `text`, if it has one.
pub(crate) fn mark_in(text: &str) -> Option<u32> {
    let at = text.find("MARK-")? + "MARK-".len();
    text.get(at..at + 6)?.parse().ok()
}

/// Saves `bytes` as `name` the way most editors do: a temporary file beside
/// it, renamed over it.
pub(crate) fn save_rename(dir: &Dir, name: &str, bytes: &[u8]) {
    let temp = dir.path(&format!(".{name}.tmp~"));
    std::fs::write(&temp, bytes).expect("write temp");
    std::fs::rename(&temp, dir.path(name)).expect("rename");
}

/// A `live-wasm --serve` session on the probe, in a directory of its own.
pub(crate) struct Serving {
    pub(crate) live: LiveWasm,
    pub(crate) dir: Dir,
    /// `http://127.0.0.1:PORT`, no slash at the end.
    pub(crate) base: String,
    pub(crate) probe: Vec<u8>,
    json: bool,
}

/// Serves the probe (mark 0) with `args` on a free port, and waits for its
/// first version; `None` when the probe cannot be built here.
pub(crate) fn serve(args: &[&str]) -> Option<Serving> {
    let probe = http_probe()?;
    Some(serve_bytes(&probe, &version(&probe, 0), args))
}

/// Serves `entry` (written as `probe.wasm`) with `args` on a free port, and
/// waits for its first version.
fn serve_bytes(probe: &[u8], entry: &[u8], args: &[&str]) -> Serving {
    let dir = Dir::new();
    std::fs::write(dir.path("probe.wasm"), entry).expect("write the probe");
    let mut all = vec!["--serve=127.0.0.1:0"];
    all.extend_from_slice(args);
    all.push("probe.wasm");
    let json = args.windows(2).any(|pair| pair == ["--events", "json"]);
    let live = live_wasm(&dir, &all);
    let mut serving = Serving {
        live,
        dir,
        base: String::new(),
        probe: probe.to_vec(),
        json,
    };
    let (version, line) = serving.next_version();
    assert_eq!(version, 1, "{line}");
    let url = url_in(&line).unwrap_or_else(|| panic!("no URL in {line:?}"));
    serving.base = url.trim_end_matches('/').to_owned();
    serving
}

/// The `http://…/` in a line.
fn url_in(line: &str) -> Option<String> {
    let at = line.find("http://")?;
    let url: String = line[at..]
        .chars()
        .take_while(|c| !matches!(c, '"' | ' ' | ';' | ')'))
        .collect();
    Some(url)
}

impl Serving {
    /// Waits for the next version to be served: its number, and the line
    /// that said so (the status line, or the `serving` event).
    pub(crate) fn next_version(&mut self) -> (u64, String) {
        let line = match self.json {
            true => self
                .live
                .expect(Stream::Err, |line| line.contains(r#""event":"serving""#)),
            false => self.live.expect(Stream::Err, |line| {
                line.starts_with("[live-wasm] #") && line.contains(": serving http://")
            }),
        };
        let version = match self.json {
            true => {
                let event: serde_json::Value = serde_json::from_str(&line).expect("JSON");
                event["version"].as_u64().expect("a version")
            }
            false => {
                let at = line.find("(version ").expect("(version N)") + "(version ".len();
                let digits: String = line[at..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse().expect("a version number")
            }
        };
        (version, line)
    }

    /// Saves the probe with `mark` (renamed over, as editors save).
    pub(crate) fn save(&self, mark: u32) {
        save_rename(&self.dir, "probe.wasm", &version(&self.probe, mark));
    }

    /// Saves `bytes` as the probe (renamed over).
    pub(crate) fn save_bytes(&self, bytes: &[u8]) {
        save_rename(&self.dir, "probe.wasm", bytes);
    }

    /// `BASE/PATH`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path` with curl; panics with the session's output if it fails.
    pub(crate) fn get(&mut self, path: &str) -> Reply {
        let url = self.url(path);
        match curl(&[&url]) {
            Ok(reply) => reply,
            Err(err) => panic!("GET {path}: {err}; {}", self.live.transcript()),
        }
    }

    /// The port it listens on.
    fn port(&self) -> u16 {
        let (_, port) = self.base.rsplit_once(':').expect("a port");
        port.parse().expect("a port number")
    }
}

/// An HTTP response as curl got it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// Names in lowercase.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs curl with `args` (a URL among them) and parses what it got: a real
/// client, no proxy, no `Expect: 100-continue`, bounded by [`WAIT`].
pub(crate) fn curl(args: &[&str]) -> Result<Reply, String> {
    let output = Command::new("curl")
        .args(["-sS", "-i", "--noproxy", "*", "-H", "Expect:", "--max-time"])
        .arg(WAIT.as_secs().to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run curl: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "curl {args:?}: {} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse_reply(&output.stdout).ok_or_else(|| {
        format!(
            "curl {args:?}: not an HTTP response: {:?}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// A response as `curl -i` prints it (after any `1xx` heads).
fn parse_reply(mut raw: &[u8]) -> Option<Reply> {
    loop {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&raw[..end]).ok()?;
        let rest = &raw[end + 4..];
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        if (100..200).contains(&status) {
            raw = rest;
            continue;
        }
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        return Some(Reply {
            status,
            headers,
            body: rest.to_vec(),
        });
    }
}

/// A status line of a request: `[live-wasm] METHOD PATH STATUS …`.
fn request_line(live: &mut LiveWasm, method: &str, path: &str, status: u16) -> String {
    let prefix = format!("[live-wasm] {method} {path} {status} ");
    live.expect(Stream::Err, |line| line.starts_with(&prefix))
}

#[test]
fn serve_pages_get_the_reload_script_before_body_end_other_bodies_pass_as_they_are() {
    let Some(mut serving) = serve(&[]) else {
        return;
    };
    let page = serving.get("/");
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.header("content-type")
            .is_some_and(|kind| kind.starts_with("text/html")),
        "{page:?}"
    );
    let html = page.text();
    assert!(
        html.starts_with("<html><body><h1>MARK-000000</h1><script>"),
        "{html}"
    );
    assert!(html.ends_with("</script>\n</body></html>"), "{html}");
    assert!(
        html.contains(r#"EventSource("/.live-wasm/events")"#),
        "{html}"
    );
    let line = request_line(&mut serving.live, "GET", "/", 200);
    assert!(line.ends_with("(version 1)"), "{line}");

    let text = serving.get("/text");
    assert_eq!((text.status, text.text().as_str()), (200, "MARK-000000"));
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let line = request_line(&mut serving.live, "GET", "/text", 200);
    assert!(line.ends_with("(version 1)"), "{line}");

    let body: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let file = serving.dir.path("body.bin");
    std::fs::write(&file, &body).expect("write the body");
    let echo = curl(&[
        "--data-binary",
        &format!("@{}", file.display()),
        &serving.url("/echo"),
    ])
    .expect("POST /echo");
    assert_eq!(echo.status, 200);
    assert!(
        echo.body == body,
        "the echo differs: {} bytes",
        echo.body.len()
    );
    request_line(&mut serving.live, "POST", "/echo", 200);

    let missing = serving.get("/nope");
    assert_eq!(
        (missing.status, missing.text().as_str()),
        (404, "not found: /nope\n")
    );
    request_line(&mut serving.live, "GET", "/nope", 404);

    let big = serving.get("/big?kb=1024");
    assert_eq!((big.status, big.body.len()), (200, 1 << 20));
    request_line(&mut serving.live, "GET", "/big?kb=1024", 200);
}

#[test]
fn serve_no_reload_leaves_pages_as_the_component_wrote_them() {
    let Some(mut serving) = serve(&["--no-reload"]) else {
        return;
    };
    let page = serving.get("/");
    assert_eq!(
        (page.status, page.text().as_str()),
        (200, "<html><body><h1>MARK-000000</h1></body></html>")
    );
}

#[test]
fn serve_events_json_has_a_request_event_for_each_request() {
    let Some(mut serving) = serve(&["--events", "json"]) else {
        return;
    };
    for path in ["/text", "/nope"] {
        serving.get(path);
    }
    for (path, status) in [("/text", 200), ("/nope", 404)] {
        let line = serving.live.expect(Stream::Err, |line| {
            line.contains(r#""event":"request""#) && line.contains(&format!(r#""path":"{path}""#))
        });
        let event: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(event["method"], "GET", "{line}");
        assert_eq!(event["status"], status, "{line}");
        assert_eq!(event["version"], 1, "{line}");
        assert!(event["elapsed_ms"].is_number(), "{line}");
    }
}

#[test]
fn serve_a_panic_answers_500_says_where_with_a_backtrace_and_serving_goes_on() {
    let Some(mut serving) = serve(&[]) else {
        return;
    };
    let reply = serving.get("/panic");
    assert_eq!(reply.status, 500, "{reply:?}");
    assert!(
        reply.text().contains("panicked at src/lib.rs"),
        "{}",
        reply.text()
    );
    let line = request_line(&mut serving.live, "GET", "/panic", 500);
    assert!(
        line.contains("(version 1): panicked at src/lib.rs:"),
        "{line}"
    );
    serving
        .live
        .expect(Stream::Err, |line| line.contains("wasm backtrace:"));
    serving
        .live
        .expect(Stream::Err, |line| line.contains("Guest>::handle"));
    for _ in 0..3 {
        let text = serving.get("/text");
        assert_eq!((text.status, text.text().as_str()), (200, "MARK-000000"));
    }
}

#[test]
fn serve_sixteen_clients_at_once_all_get_200() {
    let Some(mut serving) = serve(&[]) else {
        return;
    };
    let url = serving.url("/text");
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || {
                (0..20)
                    .map(|_| curl(&[&url]).map(|reply| (reply.status, reply.text())))
                    .filter(|reply| reply.as_ref().ok() != Some(&(200, "MARK-000000".to_owned())))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let failed: Vec<_> = clients
        .into_iter()
        .flat_map(|client| client.join().expect("client thread"))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 320 failed: {failed:?}; {}",
        failed.len(),
        serving.live.transcript()
    );
}

/// One request of a client that hammers: when it started, and what it got.
struct Asked {
    started: Instant,
    got: Result<(u16, String), String>,
}

#[test]
fn serve_saves_during_a_storm_of_requests_fail_none_and_each_new_version_answers_at_once() {
    let Some(mut serving) = serve(&[]) else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let url = serving.url("/text");
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut asked = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let got = curl(&[&url]).map(|reply| (reply.status, reply.text()));
                    asked.push(Asked { started, got });
                }
                asked
            })
        })
        .collect();
    // When each mark was seen served.
    let mut served = Vec::new();
    for mark in 1..=10 {
        // Half the saves in place (open, truncate, write): the watcher may
        // see the file half written, a failed version in between.
        match mark % 2 {
            0 => serving.save(mark),
            _ => std::fs::write(
                serving.dir.path("probe.wasm"),
                version(&serving.probe, mark),
            )
            .expect("write in place"),
        }
        let (_, line) = serving.next_version();
        served.push((Instant::now(), mark));
        assert!(line.contains("probe.wasm changed"), "{line}");
    }
    // The last version answers for a while.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(300) {
        thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let asked: Vec<Asked> = clients
        .into_iter()
        .flat_map(|client| client.join().expect("client thread"))
        .collect();
    let mut problems = Vec::new();
    for request in &asked {
        let newest_before = served
            .iter()
            .filter(|(when, _)| *when < request.started)
            .map(|(_, mark)| *mark)
            .max()
            .unwrap_or(0);
        match &request.got {
            Ok((200, text)) if mark_in(text).is_some_and(|mark| mark >= newest_before) => {}
            other => problems.push(format!("{other:?} (expected mark {newest_before}+)")),
        }
    }
    assert!(asked.len() > 40, "only {} requests", asked.len());
    let last = asked
        .iter()
        .filter(|request| request.started > served[9].0)
        .count();
    assert!(last > 0, "no request after the last version");
    assert!(
        problems.is_empty(),
        "{} of {} requests: {problems:?}; {}",
        problems.len(),
        asked.len(),
        serving.live.transcript()
    );
}

#[test]
fn serve_a_failed_version_keeps_the_last_good_one_answering_until_the_next_good_save() {
    let Some(mut serving) = serve(&[]) else {
        return;
    };
    let good = version(&serving.probe, 0);
    serving.save_bytes(&good[..good.len() / 2]);
    let line = serving.live.expect_run(2, "still serving version 1");
    assert!(line.contains("probe.wasm changed"), "{line}");
    let text = serving.get("/text");
    assert_eq!((text.status, text.text().as_str()), (200, "MARK-000000"));

    serving.save_bytes(b"this is no WebAssembly at all");
    serving.live.expect_run(3, "still serving version 1");
    let page = serving.get("/");
    assert!(page.text().contains("MARK-000000"), "{}", page.text());

    serving.save(4);
    let (version, line) = serving.next_version();
    assert_eq!(version, 4, "{line}");
    let text = serving.get("/text");
    assert_eq!((text.status, text.text().as_str()), (200, "MARK-000004"));
}

#[test]
fn serve_timeout_stops_a_runaway_request_with_500_and_others_are_answered_meanwhile() {
    let Some(mut serving) = serve(&["--timeout", "200ms"]) else {
        return;
    };
    let url = serving.url("/spin");
    let spin = thread::spawn(move || {
        let started = Instant::now();
        (curl(&[&url]), started.elapsed())
    });
    // Answered while /spin runs (and after it, if it ends first).
    for _ in 0..5 {
        let text = serving.get("/text");
        assert_eq!((text.status, text.text().as_str()), (200, "MARK-000000"));
    }
    let (reply, took) = spin.join().expect("spin thread");
    let reply = reply.expect("GET /spin");
    assert_eq!(reply.status, 500, "{reply:?}");
    assert!(reply.text().contains("timed out"), "{}", reply.text());
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(5),
        "/spin answered after {took:?}"
    );
    let line = request_line(&mut serving.live, "GET", "/spin", 500);
    assert!(line.contains("timed out"), "{line}");
    // Every request ran with the timer: the next /spin too.
    let again = serving.get("/spin");
    assert_eq!(again.status, 500);
}

#[test]
fn serve_timeout_limits_requests_not_the_compile_of_a_new_version() {
    // A new version's compile takes longer than 200 ms here (a debug build
    // of the probe): --timeout is per request, so the version is served.
    let Some(mut serving) = serve(&["--timeout", "200ms"]) else {
        return;
    };
    serving.save(1);
    let line = serving.live.expect_run(2, "");
    assert!(line.contains("serving http://"), "{line}");
    let text = serving.get("/text");
    assert_eq!((text.status, text.text().as_str()), (200, "MARK-000001"));
}

#[test]
fn serve_a_save_stops_an_old_versions_runaway_request_soon_after_the_new_one_is_ready() {
    let Some(mut serving) = serve(&[]) else {
        return;
    };
    let url = serving.url("/spin");
    let (ended, spin_ended) = channel();
    thread::spawn(move || {
        let reply = curl(&[&url]);
        let _ = ended.send((reply, Instant::now()));
    });
    // It runs (nothing stops it) until a new version is ready.
    assert!(
        spin_ended.recv_timeout(Duration::from_secs(2)).is_err(),
        "/spin ended with no save"
    );
    serving.save(1);
    let _ = serving.next_version();
    let ready = Instant::now();
    let (reply, when) = spin_ended
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| {
            panic!(
                "the runaway went on after the new version; {}",
                serving.live.transcript()
            )
        });
    let reply = reply.expect("GET /spin");
    assert_eq!(reply.status, 500, "{reply:?}");
    assert!(
        when.saturating_duration_since(ready) < Duration::from_secs(5),
        "stopped {:?} after the new version",
        when - ready
    );
    let text = serving.get("/text");
    assert_eq!(text.text(), "MARK-000001");
}

#[test]
fn serve_max_request_body_refuses_a_larger_declared_body_with_413_and_goes_on() {
    let Some(mut serving) = serve(&["--max-request-body", "1KiB"]) else {
        return;
    };
    let file = serving.dir.path("body.bin");
    std::fs::write(&file, vec![b'a'; 4096]).expect("write the body");
    let data = format!("@{}", file.display());
    let big = curl(&["--data-binary", &data, &serving.url("/echo")]).expect("POST 4 KiB");
    assert_eq!(big.status, 413, "{big:?}");
    // The same without a declared length (chunked): not echoed either.
    let chunked = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data,
        &serving.url("/echo"),
    ]);
    if let Ok(chunked) = chunked {
        assert!(
            chunked.status >= 400 && chunked.body.len() < 4096,
            "{} with {} bytes",
            chunked.status,
            chunked.body.len()
        );
    }
    let small = curl(&["--data-binary", "small", &serving.url("/echo")]).expect("POST small");
    assert_eq!((small.status, small.text().as_str()), (200, "small"));
    let text = serving.get("/text");
    assert_eq!(text.status, 200);
}

/// A raw connection to the server, for clients curl will not be.
fn connect(serving: &Serving) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", serving.port())).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    stream
}

#[test]
fn serve_a_client_stalled_mid_headers_or_mid_body_stalls_no_one_else() {
    let Some(mut serving) = serve(&["--max-concurrent-requests", "4"]) else {
        return;
    };
    let mut half_headers = connect(&serving);
    half_headers
        .write_all(b"GET /text HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Wait")
        .expect("write half the headers");
    let mut half_body = connect(&serving);
    half_body
        .write_all(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nabc")
        .expect("write half the body");
    let started = Instant::now();
    for _ in 0..10 {
        let text = serving.get("/text");
        assert_eq!((text.status, text.text().as_str()), (200, "MARK-000000"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "10 requests took {:?} beside the stalled clients",
        started.elapsed()
    );
    // The stalled ones are still served when they go on.
    half_headers
        .write_all(b": 1\r\nConnection: close\r\n\r\n")
        .expect("the rest of the headers");
    let mut answer = String::new();
    half_headers
        .read_to_string(&mut answer)
        .expect("read the answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\r\nMARK-000000\r\n"), "{answer}");
}

#[test]
fn serve_clients_gone_mid_request_stall_no_one_else() {
    let Some(mut serving) = serve(&["--max-concurrent-requests", "2"]) else {
        return;
    };
    // More gone clients than requests may run at once: each must give its
    // place back.
    for _ in 0..6 {
        let mut gone = connect(&serving);
        gone.write_all(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nabc")
            .expect("write half the body");
        drop(gone);
        let mut gone = connect(&serving);
        gone.write_all(b"GET /sleep?ms=300 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("write a request");
        drop(gone);
    }
    let started = Instant::now();
    for _ in 0..5 {
        let text = serving.get("/text");
        assert_eq!((text.status, text.text().as_str()), (200, "MARK-000000"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "5 requests took {:?} after the gone clients",
        started.elapsed()
    );
}

#[test]
fn serve_outgoing_http_is_refused_by_default() {
    let Some(mut serving) = serve(&[]) else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("address").port();
    let reply = serving.get(&format!("/outgoing?url=http://127.0.0.1:{port}/"));
    assert_eq!(reply.status, 200);
    assert!(
        reply.text().starts_with("refused: ") && reply.text().contains("HttpRequestDenied"),
        "{}",
        reply.text()
    );
    assert!(
        listener.accept().is_err(),
        "the guest's request reached the listener"
    );
}

#[test]
fn serve_outgoing_http_reaches_the_network_with_s_http() {
    let Some(mut serving) = serve(&["-S", "http"]) else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (heard, request) = channel();
    thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let mut first = String::new();
        let _ = reader.read_line(&mut first);
        let _ = heard.send(first);
        let mut stream = reader.into_inner();
        let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    });
    let reply = serving.get(&format!("/outgoing?url=http://127.0.0.1:{port}/hello"));
    let first = request
        .recv_timeout(WAIT)
        .expect("the guest's request reached the listener");
    assert_eq!(first, "GET /hello HTTP/1.1\r\n");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "sent 204"),
        "{reply:?}"
    );
}

#[test]
fn serve_on_a_port_in_use_exits_with_an_error_naming_the_port() {
    let dir = Dir::new();
    dir.write("main.wat", "(module (func (export \"_start\")))");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let mut live = live_wasm(&dir, &[&format!("--serve=127.0.0.1:{port}"), "main.wat"]);
    let code = live.wait_exit();
    live.read_to_end();
    let transcript = live.transcript();
    assert_ne!(code, 0, "{transcript}");
    assert!(
        transcript.contains(&format!("127.0.0.1:{port} is in use")),
        "{transcript}"
    );
}

#[test]
fn serve_a_core_module_or_a_component_without_the_handler_is_refused_by_name() {
    let dir = Dir::new();
    dir.write("main.wat", "(module (func (export \"_start\")))");
    let mut live = live_wasm(&dir, &["--serve=127.0.0.1:0", "main.wat"]);
    let line = live.expect_run(1, "");
    let why = live.expect_status("wasi:http/incoming-handler");
    assert!(why.contains("main.wat is a core module"), "{line}\n{why}");

    let dir = Dir::new();
    dir.write(
        "main.wat",
        "(component (core module $m (func (export \"f\"))) (core instance (instantiate $m)))",
    );
    let mut live = live_wasm(&dir, &["--serve=127.0.0.1:0", "main.wat"]);
    live.expect_run(1, "");
    let why = live.expect_status("wasi:http/incoming-handler");
    assert!(
        why.contains("does not export `wasi:http/incoming-handler`"),
        "{why}"
    );
}

/// The event stream of a page, read line by line by curl.
struct Events {
    curl: Child,
    lines: Receiver<String>,
}

impl Events {
    fn open(serving: &Serving) -> Self {
        let mut curl = Command::new("curl")
            .args(["-sS", "-N", "-i", "--noproxy", "*"])
            .arg(serving.url("/.live-wasm/events"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl");
        let stdout = curl.stdout.take().expect("stdout");
        let (sender, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line.trim_end_matches('\r').to_owned()).is_err() {
                    break;
                }
            }
        });
        Self { curl, lines }
    }

    /// The next line that `wanted`, skipping others; panics with the lines
    /// seen if none comes within [`WAIT`].
    fn expect(&self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(line) => seen.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("not in the event stream: {seen:?}")
                }
            }
        }
    }

    /// Waits for `event: NAME` and returns its data.
    fn event(&self, name: &str) -> String {
        let header = format!("event: {name}");
        self.expect(|line| line == header);
        let data = self.expect(|line| line.starts_with("data:"));
        data["data:".len()..].trim().to_owned()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.curl.kill();
        let _ = self.curl.wait();
    }
}

#[test]
fn serve_the_event_stream_says_ready_with_each_version_and_failed_after_a_bad_save() {
    let Some(mut serving) = serve(&[]) else {
        return;
    };
    let events = Events::open(&serving);
    events.expect(|line| line.starts_with("HTTP/1.1 200"));
    let kind = events.expect(|line| line.to_ascii_lowercase().starts_with("content-type:"));
    assert!(kind.ends_with("text/event-stream"), "{kind}");
    assert_eq!(events.event("ready"), "1");

    serving.save(2);
    let (version, _) = serving.next_version();
    assert_eq!(events.event("ready"), version.to_string());

    serving.save_bytes(b"not wasm");
    serving.live.expect_status("still serving version");
    let why = events.event("failed");
    let why: String = serde_json::from_str(&why).expect("a JSON string");
    assert!(why.contains("probe.wasm"), "{why}");

    serving.save(4);
    let (version, _) = serving.next_version();
    assert_eq!(events.event("ready"), version.to_string());
}
