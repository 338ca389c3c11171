//! `ledgerctl witness`: a C2SP tlog-witness for Decision Ledger logs (or
//! any C2SP log with an Ed25519 key), cosigning with Ed25519
//! (cosignature/v1) or ML-DSA-44 (subtree/v1), so that a party the log's operator
//! does not control (an auditor, a regulator, another team) can cosign
//! every checkpoint and so vouch that the log showed no one a history
//! that contradicts the one it showed them.
//!
//! `witness keygen` writes `witness.key` (mode 0600) and `witness.pub`;
//! `witness serve` answers `POST /add-checkpoint` for the logs given with
//! `--log`. Its state is one file a log in `<dir>/logs/`: the latest
//! checkpoint it cosigned, replaced durably (written, synced, renamed,
//! directory synced) before it answers, under one lock, so a crash never
//! lets it cosign a checkpoint inconsistent with one it cosigned before.
//! The checks are `verifier::witness::add_checkpoint`'s.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::Subcommand;
use sha2::{Digest, Sha256};
use verifier::cosignature::{Algorithm, WitnessSigner};
use verifier::witness::{add_checkpoint, AddCheckpoint, AddError, Latest, SIZE_MEDIA_TYPE};
use verifier::VerifierKey;

/// The witness's secret key file.
pub const KEY_FILE: &str = "witness.key";
/// The witness's public key file (give it to the log and its readers).
pub const PUB_FILE: &str = "witness.pub";

/// The largest request body taken: 63 proof lines and a checkpoint with
/// as many signature lines as a note may carry (100), even if all are
/// ML-DSA-44 cosignatures (3.3 KB a line), fit within it.
const MAX_BODY: usize = 512 << 10;

#[derive(Subcommand)]
pub enum WitnessCommand {
    /// Generate a witness key: <out>/witness.key (mode 0600) and
    /// <out>/witness.pub (type 0x04 for Ed25519, 0x06 for ML-DSA-44).
    Keygen {
        /// The witness's name, e.g. witness.example.org/w1.
        #[arg(long)]
        name: String,
        /// The signature algorithm: ed25519 (cosignature/v1, what most
        /// deployed witness clients read) or ml-dsa-44 (subtree/v1,
        /// post-quantum, which C2SP recommends for new witnesses).
        #[arg(long, default_value = "ed25519")]
        alg: Algorithm,
        /// Directory to write the keys to (use it as serve --dir).
        #[arg(long)]
        out: PathBuf,
    },
    /// Cosign the checkpoints of the logs given with --log (C2SP
    /// tlog-witness: POST /add-checkpoint).
    Serve {
        /// The witness's directory: witness.key, and its state in logs/.
        #[arg(long)]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8710")]
        listen: SocketAddr,
        /// A log to follow: its verifier key (string or file). Repeat for
        /// more logs, and for a log's next key while it rotates keys (a
        /// checkpoint signed by any key of its origin is then the log's).
        #[arg(long = "log", required = true)]
        logs: Vec<String>,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
        /// Read again when it or the key changes.
        #[arg(long)]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM).
        #[arg(long)]
        tls_key: Option<PathBuf>,
        /// Mutual TLS: only clients (logs) presenting a certificate that
        /// chains to a CA certificate in this PEM file may connect (ledgerd
        /// --witness-client-cert). Needs --tls-cert.
        #[arg(long)]
        tls_client_ca: Option<PathBuf>,
    },
}

pub fn run(command: WitnessCommand) -> Result<()> {
    match command {
        WitnessCommand::Keygen { name, out, alg } => {
            let signer = WitnessSigner::from_seed_with(alg, &name, &ledger::keys::seed()?)
                .with_context(|| format!("--name {name:?}"))?;
            let (k, p) = ledger::keys::save_pair(
                &out,
                (KEY_FILE, &signer.to_secret_string()),
                (PUB_FILE, &signer.verifier().to_string()),
            )?;
            eprintln!("wrote {} (mode 0600) and {}", k.display(), p.display());
            println!("{}", signer.verifier());
            Ok(())
        }
        WitnessCommand::Serve {
            dir,
            listen,
            logs,
            tls_cert,
            tls_key,
            tls_client_ca,
        } => {
            let tls = match (tls_cert, tls_key) {
                (None, None) if tls_client_ca.is_some() => {
                    bail!("--tls-client-ca needs HTTPS: give --tls-cert and --tls-key")
                }
                (None, None) => None,
                (Some(cert), Some(key)) => {
                    Some(api::tls::acceptor(&cert, &key, tls_client_ca.as_deref())?)
                }
                _ => bail!("HTTPS needs both --tls-cert and --tls-key"),
            };
            serve(&dir, listen, &logs, tls)
        }
    }
}

struct Witness {
    signer: WitnessSigner,
    logs: Vec<VerifierKey>,
    state_dir: PathBuf,
    /// Held from reading a log's state to writing the new one.
    lock: Mutex<()>,
}

