//! The browser follows the saves: an HTML response gets a small script
//! before `</body>` that listens to [`EVENTS`] (server-sent events) and
//! reloads the page when a newer version than the one that made it is
//! ready, or shows why the next version failed over the page until one is.
//! Only `text/html` that is not compressed is touched, and only under
//! [`RESERVED`] does the server answer for itself.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame};
use tokio::sync::{mpsc, watch};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::run::{ServedBy, text_response};

/// The paths the server answers itself: none of a component's.
pub(super) const RESERVED: &str = "/.live-wasm/";

/// Where pages listen for new versions.
pub(super) const EVENTS: &str = "/.live-wasm/events";

/// An HTML page bigger than this is passed on as it is.
const MAX_PAGE: usize = 8 << 20;

/// How often an idle event stream says it is alive (a client gone is noticed).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What open pages are told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct PageState {
    /// The version answering now (0: none yet).
    pub(super) version: u64,
    /// Why the version after it failed, until one is ready.
    pub(super) failed: Option<String>,
}

/// The answer to a request under [`RESERVED`]: the event stream, or 404.
pub(super) fn answer(
    path: &str,
    pages: watch::Receiver<PageState>,
) -> hyper::Response<HyperOutgoingBody> {
    if path != EVENTS {
        return text_response(
            404,
            format!("live-wasm: {RESERVED} is live-wasm's own; only {EVENTS} is there\n"),
        );
    }
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(stream_events(pages, sender));
    let mut response = hyper::Response::new(Channel { receiver }.boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}

/// Sends the page state now and on every change, as server-sent events:
/// `ready` (a version number), `failed` (a JSON string), `ok` (the failure is
/// over with no new version). Ends when the client goes.
async fn stream_events(mut pages: watch::Receiver<PageState>, sender: mpsc::Sender<Bytes>) {
    let mut told = PageState::default();
    loop {
        let now = pages.borrow_and_update().clone();
        let mut events = String::new();
        if now.version != told.version && now.version != 0 {
            events.push_str(&format!("event: ready\ndata: {}\n\n", now.version));
        }
        match (&now.failed, &told.failed) {
            (Some(why), last) if Some(why) != last.as_ref() => {
                let why = serde_json::Value::String(why.clone());
                events.push_str(&format!("event: failed\ndata: {why}\n\n"));
            }
            (None, Some(_)) => events.push_str("event: ok\ndata: \n\n"),
            _ => {}
        }
        told = now;
        if events.is_empty() {
            events.push_str(": alive\n\n");
        }
        if sender.send(Bytes::from(events)).await.is_err() {
            return;
        }
        // A change, or time to say it is alive; the server gone, the end.
        if let Ok(Err(_)) = tokio::time::timeout(KEEP_ALIVE, pages.changed()).await {
            return;
        }
    }
}

/// A response body fed by a channel.
struct Channel {
    receiver: mpsc::Receiver<Bytes>,
}

impl Body for Channel {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.receiver
            .poll_recv(cx)
            .map(|bytes| bytes.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// The first frames of a body, read already, then the rest of it.
struct Resumed {
    read: VecDeque<Frame<Bytes>>,
    rest: HyperOutgoingBody,
}

impl Body for Resumed {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(frame) = self.read.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }
}

/// Whether a response with these headers is a page to add the script to:
/// HTML, not compressed.
fn is_page(headers: &hyper::HeaderMap) -> bool {
    let html = headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .get(..9)
                .is_some_and(|kind| kind.eq_ignore_ascii_case("text/html"))
        });
    let encoded = headers
        .get(hyper::header::CONTENT_ENCODING)
        .is_some_and(|value| value.as_bytes() != b"identity");
    html && !encoded
}

/// `response`, with the reload script added when it is a page; anything
/// else (or a page too big to hold) passes as it is.
pub(super) async fn inject(
    response: hyper::Response<HyperOutgoingBody>,
) -> hyper::Response<HyperOutgoingBody> {
    let Some(ServedBy(version)) = response.extensions().get::<ServedBy>().copied() else {
        return response;
    };
    if !is_page(response.headers()) {
        return response;
    }
    let (mut parts, mut body) = response.into_parts();
    let mut read = VecDeque::new();
    let mut size = 0;
    loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                size += frame.data_ref().map_or(0, Bytes::len);
                let trailers = frame.is_trailers();
                read.push_back(frame);
                if trailers || size > MAX_PAGE {
                    break;
                }
            }
            // The guest failed part way: what it wrote, then the error.
            Some(Err(err)) => {
                let rest = ending_in(err);
                return hyper::Response::from_parts(parts, Resumed { read, rest }.boxed_unsync());
            }
            None => {
                let page: Vec<u8> = read
                    .iter()
                    .filter_map(|frame| frame.data_ref())
                    .flat_map(|bytes| bytes.iter().copied())
                    .collect();
                let page = with_script(&page, version);
                parts.headers.remove(hyper::header::CONTENT_LENGTH);
                let body = http_body_util::Full::new(Bytes::from(page))
                    .map_err(|never| match never {})
                    .boxed_unsync();
                return hyper::Response::from_parts(parts, body);
            }
        }
    }
    hyper::Response::from_parts(parts, Resumed { read, rest: body }.boxed_unsync())
}

