//! `ledgerd`: the Decision Ledger server.
//!
//! Settings come from flags, then `LEDGER_*` environment variables, then a
//! TOML file (`--config`), then defaults. On first start it creates the data
//! directory, the signing key and a writer and a reader token.

// The doc comments of the flags are their `--help` text, where `<data>`
// is a placeholder, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

/// mimalloc: the pipeline threads allocate records that other threads free,
/// which glibc malloc serialises on its arena locks (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use api::tokens::{self, Role, TokenStore};
use api::{AppState, ServerConfig};
use clap::Parser;
use ingest::{Pipeline, PipelineConfig};
use ledger::Log;
use serde::Deserialize;

/// Prints a line to stdout, ignoring a closed pipe (stdout is informational).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Parser, Debug)]
#[command(name = "ledgerd", version, about = "Decision Ledger server")]
struct Cli {
    /// Data directory (RocksDB in <data>/db, keys, tokens).
    #[arg(long, env = "LEDGER_DATA")]
    data: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "LEDGER_LISTEN")]
    listen: Option<SocketAddr>,
    /// The log's origin (used when creating the key).
    #[arg(long, env = "LEDGER_ORIGIN")]
    origin: Option<String>,
    /// TOML file with any of: data, listen, origin, public_reads, max_body_bytes,
    /// checkpoint_interval_ms, request_timeout_ms, header_timeout_ms, max_connections,
    /// max_headers, queue_capacity, batch_delay_us, blocking_threads,
    /// thread_priorities, keep_freed_ms, memory_budget_mb, retention, scrub_every, tls_cert, tls_key,
    /// tls_client_ca, witness_ca, witness_client_cert, witness_client_key,
    /// and `[[witness]]` tables of url and key.
    #[arg(long, env = "LEDGER_CONFIG")]
    config: Option<PathBuf>,
    /// Run the commit path's threads at a raised CPU priority with a short
    /// time slice (needs CAP_SYS_NICE; off by default: it changes how the
    /// host schedules ledgerd against other processes).
    #[arg(long, env = "LEDGER_THREAD_PRIORITIES")]
    thread_priorities: bool,
    /// Memory budget in MiB for what grows with load: unbuilt index spans,
    /// RocksDB memtables and block cache (ingest::budget). Default 512,
    /// at least 192.
    #[arg(long, env = "LEDGER_MEMORY_BUDGET")]
    memory_budget: Option<usize>,
    /// Remove the entries of decisions received longer ago than this
    /// (400d, 12h, 30m, 45s; default: keep every entry). Their hashes stay,
    /// so the tree, its checkpoints and the proofs of kept decisions do not
    /// change (docs/operations.md, "Retention").
    #[arg(long, env = "LEDGER_RETENTION")]
    retention: Option<String>,
    /// Read every block of the store this often, checksums checked, so
    /// that damage is found before a request meets it (7d, 24h; `off`;
    /// default 7d). Damaged indexes are rebuilt; damage in the log is
    /// logged and counted (docs/operations.md, "Damaged files").
    #[arg(long, env = "LEDGER_SCRUB_EVERY")]
    scrub_every: Option<String>,
    /// Require a reader token for /checkpoint and /tile (default: public).
    #[arg(long, env = "LEDGER_PRIVATE_READS")]
    private_reads: bool,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs
    /// --tls-key. Read again when it or the key changes (renewals).
    #[arg(long, env = "LEDGER_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS #8, PKCS #1 or SEC1).
    #[arg(long, env = "LEDGER_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: every client must present a certificate that chains to
    /// a CA certificate in this PEM file (tokens are still required).
    /// Needs --tls-cert.
    #[arg(long, env = "LEDGER_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// A witness to ask to cosign every checkpoint (C2SP tlog-witness): its
    /// submission URL and its cosignature key (`<name>+<id>+<base64>`,
    /// type 0x04 Ed25519 or 0x06 ML-DSA-44). Repeat for more witnesses.
    #[arg(long, num_args = 2, value_names = ["URL", "KEY"], action = clap::ArgAction::Append)]
    witness: Vec<String>,
    /// For https witness URLs whose certificates are from a private CA: the
    /// CA's certificate (PEM). Default: Mozilla's roots.
    #[arg(long, env = "LEDGER_WITNESS_CA")]
    witness_ca: Option<PathBuf>,
    /// For witnesses that ask for client certificates (mutual TLS): this
    /// certificate chain (PEM, leaf first); needs --witness-client-key.
    #[arg(long, env = "LEDGER_WITNESS_CLIENT_CERT")]
    witness_client_cert: Option<PathBuf>,
    /// The private key of --witness-client-cert (PEM).
    #[arg(long, env = "LEDGER_WITNESS_CLIENT_KEY")]
    witness_client_key: Option<PathBuf>,
}

