//! `ledger-verify`: check Decision Ledger proofs offline with the log's
//! public key. Exit 0 only when everything checked holds; 1 when a check
//! fails; 2 when the command line or a file cannot be read.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use verifier::consistency_file::ConsistencyFile;
use verifier::cosignature::{Policy, WitnessKey, Witnessing};
use verifier::decision::LoggedDecision;
use verifier::enforcer_signature::{EnforcerKeys, Signed};
use verifier::{
    account, chain, checkpoint, cosignature, evidence, export, receipt, shown, tlog_proof,
    VerifierKey,
};

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
        #[command(flatten)]
        witnesses: WitnessArgs,
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
        /// The key the older checkpoint is signed by, if the log rotated its
        /// key between the two (specs/keys.md); default: --key.
        #[arg(long)]
        old_key: Option<String>,
        #[command(flatten)]
        witnesses: WitnessArgs,
        /// The older signed checkpoint.
        old: PathBuf,
        /// The newer signed checkpoint.
        new: PathBuf,
        /// The consistency proof file (`old N`, `new M`, base64 hashes).
        proof: PathBuf,
    },
    /// Verify one decision's evidence file and print an account of it.
    Evidence {
        /// The log's verifier key (`name+id+base64`), or a file holding it.
        #[arg(long)]
        key: String,
        #[command(flatten)]
        witnesses: WitnessArgs,
        #[command(flatten)]
        enforcers: EnforcerArgs,
        /// Print the account as JSON.
        #[arg(long)]
        json: bool,
        /// The evidence file (`ledgerctl evidence`, `GET /v1/decisions/<id>/evidence`).
        file: PathBuf,
    },
    /// Verify a COSE receipt (RFC 9942) for a leaf and print an account of it.
    Receipt {
        /// The log's verifier key (`name+id+base64`), or a file holding it.
        #[arg(long)]
        key: String,
        /// The exact leaf bytes (`GET /v1/decisions/<id>` with `Accept: application/cbor`).
        #[arg(long)]
        leaf: PathBuf,
        #[command(flatten)]
        enforcers: EnforcerArgs,
        /// Print the account as JSON.
        #[arg(long)]
        json: bool,
        /// The receipt (`GET /v1/decisions/<id>/receipt`).
        receipt: PathBuf,
    },
    /// Verify a chain bundle: every hop's proof and that the hops are linked;
    /// print the chain, the agreement per request and the findings.
    Chain {
        /// The log's verifier key (`name+id+base64`), or a file holding it.
        #[arg(long)]
        key: String,
        #[command(flatten)]
        witnesses: WitnessArgs,
        #[command(flatten)]
        enforcers: EnforcerArgs,
        /// Print the chain as JSON.
        #[arg(long)]
        json: bool,
        /// The chain bundle (`ledgerctl chain`, `GET /v1/decisions/<id>/chain`).
        file: PathBuf,
    },
    /// Verify a compliance export (`ledgerctl export`): every file, every
    /// leaf, the range against the signed checkpoint, the boundary leaves,
    /// and that the JSONL, CSV, OCSF and report are what the leaves yield.
    Export {
        /// The log's verifier key (`name+id+base64`), or a file holding it.
        #[arg(long)]
        key: String,
        #[command(flatten)]
        witnesses: WitnessArgs,
        #[command(flatten)]
        enforcers: EnforcerArgs,
        /// The export's directory.
        dir: PathBuf,
    },
    /// Audit a whole log held as a mirror (`ledgerctl mirror`, or any copy
    /// of its tlog-tiles files, specs/mirror.md): every entry rehashed into
    /// the tree, which must reach the newest checkpoint's root and every
    /// kept checkpoint's, and each --checkpoint's (ones you saw before:
    /// the log you audit extends them).
    Mirror {
        /// The log's verifier key (`name+id+base64`), or a file holding it.
        #[arg(long)]
        key: String,
        /// A key the log signed with before a key rotation (repeatable);
        /// the mirror's log.retired is read too.
        #[arg(long, value_name = "KEY")]
        retired: Vec<String>,
        /// A checkpoint of this log you hold (repeatable): the entries
        /// must reach its root at its size.
        #[arg(long = "checkpoint", value_name = "FILE")]
        held: Vec<PathBuf>,
        #[command(flatten)]
        witnesses: WitnessArgs,
        /// The mirror's directory.
        dir: PathBuf,
    },
    /// Verify a signed checkpoint and print its size and root.
    Checkpoint {
        /// The log's verifier key (`name+id+base64`), or a file holding it.
        #[arg(long)]
        key: String,
        #[command(flatten)]
        witnesses: WitnessArgs,
        /// The signed checkpoint.
        checkpoint: PathBuf,
    },
}

