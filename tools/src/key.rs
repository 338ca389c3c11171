//! `ledgerctl key`: rotating the log's signing key in a data dir
//! (specs/keys.md, "Rotation"; ledger::rotation).

use std::path::Path;

use anyhow::{Context, Result};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum KeyAction {
    /// Begin a key rotation: make the next key (log.next.key, mode 0600, and
    /// log.next.pub) and print its public key. From its next start ledgerd
    /// signs every checkpoint with both keys.
    Next,
    /// Finish a key rotation: the next key becomes log.key and log.pub, the
    /// old public key is added to log.retired and the old secret key is
    /// removed. From its next start ledgerd signs with the new key alone.
    Promote,
    /// Show the log's keys: current, next (during a rotation) and retired.
    List,
}

pub fn run(data: &Path, action: KeyAction) -> Result<()> {
    let ctx = || format!("the log's keys in {}", data.display());
    match action {
        KeyAction::Next => {
            let next = ledger::rotation::begin(data).with_context(ctx)?;
            eprintln!(
                "wrote {} (secret, mode 0600) and {}. A running ledgerd signs every checkpoint \
                 with both keys within a second (or from its next start). Give the new key to auditors, witnesses \
                 (`witness serve --log` with both keys) and mirrors; then \
                 `ledgerctl --data {} key promote`.",
                data.join(ledger::keys::NEXT_SIGNER_FILE).display(),
                data.join(ledger::keys::NEXT_VERIFIER_FILE).display(),
                data.display()
            );
            println!("{next}");
        }
        KeyAction::Promote => {
            let done = ledger::rotation::promote(data).with_context(ctx)?;
            eprintln!(
                "{} now holds the new key; the old one is in {} (its secret key removed). \
                 A running ledgerd signs with the new key alone within a second (or from its next start).",
                data.join(ledger::keys::VERIFIER_FILE).display(),
                data.join(ledger::keys::RETIRED_FILE).display()
            );
            println!("current {}", done.current);
            println!("retired {}", done.retired);
        }
        KeyAction::List => {
            // Checks that the files agree, as ledgerd does.
            let keys = ledger::keys::load_keys(data).with_context(ctx)?;
            println!("current {}", keys.current());
            let retired = ledger::keys::load_retired(data).with_context(ctx)?;
            for key in keys.all()[1..].iter().filter(|k| !retired.contains(k)) {
                println!("next {key}");
            }
            for key in &retired {
                println!("retired {key}");
            }
        }
    }
    Ok(())
}