/// A witness in the config file: `[[witness]]` with `url` and `key`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct WitnessEntry {
    url: String,
    key: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<SocketAddr>,
    origin: Option<String>,
    public_reads: Option<bool>,
    max_body_bytes: Option<usize>,
    checkpoint_interval_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    header_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    max_headers: Option<usize>,
    queue_capacity: Option<usize>,
    batch_delay_us: Option<u64>,
    blocking_threads: Option<usize>,
    thread_priorities: Option<bool>,
    keep_freed_ms: Option<u64>,
    memory_budget_mb: Option<usize>,
    retention: Option<String>,
    scrub_every: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    witness: Option<Vec<WitnessEntry>>,
    witness_ca: Option<PathBuf>,
    witness_client_cert: Option<PathBuf>,
    witness_client_key: Option<PathBuf>,
}

struct Settings {
    data: PathBuf,
    listen: SocketAddr,
    origin: Option<String>,
    server: ServerConfig,
    conn: api::ConnLimits,
    pipeline: PipelineConfig,
    /// Threads for blocking work (parsing, submitting, reading RocksDB).
    blocking_threads: usize,
    /// How long freed memory stays in the process before it goes back to
    /// the OS (the allocator's default if unset).
    keep_freed_ms: Option<u64>,
    /// The memory budget, split.
    budget: ingest::budget::Budget,
    /// The budget in MiB, as given.
    budget_mb: usize,
    /// TLS for every connection, if a certificate and key were given.
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Whether clients are asked for a certificate (`--tls-client-ca`).
    client_certs: bool,
    /// Witnesses asked to cosign each checkpoint.
    witnesses: Vec<api::witnesses::Witness>,
    /// The client that asks them.
    witness_client: ureq::Agent,
    /// How long decisions' entries are kept (`None`: for ever).
    retention: Option<Duration>,
    /// How often the store is scrubbed (`None`: never).
    scrub_every: Option<Duration>,
}