fn serve(
    dir: &Path,
    listen: SocketAddr,
    logs: &[String],
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<()> {
    let key_path = dir.join(KEY_FILE);
    let signer = WitnessSigner::parse(&ledger::keys::load_secret(&key_path)?)
        .with_context(|| format!("{} is not a witness key", key_path.display()))?;
    let logs = logs
        .iter()
        .map(|k| crate::key_arg("--log", "verifier key", k, VerifierKey::parse))
        .collect::<Result<Vec<_>>>()?;
    let state_dir = dir.join("logs");
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let _lock = crate::mirror::lock_dir(dir, "ledgerctl witness serve")?;
    let witness = Arc::new(Witness {
        signer,
        logs,
        state_dir,
        lock: Mutex::new(()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        println!(
            "witness {}+{:08x} ({}) listening on {}://{}; it follows {}",
            witness.signer.name(),
            witness.signer.verifier().id(),
            witness.signer.verifier().algorithm(),
            if tls.is_some() { "https" } else { "http" },
            listener.local_addr()?,
            witness
                .logs
                .iter()
                .map(|l| format!("{}+{:08x}", l.name(), l.id()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let app = axum::Router::new()
            .route("/add-checkpoint", axum::routing::post(add))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
            .with_state(witness);
        // ledgerd's listener: deadlines for a request's head (and a TLS
        // handshake), a bound on connections and headers.
        api::serve(listener, app, api::ConnLimits::default(), tls, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
        Ok(())
    })
}

async fn add(State(w): State<Arc<Witness>>, body: Bytes) -> Response {
    match tokio::task::spawn_blocking(move || cosign(&w, &body)).await {
        Ok(Ok(line)) => (StatusCode::OK, line).into_response(),
        Ok(Err(Refusal::Add(AddError::OldSize(size)))) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, SIZE_MEDIA_TYPE)],
            format!("{size}\n"),
        )
            .into_response(),
        Ok(Err(Refusal::Add(e))) => (
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            format!("{e}\n"),
        )
            .into_response(),
        Ok(Err(Refusal::State(e))) => {
            eprintln!("witness: {}", verifier::shown::error(e.as_ref()));
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the witness could not keep its state\n",
            )
                .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

enum Refusal {
    Add(AddError),
    State(anyhow::Error),
}

/// Checks and cosigns one request, holding the lock from reading the
/// log's state to writing the new one.
fn cosign(w: &Witness, body: &[u8]) -> Result<String, Refusal> {
    let req = AddCheckpoint::parse(body).map_err(Refusal::Add)?;
    let origin = req.checkpoint.split('\n').next().unwrap_or_default();
    // A log rotating its key is given with its keys (`--log` once each).
    let log: Vec<VerifierKey> = w
        .logs
        .iter()
        .filter(|l| l.name() == origin)
        .cloned()
        .collect();
    if log.is_empty() {
        return Err(Refusal::Add(AddError::UnknownOrigin(origin.to_string())));
    }
    let path = w.state_dir.join(state_name(origin));
    let _held = w.lock.lock().unwrap_or_else(|p| p.into_inner());
    let latest = read_state(&path, &log).map_err(Refusal::State)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (_, line) =
        add_checkpoint(&req, &log, latest.as_ref(), &w.signer, now).map_err(Refusal::Add)?;
    write_state(&w.state_dir, &path, &req.checkpoint).map_err(Refusal::State)?;
    Ok(line)
}

/// A log's state file: the hex SHA-256 of its origin (origins may hold
/// any character but space and '+', `/` among them).
fn state_name(origin: &str) -> String {
    hex::encode(Sha256::digest(origin.as_bytes()))
}

/// The latest checkpoint cosigned for the log of `keys`, checked with
/// them.
fn read_state(path: &Path, keys: &[VerifierKey]) -> Result<Option<Latest>> {
    match std::fs::read(path) {
        Ok(text) => {
            let cp = verifier::checkpoint::open_any(&text, keys).with_context(|| {
                format!(
                    "{} is not a checkpoint of {} signed by a key given with --log",
                    path.display(),
                    keys.first().map_or("", |k| k.name())
                )
            })?;
            Ok(Some(Latest {
                size: cp.size,
                root: cp.root,
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_state(dir: &Path, path: &Path, checkpoint: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let ctx = || format!("writing {}", path.display());
    let mut f = std::fs::File::create(&tmp).with_context(ctx)?;
    std::io::Write::write_all(&mut f, checkpoint.as_bytes()).with_context(ctx)?;
    f.sync_all().with_context(ctx)?;
    std::fs::rename(&tmp, path).with_context(ctx)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(ctx)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn state_names_are_file_names() {
        let n = super::state_name("decisions.example.org/log");
        assert_eq!(n.len(), 64);
        assert!(n.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
