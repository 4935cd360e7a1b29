//! The HTTP examples (`guest-examples/http/`) served as their READMEs say,
//! with a real client (curl): the page, then an edit of the source and the
//! page of the new version, from the same server.

use std::process::Command;

use crate::examples::start_args;
use crate::languages::{BUILD_WAIT, ONE_BUILD_AT_A_TIME, example_copy, toolchain};
use crate::support::{Stream, live_wasm_with_env, skip_example};

/// `folder`'s README start command, listening on a free port instead of 8080.
fn readme_args_on_a_free_port(folder: &str) -> Vec<String> {
    let args = start_args(folder);
    assert_eq!(
        args.get(..3),
        Some(
            &[
                "--serve".to_owned(),
                "--build".to_owned(),
                "./build".to_owned()
            ][..]
        ),
        "guest-examples/{folder}/README.md: {args:?}"
    );
    let mut args = args;
    args[0] = "--serve=127.0.0.1:0".to_owned();
    args
}

/// GETs `url` with curl: the status and the body.
fn get(url: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

/// Starts example `folder` as its README says, then edits `source` from
/// `before` to `after` and checks the page follows.
fn serve_and_edit(folder: &str, source: &str, before: &str, after: &str) {
    let args = readme_args_on_a_free_port(folder);
    let mut env = match toolchain(folder) {
        Ok(env) => env,
        Err(missing) => return skip_example(folder, &missing),
    };
    let _turn = ONE_BUILD_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = example_copy(folder, &mut env);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut live = live_wasm_with_env(&dir, &env, &args);
    live.set_wait(BUILD_WAIT);
    let listening = live.expect(Stream::Err, |line| line.contains("listening on http://"));
    let url = listening
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .map(|url| url.trim_end_matches(';').to_owned())
        .expect("the address");
    live.expect_run(1, "serving http://");
    let (status, page) = get(&url);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(before), "{page}");
    assert!(
        page.contains("/.live-wasm/events"),
        "no reload script: {page}"
    );
    live.expect_status("GET / 200");

    let text = dir.read(source);
    assert!(text.contains(before), "{source} no longer says {before:?}");
    dir.write_rename(source, &text.replace(before, after));
    live.expect_run(2, "serving http://");
    let (status, page) = get(&url);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(after), "{page}");
    let (status, body) = get(&format!("{url}nowhere"));
    assert_eq!(
        (status, body.contains("/.live-wasm/")),
        (404, false),
        "{body}"
    );
}

#[test]
fn the_rust_http_example_serves_its_page_and_an_edit_of_it() {
    serve_and_edit(
        "http/rust",
        "src/lib.rs",
        "Hello from Rust",
        "Hello, edited Rust",
    );
}

#[test]
fn the_python_http_example_serves_its_page_and_an_edit_of_it() {
    serve_and_edit(
        "http/python",
        "app.py",
        "Hello from Python",
        "Hello, edited Python",
    );
}