fn settings(cli: Cli) -> Result<Settings> {
    let file: FileConfig = match &cli.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        None => FileConfig::default(),
    };
    let mut server = ServerConfig {
        public_reads: file.public_reads.unwrap_or(true) && !cli.private_reads,
        ..ServerConfig::default()
    };
    if let Some(b) = file.max_body_bytes {
        server.max_body = b;
    }
    if let Some(ms) = file.request_timeout_ms {
        server.request_timeout = Duration::from_millis(ms);
    }
    let mut conn = api::ConnLimits::default();
    if let Some(ms) = at_least_one("header_timeout_ms", file.header_timeout_ms)? {
        conn.header_timeout = Duration::from_millis(ms);
    }
    if let Some(n) = at_least_one("max_connections", file.max_connections)? {
        conn.max_connections = n;
    }
    if let Some(n) = at_least_one("max_headers", file.max_headers)? {
        conn.max_headers = n;
    }
    conn.stop_grace = server.request_timeout;
    let mut pipeline = PipelineConfig::default();
    if let Some(ms) = at_least_one("checkpoint_interval_ms", file.checkpoint_interval_ms)? {
        pipeline.checkpoint_interval = Duration::from_millis(ms);
    }
    if let Some(q) = file.queue_capacity {
        pipeline.queue_capacity = q.max(1);
    }
    if let Some(us) = file.batch_delay_us {
        pipeline.max_delay = Duration::from_micros(us);
    }
    pipeline.thread_priorities = cli.thread_priorities || file.thread_priorities.unwrap_or(false);
    let budget_mb = cli
        .memory_budget
        .or(file.memory_budget_mb)
        .unwrap_or(ingest::budget::DEFAULT_BUDGET >> 20);
    if budget_mb < ingest::budget::MIN_BUDGET >> 20 {
        bail!(
            "the memory budget must be at least {} MiB, not {budget_mb}",
            ingest::budget::MIN_BUDGET >> 20
        );
    }
    let budget = ingest::budget::Budget::split(budget_mb << 20);
    pipeline.max_unbuilt = budget.max_unbuilt;
    let blocking_threads = at_least_one("blocking_threads", file.blocking_threads)?
        .unwrap_or(ingest::BLOCKING_THREADS);
    let client_ca = cli.tls_client_ca.or(file.tls_client_ca);
    let tls = match (cli.tls_cert.or(file.tls_cert), cli.tls_key.or(file.tls_key)) {
        (None, None) if client_ca.is_some() => {
            bail!("--tls-client-ca (tls_client_ca) needs HTTPS: give --tls-cert and --tls-key")
        }
        (None, None) => None,
        (Some(cert), Some(key)) => Some(api::tls::acceptor(&cert, &key, client_ca.as_deref())?),
        _ => bail!("HTTPS needs both --tls-cert and --tls-key (tls_cert and tls_key)"),
    };
    let client_certs = client_ca.is_some();
    let retention = cli
        .retention
        .or(file.retention)
        .map(|r| ingest::index::retention::parse_period(&r))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--retention (retention): {e}"))?;
    let scrub_every = match cli.scrub_every.or(file.scrub_every).as_deref() {
        Some("off") => None,
        Some(every) => Some(
            ingest::index::retention::parse_period(every)
                .map_err(|e| anyhow::anyhow!("--scrub-every (scrub_every): {e}"))?,
        ),
        None => Some(Duration::from_secs(7 * 86_400)),
    };
    let given: Vec<(String, String)> = cli
        .witness
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .chain(file.witness.into_iter().flatten().map(|w| (w.url, w.key)))
        .collect();
    let witnesses = witnesses(given)?;
    let witness_cert = cli.witness_client_cert.or(file.witness_client_cert);
    let witness_key = cli.witness_client_key.or(file.witness_client_key);
    let identity = match (&witness_cert, &witness_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(api::tls::ClientIdentity { cert, key }),
        _ => bail!(
            "a witness client certificate needs both --witness-client-cert and --witness-client-key"
        ),
    };
    let witness_client = api::tls::client(
        cli.witness_ca.or(file.witness_ca).as_deref(),
        identity,
        api::witnesses::TIMEOUT,
    )?;
    Ok(Settings {
        data: cli
            .data
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from("./data")),
        listen: cli
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8700))),
        origin: cli.origin.or(file.origin),
        server,
        conn,
        pipeline,
        blocking_threads,
        keep_freed_ms: file.keep_freed_ms,
        budget,
        budget_mb,
        tls,
        client_certs,
        witnesses,
        witness_client,
        retention,
        scrub_every,
    })
}

/// The witnesses given as (URL, key) pairs, checked: an `http` or `https`
/// URL, a cosignature key, each witness once.
fn witnesses(given: Vec<(String, String)>) -> Result<Vec<api::witnesses::Witness>> {
    let mut out: Vec<api::witnesses::Witness> = Vec::new();
    for (url, key) in given {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("witness URL {url:?} must begin with http:// or https://");
        }
        let key = verifier::cosignature::WitnessKey::parse(&key)
            .with_context(|| format!("the key of witness {url}"))?;
        if out.iter().any(|w| w.key.name() == key.name()) {
            bail!("witness {} is given twice", key.name());
        }
        out.push(api::witnesses::Witness { url, key });
    }
    Ok(out)
}

/// A setting that must be at least 1 if given.
fn at_least_one<T: Default + PartialEq>(name: &str, value: Option<T>) -> Result<Option<T>> {
    if value.as_ref().is_some_and(|v| *v == T::default()) {
        bail!("{name} must be at least 1");
    }
    Ok(value)
}

/// Loads the signing key, creating it (and the directory) on first start.
fn signer(data: &Path, origin: Option<&str>) -> Result<verifier::SignerKey> {
    if data.join(ledger::keys::SIGNER_FILE).exists() {
        let key = ledger::keys::load_signer(data)?;
        if let Some(o) = origin.filter(|o| *o != key.name()) {
            bail!(
                "{} holds the key of log {:?}, not {o:?}",
                data.display(),
                key.name()
            );
        }
        return Ok(key);
    }
    let origin = origin.unwrap_or("decisions.localhost/log");
    let key = ledger::keys::generate(origin)?;
    let (k, p) = ledger::keys::save(data, &key)?;
    say!(
        "created signing key {} (mode 0600) and verifier key {}",
        k.display(),
        p.display()
    );
    Ok(key)
}

