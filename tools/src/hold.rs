//! `ledgerctl hold`: legal holds on a data dir (specs/holds.md). A hold
//! keeps every decision received at or after its time from retention
//! until it is released; a running ledgerd reads the holds before each
//! step of a prune, so no restart is needed.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Subcommand;
use ledger::holds;
use verifier::timestamp::Timestamp;

/// What to do with the holds.
#[derive(Subcommand, Debug)]
pub enum HoldAction {
    /// Keep every decision received at or after --since from retention,
    /// until the hold is released
    Place {
        /// The first decisions kept: RFC 3339, or a span back from now
        /// (30d, 12h).
        #[arg(long, value_parser = crate::when::bound)]
        since: String,
        /// Why (a case, a ticket, an investigation): kept with the hold.
        #[arg(long)]
        reason: String,
    },
    /// List the holds, the earliest first
    List,
    /// Release a hold: retention may remove what it kept at its next pass
    Release {
        /// The hold's id (from `hold place` or `hold list`).
        id: String,
    },
}

/// Runs `action` on the holds of the data dir `dir`.
pub fn run(dir: &Path, action: HoldAction) -> Result<()> {
    match action {
        HoldAction::Place { since, reason } => {
            let since = Timestamp::parse_text(&since)
                .with_context(|| format!("{since:?} is not a time"))?;
            let now = Timestamp(time::OffsetDateTime::now_utc());
            let h = holds::place(dir, since, now, &reason)?;
            println!(
                "legal hold {} placed: decisions received since {} are kept from retention until it is released",
                h.id,
                h.since.canonical()
            );
        }
        HoldAction::List => {
            let mut all = holds::load(dir)?;
            all.sort_by_key(|h| h.since);
            if all.is_empty() {
                println!("no legal holds");
            }
            for h in all {
                println!(
                    "{}  since {}  placed {}  {}",
                    h.id,
                    h.since.canonical(),
                    h.placed.canonical(),
                    h.reason
                );
            }
        }
        HoldAction::Release { id } => {
            let h = holds::release(dir, &id)?;
            println!(
                "legal hold {} released (it kept decisions received since {}: {})",
                h.id,
                h.since.canonical(),
                h.reason
            );
        }
    }
    Ok(())
}
