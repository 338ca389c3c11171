//! # ledgerd
//!
//! The Decision Ledger HTTP service: enforcers write decision records,
//! auditors read the log as C2SP tlog-tiles, responders find and prove
//! decisions. `ledgerd` (src/main.rs) wires it to a data directory.
//! The HTTP surface is described in `specs/openapi.yaml`.

// Unsafe only in `allocator` (mimalloc's C API); denied everywhere else.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod ack;
pub mod allocator;
mod auth;
pub mod compactions;
pub mod enforcers;
mod erase;
pub mod error;
mod evidence;
mod export;
mod find;
pub mod kubernetes;
pub mod listen;
pub mod opa;
mod ops;
mod params;
pub mod peer;
pub mod quota;
mod read;
pub mod repair;
pub mod retain;
pub mod senders;
pub mod server;
pub mod starting;
pub mod state;
pub mod tls;
pub mod tokens;
mod upload;
pub mod witnesses;
mod write;

pub use listen::{serve, ConnLimits};
pub use server::router;
pub use state::{AppState, ServerConfig};