/// A body that ends at once with `err`.
fn ending_in(err: wasmtime_wasi_http::Error) -> HyperOutgoingBody {
    Failed(Some(err)).boxed_unsync()
}

/// A body that is only an error.
struct Failed(Option<wasmtime_wasi_http::Error>);

impl Body for Failed {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.take().map(Err))
    }
}

/// The script for a page made by `version`, before its last `</body>` (at
/// its end when there is none).
fn with_script(page: &[u8], version: u64) -> Vec<u8> {
    let script = script(version);
    let at = last_body_end(page).unwrap_or(page.len());
    let mut out = Vec::with_capacity(page.len() + script.len());
    out.extend_from_slice(&page[..at]);
    out.extend_from_slice(script.as_bytes());
    out.extend_from_slice(&page[at..]);
    out
}

/// Where the last `</body>` starts, in any case.
fn last_body_end(page: &[u8]) -> Option<usize> {
    const TAG: &[u8] = b"</body";
    (0..page.len().saturating_sub(TAG.len() - 1))
        .rev()
        .find(|&at| page[at..at + TAG.len()].eq_ignore_ascii_case(TAG))
}

/// The script: reload when a version newer than `version` is ready (the
/// session may tell of the one before it a moment after this page); show a
/// failure over the page (`#live-wasm-overlay`) until the next version.
fn script(version: u64) -> String {
    format!(
        r#"<script>/* live-wasm: reloads this page when you save (--no-reload turns it off) */
(() => {{
  const version = {version};
  let overlay = null;
  const events = new EventSource("{EVENTS}");
  events.addEventListener("ready", (e) => {{ if (Number(e.data) > version) location.reload(); }});
  events.addEventListener("failed", (e) => {{
    if (!overlay) {{
      overlay = document.createElement("pre");
      overlay.id = "live-wasm-overlay";
      overlay.style.cssText = "position:fixed;inset:0;margin:0;padding:1.5em;z-index:2147483647;" +
        "background:rgba(30,0,0,.93);color:#ffdede;font:14px/1.45 monospace;white-space:pre-wrap;overflow:auto";
      document.documentElement.appendChild(overlay);
    }}
    overlay.textContent = "live-wasm: the last save failed; this page is still the last good version\n\n" + JSON.parse(e.data);
  }});
  events.addEventListener("ok", () => {{ if (overlay) {{ overlay.remove(); overlay = null; }} }});
}})();
</script>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_goes_before_the_last_body_end_tag_in_any_case() {
        let page = b"<html><body><p>a</p></BODY></html>";
        let out = String::from_utf8(with_script(page, 3)).expect("utf-8");
        let script_at = out.find("<script>").expect("script");
        assert!(script_at < out.find("</BODY>").expect("tag"));
        assert!(out.starts_with("<html><body><p>a</p><script>"));
        assert!(out.contains("const version = 3;"));
        let bare = String::from_utf8(with_script(b"<p>no body tag", 1)).expect("utf-8");
        assert!(bare.starts_with("<p>no body tag<script>"));
        assert_eq!(last_body_end(b"</bod"), None);
        assert_eq!(last_body_end(b""), None);
    }

    #[test]
    fn only_uncompressed_html_is_a_page() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = hyper::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, hyper::header::HeaderValue::from_static(value));
            }
            map
        };
        assert!(is_page(&headers(&[(
            "content-type",
            "text/html; charset=utf-8"
        )])));
        assert!(is_page(&headers(&[("content-type", "TEXT/HTML")])));
        assert!(!is_page(&headers(&[("content-type", "application/json")])));
        assert!(!is_page(&headers(&[])));
        assert!(!is_page(&headers(&[
            ("content-type", "text/html"),
            ("content-encoding", "gzip")
        ])));
    }
}
