//! `ledgerctl export`: every decision received in a window, as a package
//! a regulator verifies offline (specs/export.md), from a data dir or from a
//! running ledgerd (`GET /v1/export`, streamed). Streaming end to end: the
//! leaves pass through once, in order; memory does not grow with the
//! window.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use verifier::export::{
    self, render, Builder, Filter, Finished, Head, Item, ItemReader, Rendered, Sinks,
};
use verifier::timestamp::Timestamp;
use verifier::VerifierKey;

use crate::datadir::DataDir;
use crate::remote::Remote;

/// Options of `ledgerctl export`.
#[derive(Clone, Debug, clap::Args)]
pub struct ExportArgs {
    /// Start of the window: `received_at` at or after this (RFC 3339, or
    /// back from now: 30d, 12h).
    #[arg(long, value_parser = crate::when::bound)]
    pub from: String,
    /// End of the window: `received_at` before this (RFC 3339, a span back
    /// from now, or `now`).
    #[arg(long, value_parser = crate::when::bound)]
    pub to: String,
    /// Disclose only decisions about this subject.id (others as leaf hashes).
    #[arg(long)]
    pub subject: Option<String>,
    /// Disclose only decisions with this actor in the delegation chain.
    #[arg(long)]
    pub actor: Option<String>,
    /// Disclose only decisions about this person: the subject, its owner,
    /// or an actor of the delegation chain (a data-subject request).
    #[arg(long)]
    pub person: Option<String>,
    /// Disclose only decisions on this resource.id.
    #[arg(long)]
    pub resource: Option<String>,
    /// Disclose only decisions under this policy.id.
    #[arg(long)]
    pub policy: Option<String>,
    /// Disclose only allow or only deny decisions.
    #[arg(long, value_parser = ["allow", "deny"])]
    pub decision: Option<String>,
    /// Disclose only decisions by this enforcer.id.
    #[arg(long)]
    pub enforcer: Option<String>,
    /// Disclose only break-glass decisions.
    #[arg(long)]
    pub break_glass: bool,
    /// The package's directory (created; must not hold an export already).
    #[arg(long)]
    pub out: PathBuf,
    /// With --url: how long to keep asking for the rest of a stream that
    /// broke (the connection lost, ledgerd restarted), counted from the
    /// last item that arrived (180s, 10m, or seconds).
    #[arg(long, value_parser = crate::when::duration, default_value = "60s")]
    pub resume_for: Duration,
}

impl ExportArgs {
    /// The window, once the arguments are checked as the server checks
    /// them ([`Filter::set`]: an empty value would disclose nothing).
    fn window(&self) -> Result<(Timestamp, Timestamp)> {
        for (name, value) in self.filter().params() {
            Filter::default()
                .set(name, &value)
                .map_err(|why| anyhow::anyhow!("--{why}"))?;
        }
        let t = |name: &str, v: &str| {
            Timestamp::parse_text(v)
                .with_context(|| format!("--{name} {v:?} is not an RFC 3339 time"))
        };
        let (from, to) = (t("from", &self.from)?, t("to", &self.to)?);
        if from >= to {
            bail!("--from must be before --to");
        }
        Ok((from, to))
    }

    fn filter(&self) -> Filter {
        Filter {
            subject: self.subject.clone(),
            actor: self.actor.clone(),
            person: self.person.clone(),
            resource: self.resource.clone(),
            policy: self.policy.clone(),
            decision: self.decision.clone(),
            enforcer: self.enforcer.clone(),
            break_glass: self.break_glass,
        }
    }

