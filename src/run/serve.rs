//! `--serve`, the third way to run an entry: a component of the
//! `wasi:http/proxy` world answers HTTP requests.
//!
//! A run does not call the entry: it compiles it, links it (as any component
//! is linked: the host's functions, its siblings on demand, its split parts)
//! and instantiates it once, and only then makes it the [`Version`] that
//! answers; what fails on the way never replaces a good version. Each request
//! gets a fresh store and instance of the version current when it came, with
//! the run's limits and grants, on a thread of its own; how it went is sent to
//! the session as a [`Served`].

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use crossbeam_channel::{Receiver, Sender, unbounded};
use http_body_util::BodyExt;
use hyper::body::Bytes;
use wasmtime::component::{Component, InstancePre};
use wasmtime::{AsContextMut, Store};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::sync::ProxyIndices;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::Stores;
use super::describe::Description;
use super::host::Host;
use super::interrupt::{Interrupt, StopReason};
use super::outcome::Outcome;
use super::output;
use super::panic::StderrTail;

/// A good version of the entry, linked and checked, ready to answer.
pub(super) struct Version {
    /// The run that made it.
    pub(super) number: u64,
    pub(super) pre: InstancePre<Host>,
    pub(super) component: Component,
    /// Where its `wasi:http/incoming-handler` is, found once.
    pub(super) proxy: ProxyIndices,
}

/// How one request went, for its status line and `request` event.
#[derive(Debug)]
pub(crate) struct Served {
    /// The version that answered.
    pub(crate) version: u64,
    pub(crate) method: String,
    /// The path and query asked for.
    pub(crate) path: String,
    /// The status answered (500 when the guest failed before answering).
    pub(crate) status: u16,
    /// From the request's arrival to the guest's end (its body written).
    pub(crate) elapsed: Duration,
    /// How the guest failed, when it did: a trap, a limit, an error.
    pub(crate) failure: Option<Description>,
}

/// The version that made a response (in its extensions): what a page
/// reloads after.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServedBy(pub(crate) u64);

/// What is said when a request's guest ends, and what it held.
struct Ending {
    number: u64,
    method: String,
    path: String,
    started: Instant,
    /// Its turn among `--max-concurrent-requests`.
    permit: tokio::sync::OwnedSemaphorePermit,
    /// `--timeout`'s alarm.
    timer: Option<tokio::task::JoinHandle<()>>,
    /// The status it answered (0: none yet).
    status: Arc<AtomicU16>,
}

/// A request being answered: how to stop it, and since when it runs.
struct InFlight {
    version: u64,
    started: Instant,
    interrupt: Arc<Interrupt>,
}

/// The status noted for a request whose client went away before it was
/// answered (nginx's "client closed request").
pub(crate) const CLIENT_GONE: u16 = 499;

/// A request of an older version still running this long after a newer one
/// is ready (or already running this long when it became ready) is a runaway:
/// it is stopped, as a save stops a run.
const RUNAWAY: Duration = Duration::from_secs(1);

/// The version answering now, if there is one yet.
#[derive(Default, Clone)]
struct Current {
    version: Option<Arc<Version>>,
    /// A first version was made, or failed to be: requests wait no more.
    settled: bool,
}

/// How long a request waits for the first version, while it is being made.
const FIRST_VERSION_PATIENCE: Duration = Duration::from_secs(120);

/// What answers requests: the version current now, and what a request's
/// store is made of. Shared by the runner (which makes versions) and the
/// server's threads (which answer with them).
pub(crate) struct Handlers {
    /// What a request's store is made from, as a run's is.
    stores: Arc<Stores>,
    /// The version answering, and whether a first attempt has ended (a
    /// request waits for the first version until then).
    current: tokio::sync::watch::Sender<Current>,
    in_flight: Mutex<Vec<InFlight>>,
    served: (Sender<Served>, Receiver<Served>),
    /// Every request is said (not `--quiet`, or events on); else only those
    /// that failed, and the session is not woken for the others.
    every_request: bool,
}

