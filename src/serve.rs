//! `--serve`'s HTTP side: the listener, connections and their bounds, and
//! what the page reload adds ([`reload`]); the guest answers through
//! [`Handlers`], which the runner keeps on the latest good version.
//!
//! HTTP/1.1 on tokio and hyper, as `wasmtime serve`. Bounds, so that no
//! client stalls another or the session: connections at most
//! [`MAX_CONNECTIONS`], each given [`HEADER_TIMEOUT`] to send its headers;
//! requests run `--max-concurrent-requests` at a time (the others wait);
//! bodies past `--max-request-body` are refused.

mod reload;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, watch};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::plan::ServePlan;
use crate::run::{Handlers, text_response};
use reload::PageState;

/// Open connections at most; past it, new ones wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;

/// How long a client has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP server of a `--serve` session; stopped when dropped.
pub(crate) struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    url: String,
    pages: watch::Sender<PageState>,
    handlers: Arc<Handlers>,
}

/// What every connection shares.
struct Shared {
    handlers: Arc<Handlers>,
    pages: watch::Receiver<PageState>,
    requests: Arc<Semaphore>,
    max_body: u64,
    reload: bool,
    /// The address a request without a `Host` header is taken to name.
    host: hyper::header::HeaderValue,
}

impl Server {
    /// Listens on `plan`'s address (an address in use is an error that names
    /// it) and answers with `handlers` from then on.
    pub(crate) fn start(plan: &ServePlan, handlers: Arc<Handlers>) -> Result<Self> {
        let listener = std::net::TcpListener::bind(plan.addr).map_err(|err| {
            let addr = plan.addr;
            match err.kind() {
                std::io::ErrorKind::AddrInUse => anyhow!(
                    "--serve: {addr} is in use: another program listens on port {}; stop \
                     it, or give another port (--serve=127.0.0.1:8081, or :0 for any free one)",
                    addr.port()
                ),
                std::io::ErrorKind::PermissionDenied => anyhow!(
                    "--serve: not allowed to listen on {addr} (ports below 1024 need \
                     privileges): give another port, like --serve=127.0.0.1:8080"
                ),
                _ => anyhow!(err).context(format!("--serve: cannot listen on {addr}")),
            }
        })?;
        listener
            .set_nonblocking(true)
            .context("--serve: cannot set up the listening socket")?;
        let addr = listener
            .local_addr()
            .context("--serve: cannot tell where it listens")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("live-wasm-serve")
            // Guests run on the blocking threads: room for wasmtime's guest
            // stack above the host's frames, as the runner has.
            .thread_stack_size(8 << 20)
            .max_blocking_threads(plan.max_concurrent_requests + 4)
            .enable_all()
            .build()
            .context("--serve: cannot start the server's threads")?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .context("--serve: cannot set up the listening socket")?
        };
        let (pages, page_state) = watch::channel(PageState::default());
        let shared = Arc::new(Shared {
            handlers: Arc::clone(&handlers),
            pages: page_state,
            requests: Arc::new(Semaphore::new(plan.max_concurrent_requests)),
            max_body: plan.max_request_body,
            reload: plan.reload,
            host: hyper::header::HeaderValue::from_str(&addr.to_string())
                .context("--serve: the address is not a host name")?,
        });
        runtime.spawn(accept(listener, shared));
        Ok(Self {
            runtime: Some(runtime),
            url: url(addr),
            pages,
            handlers,
        })
    }

    /// How each request went, as it ends.
    pub(crate) fn served(&self) -> &crossbeam_channel::Receiver<crate::run::Served> {
        self.handlers.served()
    }

    /// Where it listens: `http://127.0.0.1:8080/`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Version `version` answers from now on: open pages reload.
    pub(crate) fn ready(&self, version: u64) {
        self.pages.send_replace(PageState {
            version,
            failed: None,
        });
    }

    /// The next version failed (`why`): open pages show it over the page,
    /// until one is ready.
    pub(crate) fn failed(&self, why: String) {
        self.handlers.settled();
        self.pages.send_modify(|state| state.failed = Some(why));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handlers.stop_all();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `http://ADDR/`, for people to open.
fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}

/// Accepts connections for as long as the server runs, each served on a task
/// of its own.
async fn accept(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&connections).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, say: later.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(shared.respond(request).await) }
            });
            // A client that goes away, or sends garbage, ends only its own connection.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Shared {
    /// The answer to one request: the page reload's own, or the guest's.
    async fn respond(
        self: Arc<Self>,
        mut request: hyper::Request<Incoming>,
    ) -> hyper::Response<HyperOutgoingBody> {
        if self.reload && request.uri().path().starts_with(reload::RESERVED) {
            return reload::answer(request.uri().path(), self.pages.clone());
        }
        let declared = request
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.max_body) {
            return text_response(
                413,
                format!(
                    "live-wasm: the request body is over --max-request-body ({} bytes)\n",
                    self.max_body
                ),
            );
        }
        if !request.headers().contains_key(hyper::header::HOST) {
            (request.headers_mut()).insert(hyper::header::HOST, self.host.clone());
        }
        let max_body = self.max_body;
        let request = request.map(|body| {
            http_body_util::Limited::new(body, usize::try_from(max_body).unwrap_or(usize::MAX))
                .map_err(move |err| match err.downcast::<hyper::Error>() {
                    Ok(err) => wasmtime_wasi_http::Error::Hyper(*err),
                    Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max_body)),
                })
        });
        let Ok(permit) = Arc::clone(&self.requests).acquire_owned().await else {
            return text_response(503, "live-wasm: the server is stopping\n".to_owned());
        };
        let response = self.handlers.handle(request, permit).await;
        match self.reload {
            true => reload::inject(response).await,
            false => response,
        }
    }
}
