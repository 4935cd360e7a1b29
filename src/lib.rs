//! live-wasm: live coding with WebAssembly.
//!
//! Start a session on an entry module; every save of a watched file re-runs it
//! from a clean state (a fresh wasmtime `Store`), in a sandbox that grants the
//! guest nothing it was not given. The binary is a thin wrapper:
//!
//! ```no_run
//! use clap::Parser;
//! let cli = live_wasm::cli::Cli::parse();
//! let json = cli.events_on_stderr();
//! let status = cli
//!     .into_plan()
//!     .and_then(live_wasm::session::run)
//!     .unwrap_or_else(|err| {
//!         live_wasm::session::fatal(&err, json);
//!         2
//!     });
//! std::process::exit(status);
//! ```
//!
//! The public API is [`cli`] (flags to a [`plan::Plan`]), [`plan`] (build one by
//! hand), [`session::run`] and [`session::fatal`] (says the error that ended
//! it, as the session says everything else); the binary also calls
//! [`move_code`] first, which a program embedding the session may call too.
//! Inside, rooms with one concern each, data flowing one way, no room
//! importing from a room above it:
//!
//! ```text
//! cli -> plan -> session -> watch  (which files really changed)
//!                        -> build  (`--build`: the user's build command)
//!                        -> run    (one run; its face is run.rs: the Runtime, the
//!                                   runner thread, what a run returns)
//!                        -> report (the one voice: status lines or JSON events)
//!                        -> signals (Ctrl-C, SIGTERM, SIGHUP as events)
//! run -> cache -> source, engine, names
//! run -> transcript (what a guest printed), screen (`--clear`) <- report
//! run -> cache, build, screen -> progress (the line that says what takes long)
//! report -> diff (`--diff`: a run against the last) -> transcript
//! run, watch -> beneath (files a guest named, looked at beneath their folder)
//! run, session -> nearby (names under the current folder, for hints)
//! ```

#![warn(missing_docs, unreachable_pub, clippy::unwrap_used)]

pub mod cli;
pub mod plan;
pub mod session;

pub use huge_pages::move_code;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

/// Not part of the API: what `benches/compile_phases.rs` times, reached as a
/// session reaches it. A bench is a separate crate and sees only what is
/// public; these may change with any commit.
#[doc(hidden)]
pub mod internals {
    pub use crate::engine::{compile_small_modules_here, new_engine};
    pub use crate::huge_pages::HugeStack;
    pub use crate::source::to_wasm;
}

mod beneath;
mod build;
mod cache;
mod diff;
mod engine;
mod huge_pages;
mod names;
mod nearby;
mod progress;
mod report;
mod run;
mod screen;
mod serve;
mod signals;
mod source;
mod transcript;
mod watch;
