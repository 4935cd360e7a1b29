//! The HTTP handler `benches/serve.rs` serves: a `wasi:http/proxy` component
//! answering every request with one short text line. The bench makes each
//! save a new version by rewriting the six digits after `version ` in the
//! built .wasm (same length, so nothing else moves), and reads them back from
//! the responses.

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasi::http::proxy::export!(Handler);

struct Handler;

/// The body, with the marker the bench rewrites.
static BODY: &[u8] = b"hello from the serve bench, version 000000\n";

impl wasi::exports::http::incoming_handler::Guest for Handler {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::new();
        // Plain text: live-wasm injects its reload script only into HTML.
        let _ = headers.append("content-type", b"text/plain");
        let response = OutgoingResponse::new(headers);
        let Ok(body) = response.body() else { return };
        ResponseOutparam::set(response_out, Ok(response));
        if let Ok(out) = body.write() {
            let _ = out.blocking_write_and_flush(BODY);
        }
        let _ = OutgoingBody::finish(body, None);
    }
}
