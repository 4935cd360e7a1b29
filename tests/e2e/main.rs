//! End-to-end tests: the real `live-wasm` binary on real files in a temp dir.

mod attacks;
mod bad_inputs;
mod build;
mod build_attacks;
mod cache;
mod component_attacks;
mod component_wat;
mod components;
mod events;
mod examples;
mod guest_files;
mod guests;
mod huge_pages;
mod interpreters;
mod invoke;
mod languages;
mod limits;
mod once;
mod reads;
mod sandbox;
mod storms;
mod support;
mod trust;
mod uses;
mod waits;
mod watch;