/// How to run the tool `name` built or installed beside ledgerd, for the
/// commands printed at start: `name` alone when that is what the shell
/// finds (installed on the PATH) or when it is not beside ledgerd; else
/// its path, relative to the working directory when below it (`make run`:
/// `target/debug/ledgerctl`).
fn beside(name: &str) -> String {
    let Some(path) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .filter(|p| p.is_file())
    else {
        return name.into();
    };
    let on_path = std::env::var_os("PATH")
        .is_some_and(|dirs| std::env::split_paths(&dirs).any(|d| d.join(name) == path));
    if on_path {
        return name.into();
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd)
        .unwrap_or(&path)
        .display()
        .to_string()
}

/// On first start, a relay token (it may write the records of any
/// enforcer, as the examples do) and a reader token to begin with.
fn first_tokens(data: &Path) -> Result<Option<(String, String)>> {
    if data.join(tokens::TOKENS_FILE).exists() {
        return Ok(None);
    }
    let (_, writer) = tokens::add(data, "local-enforcer", Role::Relay, Default::default())?;
    let (_, reader) = tokens::add(data, "local-reader", Role::Reader, Default::default())?;
    Ok(Some((writer, reader)))
}

/// Completes on SIGTERM or SIGINT (Ctrl-C). The handlers are in place
/// when this returns, not when the future is first polled: a stop sent
/// the moment ledgerd answers is a graceful stop, not the default kill.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        [SignalKind::terminate(), SignalKind::interrupt()].map(|kind| signal(kind).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let [term, int] = signals;
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    // Not to be had: only the other signal stops ledgerd.
                    None => std::future::pending().await,
                }
            };
            tokio::select! { _ = wait(term) => {}, _ = wait(int) => {} }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing requests in flight");
    }
}

