//! Where a guest's stdout and stderr go: ours, as they are; through the
//! [`escapes`] filter when ours is a terminal, so that a guest prints text and
//! colours but cannot drive the terminal (write the clipboard, clear the
//! screen, move the cursor over what we said). A pipe or a file gets every
//! byte untouched.

mod escapes;

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi_io::bytes::Bytes;

use escapes::Escapes;

/// Gives the guest our stdout and stderr: each through the filter when it is
/// a terminal, as is otherwise.
pub(super) fn inherit(wasi: &mut WasiCtxBuilder) {
    let (stdout, stderr) = terminals();
    if stdout {
        wasi.stdout(Terminal::new(Stream::Stdout));
    } else {
        wasi.inherit_stdout();
    }
    if stderr {
        wasi.stderr(Terminal::new(Stream::Stderr));
    } else {
        wasi.inherit_stderr();
    }
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

/// One of our output streams.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Our stdout or stderr, a terminal, as a guest's: what it writes passes the
/// filter, unbuffered. Every stream the guest opens on it shares one filter
/// (a sequence may be split across writes), new with each run's context.
#[derive(Clone)]
struct Terminal {
    stream: Stream,
    escapes: Arc<Mutex<Escapes>>,
}

impl Terminal {
    fn new(stream: Stream) -> Self {
        Self {
            stream,
            escapes: Arc::default(),
        }
    }

    /// Filters `bytes` and writes what passes, in full.
    fn write_filtered(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut escapes = self.escapes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut shown = Vec::new();
        escapes.filter(bytes, &mut shown);
        // Written under the lock: two streams' pieces stay in order.
        match self.stream {
            Stream::Stdout => std::io::stdout().lock().write_all(&shown),
            Stream::Stderr => std::io::stderr().lock().write_all(&shown),
        }
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

impl IsTerminal for Terminal {
    fn is_terminal(&self) -> bool {
        true
    }
}

impl StdoutStream for Terminal {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Terminal {
    async fn ready(&mut self) {}
}

impl OutputStream for Terminal {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_filtered(&bytes).map_err(stream_error)
    }

    fn flush(&mut self) -> StreamResult<()> {
        Terminal::flush(self).map_err(stream_error)
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // What wasmtime-wasi's own stdio allows per write.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for Terminal {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.write_filtered(bytes).map(|()| bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Terminal::flush(&self))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
