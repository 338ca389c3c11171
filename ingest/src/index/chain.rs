//! Identity chains.
