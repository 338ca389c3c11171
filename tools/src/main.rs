//! `ledgerctl`: operate a Decision Ledger data directory and produce proofs.

mod bench;
mod datadir;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use verifier::consistency_file::ConsistencyFile;

use datadir::DataDir;

#[derive(Parser)]
#[command(
    name = "ledgerctl",
    version,
    about = "Decision Ledger operator and responder CLI"
)]
struct Cli {
    /// The data directory (RocksDB in <data>/db, keys in <data>/log.key and log.pub).
    #[arg(long, global = true, env = "LEDGER_DATA", default_value = "./data")]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a log signing key: <out>/log.key (mode 0600) and <out>/log.pub.
    Keygen {
        /// The log's origin, e.g. decisions.example.org/log.
        #[arg(long)]
        origin: String,
        /// Directory to write the keys to (use it as --data).
        #[arg(long)]
        out: PathBuf,
    },
    /// Append raw entries, one per file (`-` reads one entry from stdin); prints each index.
    Append {
        /// Files holding one entry each.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Sign a checkpoint for the current size (or print the one signed at --size).
    Checkpoint {
        /// Print the checkpoint signed at this size instead.
        #[arg(long)]
        size: Option<u64>,
    },
    /// Print a C2SP tlog-proof for an entry.
    Prove {
        /// The entry's leaf index.
        index: u64,
        /// Prove against the checkpoint signed at this size (default: sign one for the current size).
        #[arg(long)]
        size: Option<u64>,
        /// Write the proof here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print a consistency proof between two tree sizes.
    ProveConsistency {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
        /// Write the proof here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Recompute the whole tree from the entries and check every stored hash and checkpoint.
    Audit,
    /// Manage bearer tokens (effective in a running ledgerd without restart).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Load-generate against the ingest pipeline in a temp dir, next to raw RocksDB.
    Bench {
        /// Records to append (the paced phase appends as many again).
        #[arg(long, default_value_t = 200_000)]
        records: usize,
        /// Concurrent submitters.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Records per submission.
        #[arg(long, default_value_t = 16)]
        batch: usize,
        /// Varies the generated records.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Issue a token; prints it as the last line (only its hash is stored).
    Add {
        /// The enforcer (or reader) the token authenticates.
        #[arg(long)]
        enforcer: String,
        /// writer (append records) or reader (read records and proofs).
        #[arg(long)]
        role: String,
    },
    /// List tokens: id, role, enforcer.
    List,
    /// Revoke a token by its id (from `token list`).
    Revoke {
        /// The token id.
        id: String,
    },
}

fn token(data: &std::path::Path, action: TokenAction) -> Result<()> {
    use api::tokens::{self, Role};
    match action {
        TokenAction::Add { enforcer, role } => {
            let role = Role::parse(&role)
                .with_context(|| format!("--role must be writer or reader, not {role:?}"))?;
            let (entry, secret) = tokens::add(data, &enforcer, role)?;
            eprintln!(
                "token {} ({}) for {}; store it now, it is not shown again:",
                entry.id,
                role.as_str(),
                entry.enforcer
            );
            println!("{secret}");
        }
        TokenAction::List => {
            for e in tokens::load(data)? {
                println!("{} {} {}", e.id, e.role.as_str(), e.enforcer);
            }
        }
        TokenAction::Revoke { id } => {
            let gone = tokens::revoke(data, &id)?;
            println!(
                "revoked {} ({} {})",
                gone.id,
                gone.role.as_str(),
                gone.enforcer
            );
        }
    }
    Ok(())
}

fn write_out(out: Option<PathBuf>, text: &str) -> Result<()> {
    match out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => Ok(std::io::stdout().write_all(text.as_bytes())?),
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Keygen { origin, out } = &cli.command {
        let signer = ledger::keys::generate(origin)?;
        let (key, public) = ledger::keys::save(out, &signer)?;
        eprintln!(
            "wrote {} (secret, mode 0600) and {}",
            key.display(),
            public.display()
        );
        println!("{}", signer.verifier());
        return Ok(());
    }
    if let Command::Bench {
        records,
        concurrency,
        batch,
        seed,
    } = cli.command
    {
        if records == 0 || concurrency == 0 || batch == 0 {
            bail!("--records, --concurrency and --batch must be at least 1");
        }
        return bench::run(bench::BenchArgs {
            records,
            concurrency,
            batch,
            seed,
        });
    }
    if let Command::Token { action } = cli.command {
        return token(&cli.data, action);
    }
    let dir = DataDir::new(cli.data);
    match cli.command {
        Command::Keygen { .. } | Command::Bench { .. } | Command::Token { .. } => {
            unreachable!("handled above")
        }
        Command::Append { files } => {
            let mut entries = Vec::with_capacity(files.len());
            for f in &files {
                entries.push(if f == "-" {
                    let mut buf = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut buf)
                        .context("reading stdin")?;
                    buf
                } else {
                    std::fs::read(f).with_context(|| format!("reading {f}"))?
                });
            }
            let range = dir.open()?.append(&entries)?;
            for index in range {
                println!("{index}");
            }
        }
        Command::Checkpoint { size } => {
            let log = dir.open()?;
            let signed = match size {
                Some(s) => log.checkpoint_at(s)?,
                None => log.sign_checkpoint(&dir.signer()?)?,
            };
            print!("{}", signed.text);
        }
        Command::Prove { index, size, out } => {
            let log = dir.open()?;
            if size.is_none() {
                log.sign_checkpoint(&dir.signer()?)?;
            }
            write_out(out, &log.tlog_proof(index, size)?.to_text())?;
        }
        Command::ProveConsistency { old, new, out } => {
            let log = dir.open()?;
            let file = ConsistencyFile {
                old_size: old,
                new_size: new,
                proof: log.consistency_proof(old, new)?,
            };
            write_out(out, &file.to_text())?;
        }
        Command::Audit => {
            let log = dir.open_for_audit()?;
            let tty = std::io::stderr().is_terminal();
            let report = log.audit(|done, total| {
                if tty && total > 0 {
                    let width = 40 * done / total;
                    eprint!(
                        "\raudit [{}{}] {done}/{total}",
                        "#".repeat(width as usize),
                        " ".repeat(40 - width as usize)
                    );
                }
            });
            if tty {
                eprintln!();
            }
            let report = match report {
                Ok(r) => r,
                Err(e) => bail!("audit FAILED: {e}"),
            };
            println!(
                "audit OK: {} entries rehashed, {} stored hashes and {} signed checkpoints match",
                report.entries, report.nodes, report.checkpoints
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledgerctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
