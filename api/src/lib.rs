//! # ledgerd
//!
//! The Decision Ledger HTTP service: enforcers write decision records,
//! auditors read the log as C2SP tlog-tiles, responders find and prove
//! decisions. `ledgerd` (src/main.rs) wires it to a data directory.
//! The HTTP surface is described in `specs/openapi.yaml`.

// Unsafe only in `allocator` (mimalloc's C API); denied everywhere else.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod allocator;
pub mod find;
pub mod opa;
mod read;
pub mod server;
mod stream;
pub mod tokens;
mod write;

pub use server::{router, AppState, ServerConfig};