/// The witnesses whose cosignatures a checkpoint must carry.
#[derive(clap::Args)]
struct WitnessArgs {
    /// A witness's cosignature key (`name+id+base64`, type 0x04 Ed25519 or
    /// 0x06 ML-DSA-44), or a file
    /// holding it: its cosignature on the checkpoint is verified. Repeat
    /// for more witnesses.
    #[arg(long = "witness", value_name = "KEY")]
    witnesses: Vec<String>,
    /// How many of the --witness keys must have cosigned (default: all).
    #[arg(long, value_name = "N", requires = "witnesses")]
    quorum: Option<usize>,
}

impl WitnessArgs {
    fn policy(&self) -> Result<Policy, Failure> {
        let keys = self
            .witnesses
            .iter()
            .map(|w| load_key_as("--witness", "witness key", w, WitnessKey::parse))
            .collect::<Result<Vec<_>, _>>()?;
        Policy::new(keys, self.quorum).map_err(Failure::Input)
    }
}

/// The enforcers whose signatures of their records are checked.
#[derive(clap::Args)]
struct EnforcerArgs {
    /// An enforcer's public key (`name+id+base64`, named by its
    /// enforcer.id), or a file of such keys one a line: the signatures of
    /// that enforcer's records are verified. Repeatable.
    #[arg(long = "enforcer-key", value_name = "KEY")]
    keys: Vec<String>,
    /// Fail unless every decision is signed by its enforcer with a key
    /// given with --enforcer-key.
    #[arg(long, requires = "keys")]
    require_signed: bool,
}

impl EnforcerArgs {
    fn keys(&self) -> Result<EnforcerKeys, Failure> {
        let mut all = Vec::new();
        for k in &self.keys {
            match VerifierKey::parse(k) {
                Ok(key) => all.push(key),
                Err(_) => {
                    let text = String::from_utf8(read(Path::new(k))?).map_err(|_| {
                        Failure::Input(format!("--enforcer-key {k}: not a key nor a text file"))
                    })?;
                    let file = EnforcerKeys::parse(&text)
                        .map_err(|e| Failure::Input(format!("--enforcer-key {k}: {e}")))?;
                    all.extend_from_slice(file.keys());
                }
            }
        }
        Ok(EnforcerKeys::new(all))
    }

    /// Checks the enforcer signature of each decision (`what` names it in
    /// errors).
    fn check<'a>(
        &self,
        decisions: impl IntoIterator<Item = (String, &'a mut LoggedDecision)>,
    ) -> Result<(), Failure> {
        let keys = self.keys()?;
        for (what, logged) in decisions {
            let signed = logged
                .check_signature(&keys)
                .map_err(|e| Failure::Check(format!("{what}: {e}")))?;
            if self.require_signed && !matches!(signed, Signed::Verified { .. }) {
                return Err(Failure::Check(format!(
                    "{what} (decision {}) is {} (--require-signed)",
                    logged.decision.decision_id,
                    match signed {
                        Signed::Unsigned => "not signed by its enforcer".to_string(),
                        _ => format!(
                            "signed by its enforcer, but no --enforcer-key of {} was given",
                            logged.decision.enforcer.id
                        ),
                    }
                )));
            }
        }
        Ok(())
    }
}

/// The cosignature line of an account (none if there are no cosignatures).
fn with_witnesses(text: String, w: &Witnessing) -> String {
    match w.summary() {
        Some(line) => format!("{text}\n{line}"),
        None => text,
    }
}

/// A JSON account with the cosignatures added.
fn json_with_witnesses(mut value: serde_json::Value, w: &Witnessing) -> serde_json::Value {
    if let Some(o) = value.as_object_mut() {
        o.insert("witnesses".into(), w.to_json());
    }
    value
}

/// A failure with the exit code it maps to.
enum Failure {
    /// Input could not be read: exit 2.
    Input(String),
    /// A check failed: exit 1.
    Check(String),
}

/// The largest file read whole. The largest there is, a chain bundle of
/// 256 hops of 64 KiB leaves with their proofs, is about 23 MiB; a bound
/// keeps a wrong path (a device, a disk image) from filling memory.
const MAX_FILE: u64 = 256 << 20;

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    let cannot = |e: std::io::Error| Failure::Input(format!("cannot read {}: {e}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(Failure::Input(format!(
            "{} is over {} MiB: not a file ledger-verify reads",
            path.display(),
            MAX_FILE >> 20
        )));
    }
    Ok(bytes)
}

