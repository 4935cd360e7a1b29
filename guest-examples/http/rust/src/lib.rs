//! An HTTP handler: a component in the `wasi:http/proxy` world, which exports
//! `wasi:http/incoming-handler`. The host calls `handle` once per request.

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasip2::io::streams::StreamError;

wasip2::http::proxy::export!(Hello);

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default();
        match (request.method(), path) {
            (Method::Get, "/") => respond(response_out, 200, "text/html; charset=utf-8", PAGE),
            (Method::Get, "/api/hello") => respond(
                response_out,
                200,
                "application/json",
                r#"{"message":"Hello from Rust"}"#,
            ),
            (Method::Post, "/echo") => {
                let body = read_body(request);
                respond(response_out, 200, "text/plain; charset=utf-8", &body)
            }
            (Method::Get, "/panic") => panic!("you asked for it: {path}"),
            _ => respond(
                response_out,
                404,
                "text/plain; charset=utf-8",
                &format!("not found: {path}\n"),
            ),
        }
    }
}

const PAGE: &str = "<!doctype html>
<html>
<head><meta charset=\"utf-8\"><title>live-wasm</title></head>
<body>
<h1>Hello from Rust</h1>
<p>Edit src/lib.rs, save: this page reloads.</p>
</body>
</html>
";

/// Sends `body` with `status` and a `content-type` header.
fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &str) {
    let headers = Fields::new();
    headers
        .append("content-type", content_type.as_bytes())
        .expect("a valid header");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("a valid status");
    let outgoing = response.body().expect("the body, once");
    ResponseOutparam::set(out, Ok(response));
    let mut stream = outgoing.write().expect("the stream, once");
    stream.write_all(body.as_bytes()).expect("write the body");
    stream.flush().expect("flush the body");
    drop(stream);
    OutgoingBody::finish(outgoing, None).expect("finish the body");
}

/// The request's body, as text.
fn read_body(request: IncomingRequest) -> String {
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
    String::from_utf8_lossy(&bytes).into_owned()
}