    /// The query string of `GET /v1/export`.
    pub fn query(&self) -> String {
        let mut q = vec![("from", self.from.clone()), ("to", self.to.clone())];
        q.extend(self.filter().params());
        q.iter()
            .map(|(k, v)| format!("{k}={}", crate::remote::encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Creates the package directory and its four streamed files.
fn sinks(dir: &Path) -> Result<Sinks<BufWriter<File>>> {
    if dir.join(export::MANIFEST).exists() {
        bail!("{} already holds an export", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let open = |name: &str| -> Result<BufWriter<File>> {
        let path = dir.join(name);
        let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(BufWriter::with_capacity(1 << 20, f))
    };
    Ok(Sinks {
        leaves: open(export::LEAVES)?,
        jsonl: open(export::JSONL)?,
        csv: open(export::CSV)?,
        ocsf: open(export::OCSF)?,
    })
}

/// A progress bar on a terminal, nothing otherwise.
fn progress(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "export [{bar:40}] {pos}/{len} decisions, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// Writes the three files the builder returns and says what was exported.
/// Every file is synced before `manifest.json` is written, itself beside
/// and renamed into place: a package with a manifest is whole on disk,
/// and an export stopped before it leaves none (and may be run again).
fn write_rest(dir: &Path, f: Finished<BufWriter<File>>, started: Instant, key: &str) -> Result<()> {
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        File::create(&path)
            .and_then(|mut file| {
                std::io::Write::write_all(&mut file, bytes)?;
                file.sync_all()
            })
            .with_context(|| format!("writing {}", path.display()))
    };
    let Sinks {
        leaves,
        jsonl,
        csv,
        ocsf,
    } = f.sinks;
    for (name, sink) in [
        (export::LEAVES, leaves),
        (export::JSONL, jsonl),
        (export::CSV, csv),
        (export::OCSF, ocsf),
    ] {
        let file = sink
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing {name}: {}", e.error()))?;
        file.sync_all()
            .with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    write(export::CHECKPOINT, &f.checkpoint)?;
    write(export::REPORT, &f.report)?;
    let manifest = serde_json::to_vec_pretty(&f.manifest)?;
    ledger::stamp::replace(dir, export::MANIFEST, &manifest, None)
        .map_err(|(p, e)| anyhow::anyhow!("writing {}: {e}", p.display()))?;
    let m = &f.manifest;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "exported leaves {}..{} of tree size {} ({} decisions received in [{}, {}), {} disclosed) to {} in {secs:.1} s ({:.0} decisions/s)",
        m.first,
        m.end,
        m.checkpoint.size,
        m.counts.leaves,
        m.window.from,
        m.window.to,
        m.counts.disclosed,
        dir.display(),
        m.counts.leaves as f64 / secs.max(1e-9)
    );
    println!(
        "verify offline: ledger-verify export {} --key {key}",
        dir.display()
    );
    Ok(())
}

/// Leaves rendered per batch, on every core.
const BATCH: usize = 1024;

/// Renders a batch of leaves on every core, in order.
fn render_all(
    first: u64,
    leaves: Vec<Vec<u8>>,
    filter: &Filter,
    origin: &str,
) -> Result<Vec<Rendered>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = leaves.len().div_ceil(threads).max(1);
    let mut parts: Vec<Vec<(u64, Vec<u8>)>> = Vec::new();
    let mut it = (first..).zip(leaves).peekable();
    while it.peek().is_some() {
        parts.push(it.by_ref().take(per).collect());
    }
    let done: Vec<Result<Vec<Rendered>, export::ExportError>> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                s.spawn(move || {
                    part.into_iter()
                        .map(|(i, leaf)| render(i, leaf, filter, origin))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new())))
            .collect()
    });
    let mut out = Vec::with_capacity(per * threads);
    for part in done {
        out.extend(part?);
    }
    Ok(out)
}

type Batch = Vec<Rendered>;

/// Runs `produce`, which sends rendered batches in order, beside a thread
/// that appends them to the builder (writing and hashing the files while
/// the next batch is rendered); returns the builder with every batch in.
fn appended<W: std::io::Write + Send>(
    mut builder: Builder<W>,
    produce: impl FnOnce(&std::sync::mpsc::SyncSender<Batch>) -> Result<()>,
) -> Result<Builder<W>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(1);
    std::thread::scope(|s| {
        let writer = s.spawn(move || -> Result<Builder<W>> {
            for batch in rx {
                for r in batch {
                    builder.append(r)?;
                }
            }
            Ok(builder)
        });
        let produced = produce(&tx);
        drop(tx);
        let builder = writer
            .join()
            .map_err(|_| anyhow::anyhow!("the export's writer thread panicked"))?;
        // A writer error stops the producer (its sends fail); report it first.
        let builder = builder?;
        produced?;
        Ok(builder)
    })
}

fn send(tx: &std::sync::mpsc::SyncSender<Batch>, batch: Batch) -> Result<()> {
    tx.send(batch)
        .map_err(|_| anyhow::anyhow!("the export's writer stopped"))
}

/// The export from a data dir.
pub fn run_local(dir: &DataDir, args: &ExportArgs) -> Result<()> {
    let started = Instant::now();
    let (from, to) = args.window()?;
    let log = dir.open_log()?;
    let key = dir.verifier()?;
    // A checkpoint of the log as it is now, so the whole window is covered.
    let size = match dir.signer() {
        Ok(signer) => Some(log.sign_checkpoint(&signer)?.checkpoint.size),
        Err(_) => None,
    };
    let head = log.export_head(from, to, args.filter(), size)?;
    let (first, end) = (head.first, head.end);
    let (filter, origin) = (head.filter.clone(), head.origin.clone());
    let builder = Builder::new(head, &key, sinks(&args.out)?)?;
    let bar = progress(end - first);
    let builder = appended(builder, |tx| {
        let mut at = first;
        while at < end {
            let stop = (at + BATCH as u64).min(end);
            let mut leaves = Vec::with_capacity(BATCH);
            log.scan_entries(at, stop, |i, leaf| {
                // An erased entry is carried by its hash (the head holds
                // the record that erased it).
                leaves.push(match leaf.is_empty() {
                    true => Err(log.leaf_hash(i)?),
                    false => Ok(leaf.to_vec()),
                });
                Ok::<(), ledger::LedgerError>(())
            })?;
            send(tx, render_batch(at, leaves, &filter, &origin)?)?;
            if let Some(b) = &bar {
                b.set_position(stop - first);
            }
            at = stop;
        }
        Ok(())
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let key_file = dir.path().join(ledger::keys::VERIFIER_FILE);
    write_rest(
        &args.out,
        builder.finish()?,
        started,
        &key_file.display().to_string(),
    )
}

/// A response body whose reads are watched: `failed` is set once a read
/// fails (the connection broke), which bad bytes in the body never set.
struct Watched<R> {
    inner: R,
    failed: Rc<Cell<bool>>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf);
        if read.is_err() {
            self.failed.set(true);
        }
        read
    }
}

/// An export stream: its items, and whether its connection broke.
struct Stream {
    items: ItemReader<BufReader<Watched<Box<dyn Read + Send>>>>,
    failed: Rc<Cell<bool>>,
}

impl Stream {
    /// `GET /v1/export?{query}`: the head, and the items after it.
    fn open(remote: &Remote, query: &str) -> Result<(Head, Stream)> {
        let body: Box<dyn Read + Send> =
            Box::new(remote.get_stream(&format!("/v1/export?{query}"))?);
        let failed = Rc::new(Cell::new(false));
        let mut items = BufReader::with_capacity(
            1 << 20,
            Watched {
                inner: body,
                failed: failed.clone(),
            },
        );
        let head: Head = ciborium::from_reader(&mut items)
            .context("the export stream does not start with its head")?;
        let items = ItemReader::new(items);
        Ok((head, Stream { items, failed }))
    }