/// A response body of our own: text.
fn text_body(text: String) -> HyperOutgoingBody {
    http_body_util::Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response of ours (not the guest's), in plain text.
pub(crate) fn text_response(status: u16, text: String) -> hyper::Response<HyperOutgoingBody> {
    let mut response = hyper::Response::new(text_body(text));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The answer while no version is good: a page that reloads when one is.
fn no_version_yet() -> hyper::Response<HyperOutgoingBody> {
    let mut response = text_response(
        503,
        "<!doctype html><html><head><title>live-wasm</title></head><body><p>live-wasm: no \
         good version of the component yet: its error is on the terminal. This page \
         reloads when one is ready.</p></body></html>\n"
            .to_owned(),
    );
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response.extensions_mut().insert(ServedBy(0));
    response
}

impl Handlers {
    pub(super) fn new(stores: Arc<Stores>, every_request: bool) -> Self {
        Self {
            stores,
            current: tokio::sync::watch::Sender::new(Current::default()),
            in_flight: Mutex::new(Vec::new()),
            served: unbounded(),
            every_request,
        }
    }

    /// How each request went, as it ends.
    pub(crate) fn served(&self) -> &Receiver<Served> {
        &self.served.1
    }

    /// The version that answers now; while the first one is being made (a
    /// browser opened as the session starts), that one.
    async fn current(&self) -> Option<Arc<Version>> {
        if let Some(version) = &self.current.borrow().version {
            return Some(Arc::clone(version));
        }
        let mut current = self.current.subscribe();
        let first = current.wait_for(|current| current.version.is_some() || current.settled);
        match tokio::time::timeout(FIRST_VERSION_PATIENCE, first).await {
            Ok(Ok(current)) => current.version.clone(),
            _ => self.current.borrow().version.clone(),
        }
    }

    /// No version could be made this time: requests waiting for the first
    /// one are answered that there is none.
    pub(crate) fn settled(&self) {
        self.current
            .send_if_modified(|current| !std::mem::replace(&mut current.settled, true));
    }

    /// Makes `version` the one that answers; requests of older versions
    /// that run away are stopped ([`RUNAWAY`]).
    pub(super) fn publish(self: &Arc<Self>, version: Version) {
        let number = version.number;
        self.current.send_replace(Current {
            version: Some(Arc::new(version)),
            settled: true,
        });
        self.stop_runaways(number, RUNAWAY);
        let handlers = Arc::downgrade(self);
        std::thread::spawn(move || {
            std::thread::sleep(RUNAWAY);
            if let Some(handlers) = handlers.upgrade() {
                handlers.stop_runaways(number, Duration::ZERO);
            }
        });
    }

    /// Stops the requests of versions older than `newest` running for `after` or more.
    fn stop_runaways(&self, newest: u64, after: Duration) {
        let in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for request in in_flight.iter() {
            if request.version < newest && request.started.elapsed() >= after {
                request.interrupt.request(StopReason::Change);
            }
        }
    }

    /// Stops every request: the session is ending.
    pub(crate) fn stop_all(&self) {
        let in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for request in in_flight.iter() {
            request.interrupt.request(StopReason::CtrlC);
        }
    }

    /// Answers `request` with the current version, on a thread of its own;
    /// the response comes as soon as the guest gives it (its body may follow).
    /// Nothing to answer with yet is a 503.
    pub(crate) async fn handle<B>(
        self: &Arc<Self>,
        request: hyper::Request<B>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> hyper::Response<HyperOutgoingBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let started = Instant::now();
        let Some(version) = self.current().await else {
            return no_version_yet();
        };
        let method = request.method().to_string();
        let path = request
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |path| path.as_str().to_owned());
        let interrupt = Interrupt::new(&self.stores.engine);
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(InFlight {
                version: version.number,
                started,
                interrupt: Arc::clone(&interrupt),
            });
        let timer = self.stores.limits.timeout.map(|timeout| {
            let interrupt = Arc::clone(&interrupt);
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                interrupt.request(StopReason::Timeout);
            })
        });
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let number = version.number;
        let ending = Ending {
            number,
            method,
            path,
            started,
            permit,
            timer,
            status: Arc::new(AtomicU16::new(0)),
        };
        // The guest's thread says how it ended itself: that happens even when
        // the client goes away (and hyper drops this future), with no task
        // more to wake.
        let guest = {
            let handlers = Arc::clone(self);
            let interrupt = Arc::clone(&interrupt);
            tokio::task::spawn_blocking(move || {
                let failure =
                    handlers.answer(&version, &interrupt, request, sender, &ending.status);
                let summary = failure.as_ref().map(|failure| failure.summary.clone());
                handlers.ended(ending, &interrupt, failure);
                summary
            })
        };
        match receiver.await {
            Ok(Ok(mut response)) => {
                response.extensions_mut().insert(ServedBy(number));
                response
            }
            Ok(Err(code)) => text_response(
                500,
                format!("live-wasm: the component answered an error: {code:?}\n"),
            ),
            // It ended without answering: say why.
            Err(_) => {
                let why = guest.await.ok().flatten().unwrap_or_else(|| {
                    "it returned without setting a response (`response-outparam.set`)".to_owned()
                });
                text_response(
                    500,
                    format!("live-wasm: the component failed before answering: {why}\n"),
                )
            }
        }
    }

    /// A request's guest has ended (`failure`, if it failed): its slot is
    /// free, and how it went goes to the session.
    fn ended(&self, ending: Ending, interrupt: &Arc<Interrupt>, failure: Option<Description>) {
        if let Some(timer) = &ending.timer {
            timer.abort();
        }
        drop(ending.permit);
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|request| !Arc::ptr_eq(&request.interrupt, interrupt));
        let status = match ending.status.load(Ordering::Relaxed) {
            0 => 500,
            status => status,
        };
        if failure.is_some() || self.every_request {
            let _ = self.served.0.send(Served {
                version: ending.number,
                method: ending.method,
                path: ending.path,
                status,
                elapsed: ending.started.elapsed(),
                failure,
            });
        }
    }

    /// Runs the guest for one request, on the calling thread: a fresh store,
    /// an instance of `version`, its `handle` called; how it failed, if it did.
    fn answer<B>(
        &self,
        version: &Version,
        interrupt: &Arc<Interrupt>,
        request: hyper::Request<B>,
        sender: tokio::sync::oneshot::Sender<Result<hyper::Response<HyperOutgoingBody>, ErrorCode>>,
        status: &Arc<AtomicU16>,
    ) -> Option<Description>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let stderr = Arc::new(Mutex::new(StderrTail::default()));
        let sink = output::Sink {
            screen: Arc::clone(&self.stores.screen),
            transcript: None,
            stderr: Arc::clone(&stderr),
            echo: true,
        };
        let mut store = match self.stores.new_store(Arc::clone(interrupt), &sink) {
            Ok(store) => store,
            Err(err) => return Some(Outcome::Failed(err).describe(None)),
        };
        let called = call(&mut store, version, request, sender, status);
        let mut outcome = self.stores.outcome(called, &store, interrupt);
        outcome.read_panic(&stderr.lock().unwrap_or_else(PoisonError::into_inner));
        let description = outcome.describe(store.data().memory.refused());
        (description.verdict != super::Verdict::Good).then_some(description)
    }
}

