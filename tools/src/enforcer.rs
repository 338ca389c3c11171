//! `ledgerctl enforcer` and `ledgerctl sign`: records signed by the
//! enforcement point that made them (specs/signed-record.md).
//!
//! An enforcer makes its key with `enforcer keygen`; the ledger's operator
//! registers the public key with `enforcer add` (ledgerd then refuses the
//! enforcer's unsigned records, without a restart); the enforcer signs each
//! record (`sign`, `ship --signing-key`, or its own COSE library) over the
//! record's canonical bytes, which this module gets from the same checks
//! ledgerd runs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use ingest::input::{parse_body, Format, Sender};
use verifier::enforcer_signature::EnforcerSignature;
use verifier::{SignerKey, VerifierKey};

use crate::input::{self, Record};

/// The enforcer's secret key file (`enforcer keygen`).
pub const KEY_FILE: &str = "enforcer.key";
/// Its public key file (give it to the ledger's operator and auditors).
pub const PUB_FILE: &str = "enforcer.pub";

#[derive(Subcommand)]
pub enum EnforcerCommand {
    /// Make an enforcer's signing key: <out>/enforcer.key (mode 0600) and
    /// <out>/enforcer.pub, named by the enforcer.id its records declare.
    Keygen {
        /// The enforcer's id (`enforcer.id` in its records).
        #[arg(long)]
        name: String,
        /// Directory to write the keys to.
        #[arg(long)]
        out: PathBuf,
    },
    /// Register an enforcer's public key in --data: from then on (from
    /// the next request in a running ledgerd) its records are refused
    /// unless signed with one of its keys. Add the next key before an enforcer
    /// rotates, and remove the old one after.
    Add {
        /// The public key (`name+id+base64`), or a file holding it.
        key: String,
    },
    /// Remove an enforcer's keys (by enforcer id) or one key (by its
    /// 8-digit ID). Without keys left, its unsigned records are taken again.
    Remove {
        /// Enforcer id or key ID.
        which: String,
    },
    /// List the registered keys.
    List,
}

pub fn run(data: &Path, command: EnforcerCommand) -> Result<()> {
    match command {
        EnforcerCommand::Keygen { name, out } => {
            let signer = SignerKey::from_seed(&name, &ledger::keys::seed()?)
                .with_context(|| format!("--name {name:?}"))?;
            let (k, p) = ledger::keys::save_pair(
                &out,
                (KEY_FILE, &signer.to_secret_string()),
                (PUB_FILE, &signer.verifier().to_string()),
            )?;
            eprintln!(
                "wrote {} (secret, mode 0600) and {}; register the public key with \
                 `ledgerctl --data <ledger data> enforcer add {}`",
                k.display(),
                p.display(),
                p.display()
            );
            println!("{}", signer.verifier());
        }
        EnforcerCommand::Add { key } => {
            let key = crate::key_arg("enforcer add", "verifier key", &key, VerifierKey::parse)?;
            if api::enforcers::add(data, &key)? {
                eprintln!(
                    "registered key {:08x} of enforcer {}: its records must now be signed",
                    key.id(),
                    key.name()
                );
            } else {
                eprintln!(
                    "key {:08x} of enforcer {} was already registered",
                    key.id(),
                    key.name()
                );
            }
        }
        EnforcerCommand::Remove { which } => {
            for key in api::enforcers::remove(data, &which)? {
                println!("removed {key}");
            }
        }
        EnforcerCommand::List => {
            for key in api::enforcers::load(data)?.keys() {
                println!("{} {:08x} {key}", key.name(), key.id());
            }
        }
    }
    Ok(())
}

/// The enforcer key in `path` (a file holding `PRIVATE+KEY+…`).
pub fn load_signer(path: &Path) -> Result<SignerKey> {
    let text = ledger::keys::load_secret(path)?;
    SignerKey::parse(&text)
        .with_context(|| format!("{} is not an enforcer signing key", path.display()))
}

/// One record (JSON text or a CBOR item) signed with `signer`: its
/// COSE_Sign1 over the record's canonical bytes. An item that is signed
/// already is passed on as it is.
pub fn sign_record(signer: &SignerKey, record: &Record, position: u64) -> Result<Vec<u8>> {
    let (format, bytes) = match record {
        Record::Json(text) => (Format::Json, text.as_bytes()),
        Record::Cbor(item) if item.first() == Some(&0xd2) => return Ok(item.clone()),
        Record::Cbor(item) => (Format::Cbor, item.as_slice()),
    };
    let checked = parse_body(format, bytes, &Sender::relay(signer.name()))
        .map_err(anyhow::Error::msg)
        .and_then(|mut all| match all.pop() {
            Some(Ok(r)) if all.is_empty() => Ok(r),
            Some(Err(e)) if all.is_empty() => Err(anyhow::anyhow!(e.reason)),
            _ => bail!("not one record"),
        })
        .with_context(|| format!("record {position}"))?;
    let declared = ingest::input::enforcer_of(checked.cbor()).unwrap_or_default();
    if declared != signer.name() {
        bail!(
            "record {position}: its enforcer.id is {declared:?}, but the key is {:?}'s",
            signer.name()
        );
    }
    Ok(EnforcerSignature::sign(signer, checked.cbor()).encode_attached(checked.cbor()))
}

/// `ledgerctl sign`: every record of `inputs` signed, as a CBOR sequence
/// to `out` (stdout if `None`), written as they are signed. A record that
/// does not check stops it with an error naming the record; a file `out`
/// is then removed, so no partial file is left to ship.
pub fn sign(signing_key: &Path, inputs: &[String], out: Option<&Path>) -> Result<()> {
    let signer = load_signer(signing_key)?;
    let mut sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut count = 0u64;
    let mut signed = || -> Result<()> {
        for name in inputs {
            let mut position = 0u64;
            input::records(name, input::open(name)?, |r| {
                sink.write_all(&sign_record(&signer, &r, position)?)?;
                position += 1;
                count += 1;
                Ok(())
            })
            .with_context(|| format!("signing {name}"))?;
        }
        Ok(sink.flush()?)
    };
    if let Err(e) = signed() {
        if let Some(path) = out {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    eprintln!(
        "signed {count} record{} as enforcer {} (key {:08x})",
        if count == 1 { "" } else { "s" },
        signer.name(),
        signer.verifier().id()
    );
    Ok(())
}