fn load_key(arg: &str) -> Result<VerifierKey, Failure> {
    load_key_as("--key", "verifier key", arg, VerifierKey::parse)
}

/// A key (`what`) given to `flag`: the key string, or a file holding it.
fn load_key_as<K>(
    flag: &str,
    what: &str,
    arg: &str,
    parse: impl Fn(&str) -> Result<K, verifier::note::KeyError>,
) -> Result<K, Failure> {
    let as_key = match parse(arg) {
        Ok(key) => return Ok(key),
        Err(e) => e,
    };
    // A key file is one short line; more than 64 KiB is not one.
    let mut text = String::new();
    std::fs::File::open(arg)
        .and_then(|f| f.take(64 << 10).read_to_string(&mut text))
        .map_err(|e| {
            Failure::Input(
                if e.kind() == std::io::ErrorKind::NotFound && arg.contains('+') {
                    // It was meant as a key: say what is wrong with it.
                    format!("{flag} {arg:?} is not a {what} ({as_key}), nor a file")
                } else {
                    format!("{flag} {arg:?} is neither a {what} nor a readable file: {e}")
                },
            )
        })?;
    parse(&text).map_err(|e| Failure::Input(format!("{what} in {arg}: {e}")))
}

/// What verified, as text or (with `--json`) as JSON.
fn account(json: bool, text: String, value: serde_json::Value) -> String {
    if json {
        value.to_string()
    } else {
        text
    }
}