/// Instantiates `version` in `store` and calls its handler with `request`,
/// its response going to `sender`.
fn call<B>(
    store: &mut Store<Host>,
    version: &Version,
    request: hyper::Request<B>,
    sender: tokio::sync::oneshot::Sender<Result<hyper::Response<HyperOutgoingBody>, ErrorCode>>,
    status: &Arc<AtomicU16>,
) -> anyhow::Result<()>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    if store.data().interrupt.reason().is_some() {
        return Err(wasmtime::Trap::Interrupt.into());
    }
    let request = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)?;
    // The status answered is noted as the answer goes: the client may be
    // gone by then (499).
    let noted = Arc::clone(status);
    let out = store
        .data_mut()
        .http()
        .new_response_outparam_from_callback(move |answer| {
            let code = match &answer {
                Ok(response) => response.status().as_u16(),
                Err(_) => 500,
            };
            let gone = sender.send(answer).is_err();
            noted.store(if gone { CLIENT_GONE } else { code }, Ordering::Relaxed);
        })?;
    super::component::values_bounded(store.as_context_mut());
    let instance = super::instantiate::entry_prelinked(
        store.as_context_mut(),
        &version.pre,
        &version.component,
    )?;
    let proxy = version.proxy.load(&mut *store, &instance)?;
    proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut *store, request, out)?;
    Ok(())
}

/// Makes the entry, loaded in `store` by run `number`, the version that
/// answers: linked, checked to be an HTTP handler, and instantiated once
/// (what fails to instantiate fails here, not on every request).
pub(super) fn prepare(
    handlers: &Arc<Handlers>,
    store: &mut Store<Host>,
    number: u64,
) -> anyhow::Result<()> {
    let label = store.data().modules.files.entry_label();
    let component = match store.data_mut().modules.load_entry()? {
        crate::cache::Artifact::Component(component) => component,
        crate::cache::Artifact::Module(_) => {
            return Err(anyhow!(
                "{label} is a core module: --serve serves a component exporting \
                 `wasi:http/incoming-handler` (the `wasi:http/proxy` world; for Rust, \
                 built for wasm32-wasip2)"
            ));
        }
    };
    let pre = super::component::uses::prelink(&store.as_context_mut(), &component, &label)?;
    let proxy = ProxyIndices::new(&pre).map_err(|_| {
        anyhow!(
            "{label} does not export `wasi:http/incoming-handler`: --serve serves \
             components of the `wasi:http/proxy` world (to run a command, leave out --serve)"
        )
    })?;
    let instance = super::instantiate::entry_prelinked(store.as_context_mut(), &pre, &component)?;
    proxy.load(&mut *store, &instance)?;
    handlers.publish(Version {
        number,
        pre,
        component,
        proxy,
    });
    Ok(())
}
