//! `ledger-verify`: check Decision Ledger proofs offline with the log's
//! public key. Exit 0 only when everything checked holds; 1 when a check
//! fails; 2 when the command line or a file cannot be read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use verifier::consistency_file::ConsistencyFile;
use verifier::{checkpoint, tlog_proof, VerifierKey};

#[derive(Parser)]
#[command(
    name = "ledger-verify",
    version,
    about = "Verify Decision Ledger proofs offline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify that an entry is in the log: a C2SP tlog-proof file and the entry's bytes.
    Proof {
        /// The log's verifier key (`name+id+base64`), or a file holding it.
        #[arg(long)]
        key: String,
        /// The entry (leaf bytes) the proof is for.
        #[arg(long)]
        entry: PathBuf,
        /// The `.tlog-proof` file.
        proof: PathBuf,
    },
    /// Verify that a newer checkpoint extends an older one.
    Consistency {
        /// The log's verifier key (`name+id+base64`), or a file holding it.
        #[arg(long)]
        key: String,
        /// The older signed checkpoint.
        old: PathBuf,
        /// The newer signed checkpoint.
        new: PathBuf,
        /// The consistency proof file (`old N`, `new M`, base64 hashes).
        proof: PathBuf,
    },
    /// Verify a signed checkpoint and print its size and root.
    Checkpoint {
        /// The log's verifier key (`name+id+base64`), or a file holding it.
        #[arg(long)]
        key: String,
        /// The signed checkpoint.
        checkpoint: PathBuf,
    },
}

/// A failure with the exit code it maps to.
enum Failure {
    /// Input could not be read: exit 2.
    Input(String),
    /// A check failed: exit 1.
    Check(String),
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Input(format!("cannot read {}: {e}", path.display())))
}

fn load_key(arg: &str) -> Result<VerifierKey, Failure> {
    if let Ok(key) = VerifierKey::parse(arg) {
        return Ok(key);
    }
    let text = std::fs::read_to_string(arg).map_err(|e| {
        Failure::Input(format!(
            "--key {arg:?} is neither a verifier key nor a readable file: {e}"
        ))
    })?;
    VerifierKey::parse(&text).map_err(|e| Failure::Input(format!("verifier key in {arg}: {e}")))
}

fn run(cli: Cli) -> Result<String, Failure> {
    match cli.command {
        Command::Proof { key, entry, proof } => {
            let key = load_key(&key)?;
            let (entry, proof_file) = (read(&entry)?, read(&proof)?);
            let parsed = tlog_proof::TlogProof::parse(&proof_file)
                .map_err(|e| Failure::Check(format!("{}: {e}", proof.display())))?;
            let cp = parsed
                .verify(&entry, &key)
                .map_err(|e| Failure::Check(format!("{}: {e}", proof.display())))?;
            Ok(format!(
                "OK: entry is leaf {} of {} at tree size {} (root {})",
                parsed.index,
                cp.origin,
                cp.size,
                cp.root.to_base64()
            ))
        }
        Command::Consistency {
            key,
            old,
            new,
            proof,
        } => {
            let key = load_key(&key)?;
            let (old_cp, new_cp, proof_file) = (read(&old)?, read(&new)?, read(&proof)?);
            let parsed = ConsistencyFile::parse(&proof_file)
                .map_err(|e| Failure::Check(format!("{}: {e}", proof.display())))?;
            let (o, n) = parsed
                .verify(&old_cp, &new_cp, &key)
                .map_err(|e| Failure::Check(e.to_string()))?;
            Ok(format!(
                "OK: {} at size {} extends size {} (append-only between them)",
                n.origin, n.size, o.size
            ))
        }
        Command::Checkpoint { key, checkpoint } => {
            let key = load_key(&key)?;
            let cp = checkpoint::open(&read(&checkpoint)?, &key)
                .map_err(|e| Failure::Check(format!("{}: {e}", checkpoint.display())))?;
            Ok(format!(
                "OK: {} size {} root {}",
                cp.origin,
                cp.size,
                cp.root.to_base64()
            ))
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(verdict) => {
            println!("{verdict}");
            ExitCode::SUCCESS
        }
        Err(Failure::Check(why)) => {
            eprintln!("FAILED: {why}");
            ExitCode::from(1)
        }
        Err(Failure::Input(why)) => {
            eprintln!("error: {why}");
            ExitCode::from(2)
        }
    }
}