fn run(cli: Cli) -> Result<String, Failure> {
    match cli.command {
        Command::Proof {
            key,
            witnesses,
            entry,
            proof,
        } => {
            let (key, policy) = (load_key(&key)?, witnesses.policy()?);
            let (entry, proof_file) = (read(&entry)?, read(&proof)?);
            let parsed = tlog_proof::TlogProof::parse(&proof_file)
                .map_err(|e| Failure::Check(format!("{}: {e}", proof.display())))?;
            let cp = parsed
                .verify(&entry, &key)
                .map_err(|e| Failure::Check(format!("{}: {e}", proof.display())))?;
            let witnessing = cosignature::witnessing(parsed.checkpoint.as_bytes(), &key, &policy)
                .map_err(|e| Failure::Check(format!("{}: {e}", proof.display())))?;
            let verdict = format!(
                "OK: entry is leaf {} of {} at tree size {} (root {})",
                parsed.index,
                cp.origin,
                cp.size,
                cp.root.to_base64()
            );
            let verdict = with_witnesses(verdict, &witnessing);
            Ok(match LoggedDecision::from_leaf(&entry) {
                Ok(logged) => format!(
                    "{verdict}\n{}",
                    account::decision_text(parsed.index, &cp, "checkpoint", &logged).trim_end()
                ),
                Err(e) => format!("{verdict}\n(the entry is not a decision record: {e})"),
            })
        }
        Command::Evidence {
            key,
            witnesses,
            enforcers,
            json,
            file,
        } => {
            let (key, policy) = (load_key(&key)?, witnesses.policy()?);
            let mut v = evidence::verify_witnessed(&read(&file)?, &key, &policy)
                .map_err(|e| Failure::Check(format!("{}: {e}", file.display())))?;
            enforcers.check([(file.display().to_string(), &mut v.logged)])?;
            Ok(account(
                json,
                format!(
                    "{}\n{}",
                    with_witnesses("OK: evidence verified".into(), &v.witnessing),
                    account::decision_text(v.index, &v.checkpoint, "checkpoint", &v.logged)
                        .trim_end()
                ),
                json_with_witnesses(
                    account::decision_json(v.index, &v.checkpoint, &v.logged),
                    &v.witnessing,
                ),
            ))
        }
        Command::Receipt {
            key,
            leaf: leaf_file,
            enforcers,
            json,
            receipt: file,
        } => {
            let key = load_key(&key)?;
            let (leaf, bytes) = (read(&leaf_file)?, read(&file)?);
            let (r, root) = receipt::verify(&bytes, &leaf, &key)
                .map_err(|e| Failure::Check(format!("{}: {e}", file.display())))?;
            let cp = checkpoint::Checkpoint {
                origin: key.name().to_string(),
                size: r.tree_size,
                root,
                extensions: vec![],
            };
            let mut logged = LoggedDecision::from_leaf(&leaf)
                .map_err(|e| Failure::Check(format!("the leaf is not a decision record: {e}")))?;
            enforcers.check([(leaf_file.display().to_string(), &mut logged)])?;
            Ok(account(
                json,
                format!(
                    "OK: COSE receipt verified: the leaf is at index {} of tree size {}, whose root {} {} signed\n{}",
                    r.leaf_index,
                    r.tree_size,
                    root.to_base64(),
                    key.name(),
                    account::decision_text(r.leaf_index, &cp, "COSE receipt", &logged).trim_end()
                ),
                account::decision_json(r.leaf_index, &cp, &logged),
            ))
        }
        Command::Chain {
            key,
            witnesses,
            enforcers,
            json,
            file,
        } => {
            let (key, policy) = (load_key(&key)?, witnesses.policy()?);
            let mut c = chain::verify_witnessed(&read(&file)?, &key, &policy)
                .map_err(|e| Failure::Check(format!("{}: {e}", file.display())))?;
            enforcers.check(
                c.hops
                    .iter_mut()
                    .map(|h| (format!("the hop at index {}", h.index), &mut h.logged)),
            )?;
            Ok(account(
                json,
                format!(
                    "{}\n{}",
                    with_witnesses("OK: chain verified".into(), &c.witnessing),
                    account::chain_text(&c).trim_end()
                ),
                json_with_witnesses(account::chain_json(&c), &c.witnessing),
            ))
        }
        Command::Consistency {
            key,
            old_key,
            witnesses,
            old,
            new,
            proof,
        } => {
            let (key, policy) = (load_key(&key)?, witnesses.policy()?);
            let old_key = match old_key {
                Some(k) => load_key_as("--old-key", "verifier key", &k, VerifierKey::parse)?,
                None => key.clone(),
            };
            let (old_cp, new_cp, proof_file) = (read(&old)?, read(&new)?, read(&proof)?);
            let parsed = ConsistencyFile::parse(&proof_file)
                .map_err(|e| Failure::Check(format!("{}: {e}", proof.display())))?;
            let (o, n) = parsed
                .verify_across(&old_cp, &old_key, &new_cp, &key)
                .map_err(|e| Failure::Check(e.to_string()))?;
            let witnessing = cosignature::witnessing(&new_cp, &key, &policy)
                .map_err(|e| Failure::Check(format!("{}: {e}", new.display())))?;
            Ok(with_witnesses(
                format!(
                    "OK: {} at size {} extends size {} (append-only between them)",
                    n.origin, n.size, o.size
                ),
                &witnessing,
            ))
        }
        Command::Export {
            key,
            witnesses,
            enforcers,
            dir,
        } => {
            let (key, policy) = (load_key(&key)?, witnesses.policy()?);
            let open = |name: &str| {
                let path = dir.join(name);
                std::fs::File::open(&path)
                    .map_err(|e| Failure::Input(format!("cannot read {}: {e}", path.display())))
            };
            let src = export::Sources {
                manifest: read(&dir.join(export::MANIFEST))?,
                checkpoint: read(&dir.join(export::CHECKPOINT))?,
                report: read(&dir.join(export::REPORT))?,
                leaves: open(export::LEAVES)?,
                jsonl: open(export::JSONL)?,
                csv: open(export::CSV)?,
                ocsf: open(export::OCSF)?,
            };
            let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let keys = enforcers.keys()?;
            let verdict = export::verify_signed(src, &key, &policy, &keys, |done, total| {
                if tty {
                    eprint!("\rverifying {done}/{total} leaves");
                }
            });
            if tty {
                eprintln!();
            }
            let v = verdict.map_err(|e| Failure::Check(format!("{}: {e}", dir.display())))?;
            let sig = v.signatures;
            if enforcers.require_signed && sig.unsigned + sig.not_checked > 0 {
                return Err(Failure::Check(format!(
                    "{}: {} of its {} disclosed decisions are not signed by their enforcer with a \
                     key given (--require-signed): {} unsigned, {} with no --enforcer-key",
                    dir.display(),
                    sig.unsigned + sig.not_checked,
                    v.manifest.counts.disclosed,
                    sig.unsigned,
                    sig.not_checked
                )));
            }
            Ok(with_witnesses(format!("OK: export {}", v), &v.witnessing))
        }
        Command::Mirror {
            key,
            retired,
            held,
            witnesses,
            dir,
        } => audit_mirror(
            &load_key(&key)?,
            &retired,
            &held,
            &witnesses.policy()?,
            &dir,
        ),
        Command::Checkpoint {
            key,
            witnesses,
            checkpoint,
        } => {
            let (key, policy) = (load_key(&key)?, witnesses.policy()?);
            let signed = read(&checkpoint)?;
            let cp = checkpoint::open(&signed, &key)
                .map_err(|e| Failure::Check(format!("{}: {e}", checkpoint.display())))?;
            let witnessing = cosignature::witnessing(&signed, &key, &policy)
                .map_err(|e| Failure::Check(format!("{}: {e}", checkpoint.display())))?;
            Ok(with_witnesses(
                format!(
                    "OK: {} size {} root {}",
                    cp.origin,
                    cp.size,
                    cp.root.to_base64()
                ),
                &witnessing,
            ))
        }
    }
}