    /// The next item, `Ok(None)` at the end of the stream, or `Err(None)`
    /// if the stream broke: its connection failed, or it ended inside an
    /// item.
    fn next(&mut self) -> Result<Option<Item>, Option<std::io::Error>> {
        self.items.next_item().map_err(|e| {
            let broke = self.failed.get() || e.kind() == std::io::ErrorKind::UnexpectedEof;
            (!broke).then_some(e)
        })
    }
}

/// The head as it proves the range: its checkpoint without the signature
/// lines (a witness may have cosigned it between two requests).
fn proving(head: &Head) -> Head {
    let mut h = head.clone();
    h.checkpoint = match head.checkpoint.split_once("\n\n") {
        Some((body, _)) => body.to_string(),
        None => head.checkpoint.clone(),
    };
    h
}

/// The rest of a broken export stream: asked for again with the
/// checkpoint's `size`, from leaf `next`, until it answers with the same
/// head or `within` has passed since `since`.
fn resume(
    remote: &Remote,
    query: &str,
    head: &Head,
    (size, next): (u64, u64),
    since: Instant,
    within: Duration,
) -> Result<Stream> {
    let mut wait = Duration::from_millis(250);
    let mut last: Option<anyhow::Error> = None;
    loop {
        if since.elapsed() >= within {
            let why = last.map_or("it broke again each time".into(), |e| format!("{e:#}"));
            bail!(
                "the export stream broke at leaf {next}, and was not resumed within {} s: {why}",
                within.as_secs()
            );
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(5));
        match Stream::open(remote, &format!("{query}&size={size}&resume={next}")) {
            Ok((again, stream)) => {
                if proving(&again) != proving(head) {
                    bail!(
                        "the export stream broke at leaf {next}, and asked again the server \
                         proves the window otherwise (an erasure in it since?): run the export again"
                    );
                }
                eprintln!("export: the stream broke at leaf {next}; resumed from there");
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
}

/// The export from a running ledgerd: its stream, checked with `key` as it
/// arrives (the checkpoint, each leaf against the filter, the range against
/// the signed root). A stream that breaks is asked for again from the
/// first leaf missing, in the same checkpoint ([`resume`]).
pub fn run_remote(remote: &Remote, key: &VerifierKey, args: &ExportArgs) -> Result<()> {
    let started = Instant::now();
    args.window()?;
    let query = args.query();
    let (head, mut stream) = Stream::open(remote, &query)?;
    if head.filter != args.filter() {
        bail!("the server exported with another filter than asked for");
    }
    verifier::cosignature::witnessing(head.checkpoint.as_bytes(), key, remote.policy())
        .context("the export's checkpoint")?;
    let size = verifier::checkpoint::open(head.checkpoint.as_bytes(), key)
        .context("the export's checkpoint")?
        .size;
    let asked = head.clone();
    let (first, end) = (head.first, head.end);
    let (filter, origin) = (head.filter.clone(), head.origin.clone());
    let builder = Builder::new(head, key, sinks(&args.out)?)?;
    let bar = progress(end - first);
    let mut index = first;
    let builder = appended(builder, |tx| {
        let mut batch = Vec::with_capacity(BATCH);
        let mut since = Instant::now();
        loop {
            let next = index + batch.len() as u64;
            let item = match stream.next() {
                // Ended before the range did: cut short.
                Ok(None) if next < end => Err(None),
                item => item,
            };
            let item = match item {
                Ok(item) => item,
                Err(None) => {
                    let at = (size, next);
                    stream = resume(remote, &query, &asked, at, since, args.resume_for)?;
                    continue;
                }
                Err(Some(e)) => {
                    return Err(
                        anyhow::Error::from(e).context(format!("the export stream at leaf {next}"))
                    )
                }
            };
            since = Instant::now();
            let done = item.is_none();
            match item {
                Some(Item::Leaf(leaf)) => batch.push(Ok(leaf)),
                Some(Item::Withheld(h)) => batch.push(Err(h)),
                None => {}
            }
            if batch.len() == BATCH || (done && !batch.is_empty()) {
                let n = batch.len() as u64;
                send(
                    tx,
                    render_batch(index, std::mem::take(&mut batch), &filter, &origin)?,
                )?;
                index += n;
                if let Some(b) = &bar {
                    b.set_position(index - first);
                }
            }
            if done {
                return Ok(());
            }
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if index != end {
        bail!(
            "the export stream holds {} leaves, not the {} of its range",
            index - first,
            end - first
        );
    }
    write_rest(&args.out, builder.finish()?, started, &key.to_string())
}

/// [`render_all`] for items of which some are withheld (by the server's
/// filter) or erased: those are passed on by hash.
fn render_batch(
    first: u64,
    items: Vec<Result<Vec<u8>, verifier::Hash>>,
    filter: &Filter,
    origin: &str,
) -> Result<Vec<Rendered>> {
    let mut out = Vec::with_capacity(items.len());
    let mut run: Vec<Vec<u8>> = Vec::new();
    let mut run_start = first;
    for (i, item) in (first..).zip(items) {
        match item {
            Ok(leaf) => {
                if run.is_empty() {
                    run_start = i;
                }
                run.push(leaf);
            }
            Err(hash) => {
                if !run.is_empty() {
                    out.extend(render_all(
                        run_start,
                        std::mem::take(&mut run),
                        filter,
                        origin,
                    )?);
                }
                out.push(Rendered::withheld(hash));
            }
        }
    }
    if !run.is_empty() {
        out.extend(render_all(run_start, run, filter, origin)?);
    }
    Ok(out)
}