/// A start that fails (a bad setting, a store another ledgerd holds, a key
/// of another log) ends with one line naming the problem and exit code 1.
fn main() -> std::process::ExitCode {
    match start() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledgerd: {}", verifier::shown::error(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

fn start() -> Result<()> {
    // RocksDB's threads allocate with the C library's malloc: two arenas
    // keep what they free reusable instead of resident per thread.
    api::allocator::limit_c_arenas(2);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "ledgerd=info,api=info,ingest=info,ledger=info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours for a terminal only: not into a log file or the journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let s = settings(Cli::parse())?;
    if let Some(ms) = s.keep_freed_ms {
        api::allocator::keep_freed_memory(ms.min(i64::MAX as u64) as std::ffi::c_long);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime
        .enable_all()
        .max_blocking_threads(s.blocking_threads);
    if s.pipeline.thread_priorities {
        // Handlers are on an acknowledgement's path: a short time slice
        // lets them take a CPU from a flush as soon as a request arrives.
        runtime.on_thread_start(ingest::sched::latency_sensitive);
    }
    runtime
        .build()
        .context("starting the runtime")?
        .block_on(serve(s))
}

async fn serve(s: Settings) -> Result<()> {
    std::fs::create_dir_all(&s.data).with_context(|| format!("creating {}", s.data.display()))?;
    // A store to be made under a key that was there before it: the first
    // start after `ledgerctl keygen`, or a log whose store is gone. The
    // second must be restored, not begun again (that forks the log).
    let key_before_store =
        s.data.join(ledger::keys::SIGNER_FILE).exists() && !s.data.join("db").exists();
    let signer = signer(&s.data, s.origin.as_deref())?;
    if key_before_store {
        tracing::warn!(
            "{} holds the key of log {} but no store: starting the log at size 0. If this log \
             had entries, stop now and restore them (ledgerctl restore, docs/operations.md): \
             a log begun again under the same key is a fork, which mirrors and auditors refuse",
            s.data.display(),
            signer.name()
        );
    }
    // The current key, and the next one while the log rotates keys; the
    // store's older checkpoints may be signed by retired keys.
    let signers = ledger::keys::load_signers(&s.data)?;
    let keys = ledger::keys::load_keys(&s.data)?;
    let first = first_tokens(&s.data)?;
    // A key file that does not load stops the start: running without it
    // would take unsigned records of enforcers that must sign.
    api::enforcers::load(&s.data)?;
    ledger::limit_rocksdb_memory(s.budget.rocks);
    // Listening before the store is open: until it is, ledgerd says what
    // it is doing (api::starting), however long the indexes take.
    let listener = tokio::net::TcpListener::bind(s.listen)
        .await
        .with_context(|| format!("listening on {}", s.listen))?;
    let addr = listener.local_addr()?;
    let base = match s.tls {
        Some(_) => format!("https://{addr}"),
        None => format!("http://{addr}"),
    };
    say!(
        "ledgerd: answering on {base} while it opens the store in {}",
        s.data.join("db").display()
    );
    let opening = Arc::new(api::starting::Opening::default());
    let switch = api::starting::Switch::new(opening.clone());
    let mut serving = tokio::spawn(api::serve(
        listener,
        switch.router(),
        s.conn.clone(),
        s.tls.clone(),
        shutdown_signal(),
    ));
    let opened = {
        let (db, spares) = (s.data.join("db"), s.budget.spares);
        let (tx, rx) = tokio::sync::oneshot::channel();
        // A thread of its own, not the runtime's: stopped while opening,
        // ledgerd exits without waiting for it (what it built is kept).
        std::thread::Builder::new()
            .name("ledger-open".into())
            .spawn(move || {
                let _ = tx.send(api::starting::open_store(&db, &keys, spares, &opening));
            })
            .context("starting to open the store")?;
        rx
    };
    let (log, indexes) = tokio::select! {
        opened = opened => opened.context("opening the store: the opening thread ended")??,
        _ = &mut serving => {
            tracing::info!("stopped while opening the store; the next start goes on from where it got");
            return Ok(());
        }
    };
    log.sign_checkpoint(&signers)?;
    let shared = ledger::keys::SharedSigners::from(signers.clone());
    let pipeline = Pipeline::start(indexes.clone(), Some(shared.clone()), s.pipeline.clone());
    let state = Arc::new(AppState {
        log: log.clone(),
        indexes,
        pipeline,
        tokens: TokenStore::new(&s.data, s.client_certs),
        data: s.data.clone(),
        enforcer_keys: api::enforcers::EnforcerKeyStore::new(&s.data),
        quotas: Default::default(),
        senders: Default::default(),
        config: s.server.clone(),
        rejected: Default::default(),
        signed: Default::default(),
        signers: shared.clone(),
        witnesses: api::witnesses::Witnesses::start(
            log.clone(),
            s.witnesses.clone(),
            s.witness_client.clone(),
        ),
    });
    // Read now, so that tokens that cannot be used are named at start.
    state.tokens.refresh();
    state.enforcer_keys.refresh();
    {
        let (data, log) = (s.data.clone(), log.clone());
        std::thread::Builder::new()
            .name("ledger-keys".into())
            .spawn(move || watch_keys(&data, &log, &shared))
            .context("starting the key file watcher")?;
    }
    // The jobs that work on the store in the background, waited for when
    // ledgerd stops.
    let mut jobs = vec![api::repair::start_index_repair(Arc::downgrade(&state))
        .context("starting the index repair")?];
    jobs.push(
        api::compactions::start_owed_compactions(&log, api::compactions::RETRY_EVERY)
            .context("starting the owed compactions")?,
    );
    if let Some(every) = s.scrub_every {
        jobs.push(
            api::repair::start_scrubs(Arc::downgrade(&state), s.data.clone(), every)
                .context("starting the scrub")?,
        );
    }
    if let Some(keep) = s.retention {
        let (weak, data) = (Arc::downgrade(&state), s.data.clone());
        say!(
            "retention: the entries of decisions received more than {}s ago are removed (their hashes stay)",
            keep.as_secs()
        );
        jobs.push(
            std::thread::Builder::new()
                .name("ledger-retention".into())
                .spawn(move || api::retain::retain(&weak, &data, keep))
                .context("starting retention")?,
        );
    }
    // Served from here on: before the lines that tell a user to send.
    switch.open(api::router(state.clone()));
    say!(
        "ledgerd: log {} with {} entries, listening on {base}",
        signer.name(),
        log.size()
    );
    say!(
        "memory budget {} MiB: up to {} unbuilt index leaves, {} spare spans, RocksDB memtables {} MiB, block cache {} MiB",
        s.budget_mb,
        s.budget.max_unbuilt,
        s.budget.spares,
        s.budget.rocks.memtables >> 20,
        s.budget.rocks.block_cache >> 20
    );
    say!(
        "verifier key (give this to auditors): {}",
        signer.verifier()
    );
    if let Some(next) = signers.next() {
        say!(
            "rotating keys: checkpoints are signed by this key and the next one, {}; when readers hold it, `ledgerctl --data {} key promote`",
            next.verifier(),
            s.data.display()
        );
    }
    let writer = match &first {
        Some((writer, reader)) => {
            say!(
                "created tokens (shown once; also see `ledgerctl --data {} token add`):",
                s.data.display()
            );
            say!("  relay (local-enforcer, may write for any enforcer.id): {writer}");
            say!("  reader (local-reader):                                 {reader}");
            writer.clone()
        }
        None => "<writer token>".into(),
    };
    say!("send a record:");
    say!("  curl -sS -H 'Authorization: Bearer {writer}' -H 'Content-Type: application/json' --data @examples/decision.json {base}/v1/decisions");
    let reader = first.as_ref().map_or("<reader token>", |(_, r)| r.as_str());
    let key = s.data.join(ledger::keys::VERIFIER_FILE);
    say!("then prove it offline (after the next checkpoint, about a second):");
    say!(
        "  {} --url {base} --token {reader} --key {} evidence example-0001 --out example.evidence",
        beside("ledgerctl"),
        key.display()
    );
    say!(
        "  {} evidence example.evidence --key {}",
        beside("ledger-verify"),
        key.display()
    );
    for w in &s.witnesses {
        say!(
            "witness {} ({}) is asked to cosign every checkpoint",
            w.key.name(),
            w.url
        );
    }
    if s.tls.is_some() {
        say!("(a certificate from a private CA: give curl --cacert and ledgerctl --ca the CA's certificate)");
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let _ = serving.await;
    switch.close();
    // A rebuild or a prune under way stops at its next step, and a
    // compaction at its next key (what it leaves is owed to the next start).
    state.indexes.stop();
    log.stop_compactions();
    // Requests are done; commit and acknowledge what is queued, sign a last
    // checkpoint. A request whose connection the stop's grace closed may
    // hold the state a moment longer (a stream's reader of the store ends
    // at its next item).
    let released = std::time::Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&state) > 1 && std::time::Instant::now() < released {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match Arc::try_unwrap(state) {
        Ok(state) => state.pipeline.shutdown(),
        Err(state) => {
            tracing::warn!(
                "a request still holds the server state; what is queued is committed when it ends"
            );
            drop(state)
        }
    }
    wait_for_jobs(jobs, JOBS_STOP_WITHIN);
    // stdout may be gone by now (a closed pipe); the log line is enough.
    tracing::info!("stopped at size {}", log.size());
    Ok(())
}

/// How long a stopping ledgerd waits for its background jobs.
const JOBS_STOP_WITHIN: Duration = Duration::from_secs(30);

/// Waits up to `within` for the background jobs, which end once the
/// server state is gone (a scrub at its next run, a rebuild or a prune at
/// its next step, a compaction at its next key). Exiting with one inside
/// RocksDB raced the storage engine's own teardown: the process aborted
/// (`pthread lock: Invalid argument`) instead of exiting 0.
fn wait_for_jobs(jobs: Vec<std::thread::JoinHandle<()>>, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    while jobs.iter().any(|j| !j.is_finished()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for job in jobs {
        match job.is_finished() {
            true => {
                let _ = job.join();
            }
            false => tracing::warn!(
                "{} is still running after {} s; stopping without it",
                job.thread().name().unwrap_or("a background job"),
                within.as_secs()
            ),
        }
    }
}

/// Reads the key files again when they change (`ledgerctl key next`,
/// `key promote`), about once a second, and puts them to work without a
/// restart ([`ledger::rotation::apply`]). Files that do not load (a step
/// still being written, or a mistake) are named, and the keys in use kept.
fn watch_keys(data: &Path, log: &Log, signers: &ledger::keys::SharedSigners) {
    let mut watch = ledger::rotation::KeyWatch::new(data);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let Some(changed) = watch.changed() else {
            continue;
        };
        let applied = changed.and_then(|(new, keys)| {
            let next = new.next().map(|k| k.verifier());
            ledger::rotation::apply(log, signers, new, &keys)?;
            Ok((keys.current().clone(), next))
        });
        match applied {
            Ok((current, Some(next))) => say!(
                "key files changed: checkpoints are now signed by {current} and the next key {next}"
            ),
            Ok((current, None)) => {
                say!("key files changed: checkpoints are now signed by {current} alone")
            }
            Err(e) => tracing::warn!(
                "key files changed but do not load ({e}); still signing with the keys in use"
            ),
        }
    }
}