/// A mirror directory's files, read from the file system.
struct Files<'a>(&'a Path);

impl verifier::mirror::MirrorFiles for Files<'_> {
    type Error = String;

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let p = self.0.join(path);
        if !p.exists() {
            return Ok(None);
        }
        read(&p).map(Some).map_err(|f| match f {
            Failure::Input(e) | Failure::Check(e) => e,
        })
    }

    fn list(&self, path: &str) -> Result<Vec<String>, String> {
        let p = self.0.join(path);
        let Ok(entries) = std::fs::read_dir(&p) else {
            return Ok(Vec::new());
        };
        entries
            .map(|e| {
                e.map(|e| e.file_name().to_string_lossy().into_owned())
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))
            })
            .collect()
    }
}

/// `ledger-verify mirror`.
fn audit_mirror(
    key: &VerifierKey,
    retired: &[String],
    held: &[PathBuf],
    policy: &Policy,
    dir: &Path,
) -> Result<String, Failure> {
    use verifier::audit::AuditError;
    use verifier::mirror::{Mirror, MirrorError};
    let mirror = Mirror(Files(dir));
    let failed = |e: MirrorError<String>| match e {
        MirrorError::Files(e) => Failure::Input(e),
        e => Failure::Check(format!("{}: {e}", dir.display())),
    };
    let mut others = mirror.retired().map_err(failed)?;
    for k in retired {
        others.push(load_key_as(
            "--retired",
            "verifier key",
            k,
            VerifierKey::parse,
        )?);
    }
    let held = held
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let audited = verifier::audit::audit(&mirror, key, &others, &held, |done, total| {
        if tty {
            eprint!("\rrehashing {done}/{total} leaves");
        }
    });
    if tty {
        eprintln!();
    }
    let a = audited.map_err(|e| match e {
        AuditError::Source(e) => failed(e),
        e => Failure::Check(format!("{}: {e}", dir.display())),
    })?;
    mirror.frontier(&a.checkpoint).map_err(failed)?;
    let newest = verifier::audit::Source::checkpoint(&mirror).map_err(failed)?;
    let witnessing = cosignature::witnessing(&newest, key, policy)
        .map_err(|e| Failure::Check(format!("{}: {e}", dir.display())))?;
    let cp = &a.checkpoint;
    let mut verdict = format!(
        "OK: mirror of {}: {} entries rehashed to the root signed at size {} ({}); {} kept checkpoint{} and {} given reached on the way",
        cp.origin,
        cp.size - a.pruned,
        cp.size,
        cp.root.to_base64(),
        a.kept,
        if a.kept == 1 { "" } else { "s" },
        a.held
    );
    if let Some(note) = a.erasure_note() {
        println!("{note}");
    }
    if let Some(note) = a.pruned_note() {
        verdict.push_str(&format!("\n{note}"));
    }
    for w in a.noticed.warnings() {
        verdict.push_str(&format!("\n{w}"));
    }
    Ok(with_witnesses(verdict, &witnessing))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(verdict) => {
            // The verdict stands whether or not a reader is still there
            // (`ledger-verify chain … | head`): a closed stdout is no failure.
            // Accounts escape record text line by line already; this keeps
            // every other line printed here from carrying a terminal control.
            let _ = writeln!(std::io::stdout(), "{}", shown::lines(&verdict));
            ExitCode::SUCCESS
        }
        Err(Failure::Check(why)) => {
            eprintln!("FAILED: {}", shown::lines(&why));
            ExitCode::from(1)
        }
        Err(Failure::Input(why)) => {
            eprintln!("error: {}", shown::lines(&why));
            ExitCode::from(2)
        }
    }
}
