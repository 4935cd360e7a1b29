//! The guest of the `--serve` tests (tests/e2e/serve.rs): an HTTP handler
//! whose routes each do one thing a test needs. Every answer that names a
//! version carries [`MARK`], which the tests patch in the `.wasm` bytes (same
//! length, new digits) to make a new version without a compiler.

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use wasip2::io::streams::StreamError;

wasip2::http::proxy::export!(Probe);

/// The version mark: the tests find and replace these bytes.
const MARK: &str = "MARK-000000";

struct Probe;

impl wasip2::exports::http::incoming_handler::Guest for Probe {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let full = request.path_with_query().unwrap_or_default();
        let (path, query) = full.split_once('?').unwrap_or((&full, ""));
        let text = "text/plain; charset=utf-8";
        match (request.method(), path) {
            (Method::Get, "/") => respond(
                out,
                200,
                "text/html; charset=utf-8",
                format!("<html><body><h1>{MARK}</h1></body></html>").as_bytes(),
            ),
            (Method::Get, "/text") => respond(out, 200, text, MARK.as_bytes()),
            (Method::Post, "/echo") => {
                let body = read_body(request);
                respond(out, 200, "application/octet-stream", &body)
            }
            (Method::Get, "/panic") => panic!("the probe panics on purpose"),
            (Method::Get, "/spin") => spin(),
            (Method::Get, "/sleep") => {
                let ms: u64 = param(query, "ms").and_then(|ms| ms.parse().ok()).unwrap_or(0);
                wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                respond(out, 200, text, MARK.as_bytes())
            }
            (Method::Get, "/outgoing") => {
                let answer = outgoing(param(query, "url").unwrap_or_default());
                respond(out, 200, text, answer.as_bytes())
            }
            (Method::Get, "/big") => {
                let kb: usize = param(query, "kb").and_then(|kb| kb.parse().ok()).unwrap_or(0);
                respond(out, 200, text, &vec![b'x'; kb * 1024])
            }
            _ => respond(out, 404, text, format!("not found: {path}\n").as_bytes()),
        }
    }
}

/// A runaway: loops until the host stops it.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// The value of `name` in a query string (no percent-decoding: the tests
/// send plain values).
fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Asks `url` (`http://HOST:PORT/PATH`) with GET: `sent STATUS`, or
/// `refused: ERROR` when the host refuses or the request fails.
fn outgoing(url: &str) -> String {
    let Some(rest) = url.strip_prefix("http://") else {
        return format!("not an http:// URL: {url}");
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    match wasip2::http::outgoing_handler::handle(request, None) {
        Err(code) => format!("refused: {code:?}"),
        Ok(future) => {
            future.subscribe().block();
            match future.get() {
                Some(Ok(Ok(response))) => format!("sent {}", response.status()),
                Some(Ok(Err(code))) => format!("refused: {code:?}"),
                other => format!("refused: {other:?}"),
            }
        }
    }
}

/// Sends `body` with `status` and a `content-type` header.
fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8]) {
    let headers = Fields::new();
    headers
        .append("content-type", content_type.as_bytes())
        .expect("a valid header");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("a valid status");
    let outgoing = response.body().expect("the body, once");
    ResponseOutparam::set(out, Ok(response));
    let mut stream = outgoing.write().expect("the stream, once");
    for chunk in body.chunks(4096) {
        stream.write_all(chunk).expect("write the body");
    }
    stream.flush().expect("flush the body");
    drop(stream);
    OutgoingBody::finish(outgoing, None).expect("finish the body");
}

/// The request's body.
fn read_body(request: IncomingRequest) -> Vec<u8> {
    let incoming = request.consume().expect("the body, once");
    let stream = incoming.stream().expect("the stream, once");
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend(chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => {
                panic!("reading the body: {}", error.to_debug_string())
            }
        }
    }
    bytes
}
