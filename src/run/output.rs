//! Where a guest's stdout and stderr go: ours, as they are; through the
//! [`escapes`] filter when ours is a terminal, so that a guest prints text and
//! colours but cannot drive the terminal (write the clipboard, clear the
//! screen, move the cursor over what we said). A pipe or a file gets every
//! byte untouched. When the session compares runs (`--diff`) or shows the last
//! output again (`--clear`), what the guest prints is also noted in the run's
//! [`Transcript`]; under `--diff=only` it is only noted.

mod escapes;

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi_io::bytes::Bytes;

use crate::screen::Screen;
use crate::transcript::{Stream, Transcript};
use escapes::Escapes;

/// Where one run's guest output goes.
#[derive(Clone)]
pub(super) struct Sink {
    /// The terminal, to clear before the first thing shown (`--clear`).
    pub(super) screen: Arc<Screen>,
    /// Where the output is noted, if anywhere.
    pub(super) transcript: Option<Arc<Mutex<Transcript>>>,
    /// Whether the output is shown as it comes.
    pub(super) echo: bool,
}

/// Gives the guest our stdout and stderr as `sink` says: each through the
/// filter when it is a terminal, as is otherwise (wasmtime-wasi's own, when
/// nothing else is to be done with it).
pub(super) fn connect(wasi: &mut WasiCtxBuilder, sink: &Sink) {
    let (stdout, stderr) = terminals();
    let ours = sink.transcript.is_some() || !sink.echo || sink.screen.clears();
    if stdout || ours {
        wasi.stdout(GuestStream::new(Stream::Stdout, stdout, sink));
    } else {
        wasi.inherit_stdout();
    }
    if stderr || ours {
        wasi.stderr(GuestStream::new(Stream::Stderr, stderr, sink));
    } else {
        wasi.inherit_stderr();
    }
}

/// Shows again what a run printed (its tail, in order), through fresh filters
/// where ours is a terminal.
pub(crate) fn show_again(transcript: &Transcript) {
    let Some((chunks, _)) = transcript.replay() else {
        return;
    };
    let (stdout, stderr) = terminals();
    let mut filters = (Escapes::default(), Escapes::default());
    for (stream, bytes) in chunks {
        let (terminal, filter) = match stream {
            Stream::Stdout => (stdout, &mut filters.0),
            Stream::Stderr => (stderr, &mut filters.1),
        };
        let mut shown = Vec::new();
        let bytes = if terminal {
            filter.filter(bytes, &mut shown);
            &shown
        } else {
            bytes
        };
        let _ = write_to(stream, bytes);
    }
    let _ = std::io::stdout().flush();
}

/// Whether our stdout and our stderr are terminals: asked once (two system
/// calls less on each run's path); what they are does not change.
fn terminals() -> (bool, bool) {
    static TERMINALS: OnceLock<(bool, bool)> = OnceLock::new();
    *TERMINALS.get_or_init(|| {
        (
            std::io::IsTerminal::is_terminal(&std::io::stdout()),
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
    })
}

/// Writes `bytes` to our `stream`, in full.
fn write_to(stream: Stream, bytes: &[u8]) -> std::io::Result<()> {
    match stream {
        Stream::Stdout => std::io::stdout().lock().write_all(bytes),
        Stream::Stderr => std::io::stderr().lock().write_all(bytes),
    }
}

/// Our stdout or stderr as a guest's: what it writes is noted, and shown
/// through the filter on a terminal, unbuffered. Every stream the guest opens
/// on it shares one filter (a sequence may be split across writes), new with
/// each run's context.
#[derive(Clone)]
struct GuestStream {
    stream: Stream,
    /// The filter, on a terminal.
    escapes: Option<Arc<Mutex<Escapes>>>,
    sink: Sink,
}

impl GuestStream {
    fn new(stream: Stream, terminal: bool, sink: &Sink) -> Self {
        Self {
            stream,
            escapes: terminal.then(Arc::default),
            sink: sink.clone(),
        }
    }

    /// Notes `bytes` and shows them (what passes the filter), in full.
    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(transcript) = &self.sink.transcript {
            let mut transcript = transcript.lock().unwrap_or_else(PoisonError::into_inner);
            transcript.write(self.stream, bytes);
        }
        if !self.sink.echo {
            return Ok(());
        }
        self.sink.screen.before_output();
        let Some(escapes) = &self.escapes else {
            return write_to(self.stream, bytes);
        };
        let mut escapes = escapes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut shown = Vec::new();
        escapes.filter(bytes, &mut shown);
        // Written under the lock: two streams' pieces stay in order.
        let written = write_to(self.stream, &shown);
        self.sink.screen.guest_showed(&shown);
        written
    }

    fn flush(&self) -> std::io::Result<()> {
        match self.stream {
            Stream::Stdout => std::io::stdout().flush(),
            Stream::Stderr => std::io::stderr().flush(),
        }
    }
}

/// As wasmtime-wasi's own stdio: a closed terminal is a closed stream.
fn stream_error(err: std::io::Error) -> StreamError {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        StreamError::Closed
    } else {
        StreamError::LastOperationFailed(err.into())
    }
}

impl IsTerminal for GuestStream {
    fn is_terminal(&self) -> bool {
        self.escapes.is_some()
    }
}

impl StdoutStream for GuestStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestStream {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        GuestStream::write(self, &bytes).map_err(stream_error)
    }

    fn flush(&mut self) -> StreamResult<()> {
        GuestStream::flush(self).map_err(stream_error)
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // What wasmtime-wasi's own stdio allows per write.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(GuestStream::write(&self, bytes).map(|()| bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(GuestStream::flush(&self))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
