//! live-wasm: live coding with WebAssembly.
//!
//! Start a session on an entry module; every save of a watched file re-runs it
//! from a clean state (a fresh wasmtime `Store`), in a sandbox that grants the
//! guest nothing it was not given. The binary is a thin wrapper:
//!
//! ```no_run
//! use clap::Parser;
//! let plan = live_wasm::cli::Cli::parse().into_plan()?;
//! let status = live_wasm::session::run(plan)?;
//! std::process::exit(status);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Rooms, one concern each, data flowing one way:
//! [`cli`] -> [`plan`] -> [`session`] (loop) -> [`watch`] (what changed) ->
//! [`run`] (one run: [`cache`], [`source`], [`host`], [`sleep`], [`interrupt`]) ->
//! [`report`].

#![warn(missing_docs, clippy::unwrap_used)]

pub mod cache;
pub mod cli;
pub mod engine;
pub mod events;
pub mod host;
pub mod interrupt;
pub mod invoke;
pub mod limits;
pub mod link;
pub mod names;
pub mod outcome;
pub mod plan;
pub mod report;
pub mod run;
pub mod session;
pub mod sleep;
pub mod source;
pub mod watch;
