//! `ledgerctl`: operate a Decision Ledger data directory and produce proofs.

// The doc comments of the flags are their `--help` text, where `<data>`
// is a placeholder, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

/// mimalloc: the pipeline threads allocate records that other threads free,
/// which glibc malloc serialises on its arena locks (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod append;
mod audit;
mod bench;
mod datadir;
mod enforcer;
mod erase;
mod evidence;
mod export;
mod hold;
mod input;
mod key;
mod lock;
mod mirror;
mod prune;
mod reindex;
mod remote;
mod search;
mod ship;
mod soak;
mod status;
mod token;
mod when;
mod witness;

use std::io::{IsTerminal, Write};
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
    /// Work against a running ledgerd instead of a data dir (reads, ship, bench).
    #[arg(long, global = true, env = "LEDGER_URL")]
    url: Option<String>,
    /// Bearer token for --url (reader for reads, writer for ship and bench).
    #[arg(long, global = true, env = "LEDGER_TOKEN")]
    token: Option<String>,
    /// The log's verifier key (string or file) to check what --url serves;
    /// default: <data>/log.pub.
    #[arg(long, global = true, env = "LEDGER_KEY")]
    key: Option<String>,
    /// For an https --url whose certificate is from a private CA: the CA's
    /// certificate (PEM). Default: Mozilla's roots.
    #[arg(long, global = true, env = "LEDGER_CA")]
    ca: Option<PathBuf>,
    /// For an https --url that asks for client certificates (ledgerd
    /// --tls-client-ca): this certificate chain (PEM, leaf first); needs
    /// --client-key.
    #[arg(long, global = true, env = "LEDGER_CLIENT_CERT")]
    client_cert: Option<PathBuf>,
    /// The private key of --client-cert (PEM).
    #[arg(long, global = true, env = "LEDGER_CLIENT_KEY")]
    client_key: Option<PathBuf>,
    /// A witness (its cosignature key, or a file holding it) whose
    /// cosignature what --url serves must carry: checkpoints, proofs,
    /// evidence, chains, exports, and what a mirror stores. Repeatable.
    #[arg(long = "witness", value_name = "KEY", global = true)]
    witnesses: Vec<String>,
    /// How many of the --witness keys must have cosigned (default: all).
    #[arg(long, value_name = "N", global = true, requires = "witnesses")]
    quorum: Option<usize>,
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
        /// Directory to write the keys to (default: --data).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Append decision records to a data dir, checked, indexed and deduplicated
    /// as ledgerd does (JSON object, array or lines; CBOR record, array or
    /// sequence; `-` = stdin). Nothing is appended if any record is refused.
    Append {
        /// Files of records.
        #[arg(required = true)]
        files: Vec<String>,
        /// The identity recorded as `submitted_by` in each leaf.
        #[arg(long, default_value = "ledgerctl")]
        submitted_by: String,
    },
    #[command(flatten)]
    Evidence(evidence::What),
    /// Export every decision received in a window as a package a regulator
    /// verifies offline (specs/export.md): leaves, range proof, JSON Lines,
    /// CSV, OCSF, report.html, manifest.json.
    Export(Box<export::ExportArgs>),
    /// Remove the entries of the decisions received before a time, keeping
    /// their hashes: the tree, its checkpoints and the proofs of kept
    /// decisions do not change (ledgerd stopped; a running ledgerd prunes by
    /// itself with --retention)
    Prune(prune::PruneArgs),
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
    /// Recompute the whole tree from the entries and check every stored hash and checkpoint;
    /// warn where `received_at` goes back in log order. With --url, the
    /// log it serves; with --mirror, a mirror directory.
    Audit {
        /// Audit this mirror directory (`ledgerctl mirror`): every entry,
        /// the newest and every kept checkpoint (with --key, or the
        /// mirror's own log.pub).
        #[arg(long)]
        mirror: Option<PathBuf>,
        /// A key the log signed with before a key rotation (string or
        /// file; repeatable): its older checkpoints may be signed by that
        /// alone. A data dir's and a mirror's own log.retired are read too.
        #[arg(long = "retired-key")]
        retired_keys: Vec<String>,
        /// A checkpoint of this log you hold (repeatable): the log must
        /// reach its root at its size, so it extends what you saw.
        #[arg(long = "checkpoint", value_name = "FILE")]
        held: Vec<PathBuf>,
    },
    /// A running ledgerd at a glance (--url; --key to verify its
    /// checkpoint): readiness, size, checkpoint age and keys, witnesses,
    /// queue, each writer's last write, refusals. Exit 1 when something
    /// needs a person (each on an `attention:` line).
    Status(status::StatusArgs),
    /// Find decisions by any combination of filters (a table, or --json lines), in log order; prints the next cursor to stderr.
    Search(Box<search::SearchArgs>),
    /// Send decision records to ledgerd (--url, --token): JSON lines, a JSON array, or CBOR.
    Ship {
        /// Files of records (`-` = stdin).
        #[arg(required = true)]
        inputs: Vec<String>,
        /// Sign each record with this enforcer key file (`enforcer
        /// keygen`) before sending it (specs/signed-record.md).
        #[arg(long, value_name = "FILE")]
        signing_key: Option<PathBuf>,
        /// Follow one file of JSON lines as an enforcer appends to it,
        /// through rotations and restarts, until stopped; what is shipped
        /// is kept in --state.
        #[arg(long)]
        follow: bool,
        /// With --follow: the file keeping how far the input is shipped
        /// (default: <input>.shipped).
        #[arg(long, value_name = "FILE", requires = "follow")]
        state: Option<PathBuf>,
    },
    /// Sign decision records with an enforcer's key (`enforcer keygen`):
    /// each is checked as ledgerd checks it and written as a COSE_Sign1
    /// over its canonical bytes, all as one CBOR sequence that `ship`
    /// sends (specs/signed-record.md).
    Sign {
        /// Files of records (`-` = stdin).
        #[arg(required = true)]
        inputs: Vec<String>,
        /// The enforcer's key file (enforcer.key).
        #[arg(long, value_name = "FILE")]
        signing_key: PathBuf,
        /// Write the signed records here (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Enforcers that sign their records (specs/signed-record.md): make an
    /// enforcer's key, or register keys in --data so that ledgerd takes
    /// the enforcer's records only signed.
    Enforcer {
        #[command(subcommand)]
        command: enforcer::EnforcerCommand,
    },
    /// Keep a verified copy of a log (--url, --key) in --data as tlog-tiles
    /// files: every new checkpoint is checked, and the log's new leaves
    /// must extend the copy to its root, before anything is stored.
    Mirror {
        /// Fetch once and stop (default: follow the log).
        #[arg(long)]
        once: bool,
        /// Seconds between fetches when following.
        #[arg(long, default_value_t = 5)]
        every: u64,
        /// Follow the log's retention and erasures: remove the entries of
        /// the bundles the log removed, once their hashes are checked
        /// against the entries held, and the entries its erasure records
        /// name; keep the hashes (default: keep every entry fetched).
        #[arg(long)]
        prune: bool,
        /// Print each new decision on stdout once proven, as JSON Lines
        /// (`jsonl`: the export's lines) or OCSF API Activity
        /// (`ocsf`), for a SIEM's forwarder: a decision is printed before
        /// the checkpoint that covers it is stored, so a mirror stopped
        /// in between prints it again (at least once; the leaf index and
        /// hash tell repeats). Its own lines then go to stderr.
        #[arg(long, value_enum)]
        print: Option<mirror::Print>,
    },
    /// Rebuild a full ledger store in --data (a new directory) from a
    /// mirror: leaves at their indexes, tree, checkpoints, dedup map,
    /// indexes. Put the log's signing key back in it to run ledgerd on it.
    Restore {
        /// The mirror's directory (`ledgerctl mirror --data`).
        #[arg(long)]
        mirror: PathBuf,
    },
    /// Rebuild the responder indexes and the decision_id map (db/index)
    /// from the log's leaves, on a stopped store: when RocksDB reports
    /// them damaged, or they were lost (a running ledgerd rebuilds
    /// indexes it finds damaged by itself, and so does its start)
    Reindex,
    /// Erase one decision's entry inside the retention window, keeping
    /// its hash; the ledger logs who asked and why (--data, stopped; or
    /// --url with an eraser token)
    Erase(erase::EraseArgs),
    /// Place, list and release legal holds: decisions retention keeps
    /// (effective in a running ledgerd without restart)
    Hold {
        #[command(subcommand)]
        action: hold::HoldAction,
    },
    /// Manage bearer tokens (effective in a running ledgerd without restart).
    Token {
        #[command(subcommand)]
        action: token::TokenAction,
    },
    /// Rotate the log's signing key (--data): `key next`, then `key promote`
    /// once readers hold the next key; `key list` shows them.
    Key {
        #[command(subcommand)]
        action: key::KeyAction,
    },
    /// Run a witness that cosigns other logs' checkpoints (C2SP
    /// tlog-witness), or make its key.
    Witness {
        #[command(subcommand)]
        command: witness::WitnessCommand,
    },
    /// Load-generate against the ingest pipeline in a temp dir, next to raw RocksDB.
    Bench(bench::BenchArgs),
    /// Hold a fixed rate against a running ledgerd (--url, --token) for a
    /// bounded time: passes when nothing is refused, the queue stays
    /// bounded, every acknowledged record is in the tree and RSS is flat.
    Soak(soak::SoakArgs),
    /// Time evidence, receipts and chains as a log in a temp dir grows to
    /// each of --sizes, next to one leaf read.
    BenchProofs(bench::ProofArgs),
    /// Time a compliance export of a large window (and its verification),
    /// with peak RSS, next to reading the same leaves.
    BenchExport(bench::ExportBenchArgs),
    /// Time a prune of a large log alone, and ingest beside a prune next
    /// to ingest alone, with the disk space it frees.
    BenchRetention(bench::RetentionBenchArgs),
    /// Raw RocksDB in a temp dir: paced synced WriteBatches with chosen
    /// options, to measure the disk's fsync tail while memtables are flushed.
    PacedSync {
        /// Comma-separated: recycle (reuse 4 WAL files), sync1m / sync256k
        /// (bytes_per_sync), limitN (flushes and compactions at most N MiB/s,
        /// granted every 100 ms), grant10ms (grants every 10 ms), ledger (the
        /// ledger's own options). Empty: RocksDB's defaults.
        #[arg(long, default_value = "")]
        options: String,
        /// How long to write.
        #[arg(long, default_value_t = 15.0)]
        seconds: f64,
        /// Records per second offered.
        #[arg(long, default_value_t = 57_000.0)]
        rate: f64,
        /// Records per synced WriteBatch.
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
}

/// The keys given with `audit --retired-key`.
fn retired(keys: &[String]) -> Result<Vec<verifier::VerifierKey>> {
    keys.iter()
        .map(|k| {
            key_arg(
                "--retired-key",
                "verifier key",
                k,
                verifier::VerifierKey::parse,
            )
        })
        .collect()
}

fn load_key(cli_key: &Option<String>, dir: &DataDir) -> Result<verifier::VerifierKey> {
    match cli_key {
        Some(k) => key_arg("--key", "verifier key", k, verifier::VerifierKey::parse),
        None => dir
            .verifier()
            .context("with --url, give the log's verifier key with --key"),
    }
}

/// The witness policy of `--witness` and `--quorum`.
/// A client of the ledgerd at `url` with the global TLS, token and
/// witness options.
fn connect(cli: &Cli, url: &str) -> Result<remote::Remote> {
    let identity = match (&cli.client_cert, &cli.client_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(api::tls::ClientIdentity { cert, key }),
        _ => bail!("a client certificate needs both --client-cert and --client-key"),
    };
    Ok(
        remote::Remote::new(url, cli.token.clone(), cli.ca.as_deref(), identity)?
            .with_witnesses(witness_policy(cli)?),
    )
}

fn witness_policy(cli: &Cli) -> Result<verifier::cosignature::Policy> {
    let keys = cli
        .witnesses
        .iter()
        .map(|w| {
            key_arg(
                "--witness",
                "witness key",
                w,
                verifier::cosignature::WitnessKey::parse,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    verifier::cosignature::Policy::new(keys, cli.quorum).map_err(anyhow::Error::msg)
}

/// A key (`what`) given to `flag`: the key string, or a file holding it.
fn key_arg<K>(
    flag: &str,
    what: &str,
    k: &str,
    parse: impl Fn(&str) -> Result<K, verifier::note::KeyError>,
) -> Result<K> {
    parse(k).or_else(|as_key| {
        let text = std::fs::read_to_string(k).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && k.contains('+') {
                // It was meant as a key: say what is wrong with it.
                anyhow::anyhow!("{flag} {k:?} is not a {what} ({as_key}), nor a file")
            } else {
                anyhow::anyhow!("{flag} {k:?} is neither a {what} nor a readable file: {e}")
            }
        })?;
        parse(&text).with_context(|| format!("{flag} {k}"))
    })
}

/// Runs an audit, `work`, with a progress bar on a terminal's stderr.
fn with_progress<T>(work: impl FnOnce(&mut dyn FnMut(u64, u64)) -> Result<T>) -> Result<T> {
    let tty = std::io::stderr().is_terminal();
    let mut show = |done: u64, total: u64| {
        if tty && total > 0 {
            let width = (40 * done / total).min(40) as usize;
            eprint!(
                "\raudit [{}{}] {done}/{total}",
                "#".repeat(width),
                " ".repeat(40 - width)
            );
        }
    };
    let out = work(&mut show);
    if tty {
        eprintln!();
    }
    out
}

/// The read commands against a running ledgerd.
fn run_remote(
    remote: remote::Remote,
    key: &Option<String>,
    dir: &DataDir,
    command: Command,
) -> Result<()> {
    match command {
        Command::Checkpoint { size } => {
            let (_, text) = remote.checkpoint(&load_key(key, dir)?, size)?;
            print!("{text}");
        }
        Command::Prove { index, size, out } => {
            write_out(
                out,
                &remote.prove(&load_key(key, dir)?, index, size)?.to_text(),
            )?;
        }
        Command::ProveConsistency { old, new, out } => {
            write_out(out, &remote.consistency(old, new)?.to_text())?
        }
        Command::Audit {
            mirror: Some(_), ..
        } => {
            bail!("audit --mirror reads a directory: leave out --url")
        }
        Command::Audit {
            mirror: None,
            retired_keys,
            held,
        } => {
            let keys = ledger::keys::LogKeys::new(load_key(key, dir)?, retired(&retired_keys)?)?;
            let held = read_held(&held)?;
            let audited =
                with_progress(|p| remote.audit(&keys, &held, p)).context("audit FAILED")?;
            let cp = &audited.checkpoint;
            println!(
                "audit OK: {} entries served by {} hash to the signed checkpoint of {}",
                cp.size,
                remote.base(),
                cp.origin
            );
            held_note(audited.held);
            audit::print_notes(&audited);
        }
        Command::Search(args) => search::run_remote(&remote, &args)?,
        Command::Erase(args) => erase::run_remote(&remote, &args)?,
        Command::Status(args) => {
            let key = match key {
                Some(_) => Some(load_key(key, dir)?),
                None => dir.verifier().ok(),
            };
            if !status::run(&remote, key.as_ref(), &args)? {
                std::process::exit(1);
            }
        }
        Command::Ship {
            inputs,
            signing_key,
            follow,
            state,
        } => {
            let signer = signing_key
                .as_deref()
                .map(enforcer::load_signer)
                .transpose()?;
            ship::command(&remote, &inputs, signer.as_ref(), follow, state)?
        }
        Command::Evidence(what) => {
            let key = match key {
                Some(_) => Some(load_key(key, dir)?),
                None => dir.verifier().ok(),
            };
            evidence::run_remote(&remote, key, what)?
        }
        Command::Export(args) => export::run_remote(&remote, &load_key(key, dir)?, &args)?,
        Command::Bench(args) => bench::run_http(&remote, &args)?,
        Command::Soak(args) => soak::run(&remote, &args)?,
        _ => bail!("this command works on a data dir only; drop --url"),
    }
    Ok(())
}

/// The checkpoint files given to `audit --checkpoint`.
fn read_held(paths: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    paths
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .collect()
}

/// What an audit says of the checkpoints given to it.
fn held_note(held: usize) {
    if held > 0 {
        println!(
            "the {held} checkpoint{} given {} reached: the log extends {}",
            if held == 1 { "" } else { "s" },
            if held == 1 { "was" } else { "were" },
            if held == 1 { "it" } else { "them" }
        );
    }
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
        let out = out.as_ref().unwrap_or(&cli.data);
        let key_file = out.join(ledger::keys::SIGNER_FILE);
        if key_file.exists() {
            bail!(
                "{} already holds a log key ({}): a log keeps its key for life; to change it, rotate it (ledgerctl --data {} key next)",
                out.display(),
                key_file.display(),
                out.display()
            );
        }
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
    // A witness of other logs: its own directory, no data dir.
    if let Command::Witness { command } = cli.command {
        return witness::run(command);
    }
    if let Command::Sign {
        inputs,
        signing_key,
        out,
    } = &cli.command
    {
        return enforcer::sign(signing_key, inputs, out.as_deref());
    }
    if let Command::Enforcer { command } = cli.command {
        if cli.url.is_some() {
            bail!("enforcer keys are registered in a data dir (--data); drop --url");
        }
        return enforcer::run(&cli.data, command);
    }
    // Raw RocksDB in a temp dir: no data dir, no server.
    if let Command::PacedSync {
        options,
        seconds,
        rate,
        batch,
    } = &cli.command
    {
        return bench::paced_sync(options, *seconds, *rate, *batch);
    }
    if let Command::Mirror {
        once,
        every,
        prune,
        print,
    } = cli.command
    {
        let url = cli
            .url
            .as_deref()
            .context("mirror follows a running ledgerd: give --url and --key")?;
        let key = load_key(&cli.key, &DataDir::new(cli.data.clone()))?;
        let remote = connect(&cli, url)?;
        return mirror::run(
            &remote,
            &key,
            &cli.data,
            mirror::Follow {
                once,
                prune,
                every: std::time::Duration::from_secs(every.max(1)),
                print,
            },
        );
    }
    if let Command::Restore { mirror } = &cli.command {
        return mirror::restore(mirror, &cli.data);
    }
    if let (
        Command::Audit {
            mirror: Some(dir),
            retired_keys,
            held,
        },
        None,
    ) = (&cli.command, &cli.url)
    {
        let key = match &cli.key {
            Some(_) => load_key(&cli.key, &DataDir::new(cli.data.clone()))?,
            None => ledger::keys::load_verifier(dir)
                .with_context(|| format!("{} is not a mirror (no log.pub)", dir.display()))?,
        };
        let held = read_held(held)?;
        let audited =
            with_progress(|p| mirror::audit(dir, &key, &retired(retired_keys)?, &held, p))
                .context("audit FAILED")?;
        println!(
            "audit OK: {} entries of the mirror {} reach the root of each of its {} signed checkpoint{} (the newest at size {}), verified with {}",
            audited.checkpoint.size,
            dir.display(),
            audited.kept,
            if audited.kept == 1 { "" } else { "s" },
            audited.checkpoint.size,
            key
        );
        audit::print_notes(&audited);
        return Ok(());
    }
    if let Some(url) = &cli.url {
        if !matches!(
            cli.command,
            Command::Token { .. } | Command::Key { .. } | Command::Hold { .. }
        ) {
            return run_remote(
                connect(&cli, url)?,
                &cli.key,
                &DataDir::new(cli.data.clone()),
                cli.command,
            );
        }
    }
    if let Command::Ship { .. } = cli.command {
        bail!("ship sends records to a running ledgerd: give --url and --token");
    }
    if let Command::Status(_) = cli.command {
        bail!("status asks a running ledgerd: give --url (and --key to verify its checkpoint)");
    }
    if let Command::Soak(_) = cli.command {
        bail!("soak loads a running ledgerd: give --url and --token");
    }
    if let Command::Bench(args) = cli.command {
        return bench::run(args);
    }
    if let Command::BenchProofs(args) = cli.command {
        return bench::run_proofs(args);
    }
    if let Command::BenchExport(args) = cli.command {
        return bench::run_export_bench(args);
    }
    if let Command::BenchRetention(args) = cli.command {
        return bench::run_retention_bench(args);
    }
    if let Command::Token { action } = cli.command {
        return token::run(&cli.data, action);
    }
    if let Command::Hold { action } = cli.command {
        return hold::run(&cli.data, action);
    }
    if let Command::Key { action } = cli.command {
        return key::run(&cli.data, action);
    }
    let dir = DataDir::new(cli.data);
    match cli.command {
        Command::Keygen { .. }
        | Command::Mirror { .. }
        | Command::Restore { .. }
        | Command::Bench(_)
        | Command::BenchProofs(_)
        | Command::BenchExport(_)
        | Command::BenchRetention(_)
        | Command::PacedSync { .. }
        | Command::Token { .. }
        | Command::Hold { .. }
        | Command::Key { .. }
        | Command::Witness { .. }
        | Command::Sign { .. }
        | Command::Enforcer { .. }
        | Command::Soak(_)
        | Command::Status(_)
        | Command::Ship { .. } => {
            unreachable!("handled above")
        }
        Command::Search(args) => search::run_local(&dir, &args)?,
        Command::Append {
            files,
            submitted_by,
        } => append::run(&dir, &files, &submitted_by)?,
        Command::Evidence(what) => evidence::run_local(&dir, what)?,
        Command::Export(args) => export::run_local(&dir, &args)?,
        Command::Prune(args) => prune::run(&dir, &args)?,
        Command::Reindex => reindex::run(&dir)?,
        Command::Erase(args) => erase::run_local(&dir, &args)?,
        Command::Checkpoint { size } => {
            let log = dir.open()?;
            let signed = match size {
                Some(s) => log.checkpoint_at(s)?,
                None => log.sign_checkpoint(&dir.signer()?)?,
            };
            print!("{}", signed.cosigned());
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
        Command::Audit {
            retired_keys, held, ..
        } => {
            if !retired_keys.is_empty() {
                bail!("--retired-key is for audits of a served log (--url) or a mirror: a data dir's retired keys are its log.retired");
            }
            let log = dir.open_for_audit()?;
            let report = with_progress(|p| Ok(log.audit(p)?)).context("audit FAILED")?;
            let index_keys = log.check_indexes().context("audit FAILED")?;
            // Checkpoints held: the audited tree must have their roots.
            let keys = ledger::keys::load_keys(dir.path())?;
            for (path, text) in held.iter().zip(read_held(&held)?) {
                let cp = verifier::checkpoint::open_any(&text, keys.all())
                    .with_context(|| format!("audit FAILED: {}", path.display()))?;
                if cp.size > log.size() || log.root(cp.size)? != cp.root {
                    bail!(
                        "audit FAILED: the log does not have the root signed at size {} in {}",
                        cp.size,
                        path.display()
                    );
                }
            }
            println!(
                "audit OK: {} entries rehashed, {} stored hashes and {} signed checkpoint{} match",
                report.entries,
                report.nodes,
                report.checkpoints,
                if report.checkpoints == 1 { "" } else { "s" }
            );
            held_note(held.len());
            println!("indexes: {index_keys} keys read, every block as written (checksums match)");
            if let Some(note) = verifier::retention::note(
                report.pruned,
                "their hashes were read from the level-0 tiles and checked against every stored hash and checkpoint above them",
                report.retention_record,
            ) {
                println!("{note}");
            }
            if let Some(note) = verifier::erasure::note(report.erased, &report.pending_erasures) {
                println!("{note}");
            }
            for w in report.noticed.warnings() {
                eprintln!("{w}");
            }
        }
    }
    Ok(())
}

/// Lets a closed stdout end ledgerctl as it ends other Unix filters
/// (`ledgerctl search | head`), instead of a panic on the next print. Rust
/// ignores SIGPIPE by default; this puts back the default action. Nothing
/// is lost by it: what was appended is durable, and a retry deduplicates.
fn die_quietly_on_closed_stdout() {
    // SAFETY: called first in main, before any other thread exists;
    // SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    die_quietly_on_closed_stdout();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledgerctl: {}", verifier::shown::error(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
