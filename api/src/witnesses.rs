//! Witnesses: each new checkpoint is sent to every configured witness
//! (C2SP tlog-witness `add-checkpoint`, with a consistency proof from the
//! last size that witness cosigned), and the cosignatures they return are
//! verified with their keys and kept beside the checkpoint
//! ([`ledger::Log::add_cosignatures`]). `/checkpoint` and
//! `/v1/checkpoints/<size>` then serve them, so a reader can ask for a
//! quorum of witnesses before it believes a checkpoint (specs/witness.md).
//!
//! One thread does this, off every request's path: a witness that is slow
//! or down delays only its own cosignatures, and the log goes on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::{Log, SignedCheckpoint};
use verifier::cosignature::{self, WitnessKey};
use verifier::witness::{AddCheckpoint, SIZE_MEDIA_TYPE};

/// How often the thread looks for a checkpoint to send.
const POLL: Duration = Duration::from_millis(100);

/// How long one witness may take to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// One witness as configured: where it takes checkpoints, and its key.
#[derive(Clone, Debug)]
pub struct Witness {
    /// Its submission prefix (`add-checkpoint` is appended).
    pub url: String,
    /// Its cosignature key (Ed25519 or ML-DSA-44).
    pub key: WitnessKey,
}

/// What each witness has done, for `/metrics`.
#[derive(Debug)]
pub struct WitnessStatus {
    /// The witness's name.
    pub name: String,
    /// The size of the newest checkpoint it cosigned (0: none yet).
    pub cosigned_size: AtomicU64,
    /// Requests that failed (no answer, a refusal, a bad cosignature).
    pub failures: AtomicU64,
}

/// The running witness thread.
pub struct Witnesses {
    status: Arc<Vec<WitnessStatus>>,
    /// The newest checkpoint size every witness has cosigned (0: none).
    all_cosigned: Arc<AtomicU64>,
    stop: Option<(Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Witnesses {
    /// Starts the thread (none if `witnesses` is empty), asking with
    /// `agent` ([`crate::tls::client`]).
    pub fn start(log: Arc<Log>, witnesses: Vec<Witness>, agent: ureq::Agent) -> Witnesses {
        let status: Arc<Vec<WitnessStatus>> = Arc::new(
            witnesses
                .iter()
                .map(|w| WitnessStatus {
                    name: w.key.name().to_string(),
                    cosigned_size: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                })
                .collect(),
        );
        let all_cosigned = Arc::new(AtomicU64::new(0));
        if witnesses.is_empty() {
            return Witnesses {
                status,
                all_cosigned,
                stop: None,
            };
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (st, all) = (status.clone(), all_cosigned.clone());
        let handle = std::thread::Builder::new()
            .name("witnesses".into())
            .spawn(move || run(&agent, log, witnesses, st, all, rx))
            .expect("spawning the witness thread");
        Witnesses {
            status,
            all_cosigned,
            stop: Some((tx, handle)),
        }
    }

    /// Each witness's progress.
    pub fn status(&self) -> &[WitnessStatus] {
        &self.status
    }

    /// The size of the newest checkpoint that every witness has cosigned,
    /// or `None` if there are no witnesses or none such yet.
    pub fn all_cosigned(&self) -> Option<u64> {
        match self.all_cosigned.load(Ordering::Relaxed) {
            0 => None,
            size => Some(size),
        }
    }

    /// Sends the latest checkpoint once more, then stops the thread.
    pub fn shutdown(&mut self) {
        if let Some((tx, handle)) = self.stop.take() {
            let _ = tx.send(());
            let _ = handle.join();
        }
    }
}

impl Drop for Witnesses {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(
    agent: &ureq::Agent,
    log: Arc<Log>,
    witnesses: Vec<Witness>,
    status: Arc<Vec<WitnessStatus>>,
    all_cosigned: Arc<AtomicU64>,
    stop: Receiver<()>,
) {
    // The size each witness is believed to hold: 0 until it says otherwise
    // (a 409 names its size), so a restart needs no state of its own.
    let mut held = vec![0u64; witnesses.len()];
    // The size each witness last cosigned here.
    let mut done: Vec<Option<u64>> = vec![None; witnesses.len()];
    // Consecutive failures (logged at the first, retried with a growing
    // pause) and when to try again.
    let mut failures = vec![0u32; witnesses.len()];
    let mut next_try = vec![Instant::now(); witnesses.len()];
    loop {
        let stopping = !matches!(stop.recv_timeout(POLL), Err(RecvTimeoutError::Timeout));
        if let Some(cp) = log.latest_checkpoint() {
            for (i, w) in witnesses.iter().enumerate() {
                let size = cp.checkpoint.size;
                // A last checkpoint at shutdown goes to the witnesses that
                // answer, without waiting out a failing one's pause.
                let wait = if stopping {
                    failures[i] > 0
                } else {
                    Instant::now() < next_try[i]
                };
                if done[i] == Some(size) || wait {
                    continue;
                }
                match submit(agent, &log, w, &cp, &mut held[i]) {
                    Ok(()) => {
                        done[i] = Some(size);
                        status[i].cosigned_size.store(size, Ordering::Relaxed);
                        if std::mem::take(&mut failures[i]) > 0 {
                            tracing::info!("witness {} cosigns again", w.key.name());
                        }
                    }
                    Err(e) => {
                        status[i].failures.fetch_add(1, Ordering::Relaxed);
                        failures[i] += 1;
                        next_try[i] = Instant::now() + backoff(failures[i]);
                        if failures[i] == 1 {
                            tracing::warn!(
                                "witness {} ({}) did not cosign checkpoint {}: {e} (retrying; logged again when it recovers)",
                                w.key.name(),
                                w.url,
                                cp.checkpoint.size
                            );
                        }
                    }
                }
            }
            if done.iter().all(|d| *d == Some(cp.checkpoint.size)) {
                all_cosigned.store(cp.checkpoint.size, Ordering::Relaxed);
            }
        }
        if stopping {
            return;
        }
    }
}

/// The pause after `n` failures in a row: 1 s, doubling, at most a minute.
fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// Asks `w` to cosign `cp`, and keeps its cosignature. A 409 naming
/// another size is answered once more, from that size.
fn submit(
    agent: &ureq::Agent,
    log: &Log,
    w: &Witness,
    cp: &SignedCheckpoint,
    held: &mut u64,
) -> Result<(), String> {
    let size = cp.checkpoint.size;
    for _ in 0..2 {
        let old = (*held).min(size);
        let proof = if old == 0 || old == size {
            Vec::new()
        } else {
            log.consistency_proof(old, size)
                .map_err(|e| format!("consistency proof {old} -> {size}: {e}"))?
        };
        let body = AddCheckpoint {
            old,
            proof,
            checkpoint: cp.text.clone(),
        }
        .to_body();
        let url = format!("{}/add-checkpoint", w.url.trim_end_matches('/'));
        let mut r = agent
            .post(&url)
            .send(body.as_bytes())
            .map_err(|e| format!("no answer: {e}"))?;
        let status = r.status().as_u16();
        let kind = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = r
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_string()
            .map_err(|e| format!("reading the answer: {e}"))?;
        match status {
            200 => {
                let lines = own_lines(&text, &w.key);
                let found = cosignature::verify(
                    format!("{}{lines}", cp.text).as_bytes(),
                    std::slice::from_ref(&w.key),
                )
                .map_err(|e| format!("its answer: {e}"))?;
                if found.is_empty() {
                    return Err("its answer holds no cosignature by its key".into());
                }
                log.add_cosignatures(size, &lines)
                    .map_err(|e| format!("keeping its cosignature: {e}"))?;
                *held = size;
                return Ok(());
            }
            409 if kind.starts_with(SIZE_MEDIA_TYPE) => {
                let theirs = verifier::checkpoint::parse_decimal(text.trim_end_matches('\n'))
                    .ok_or_else(|| format!("409 with a size that does not parse: {text:?}"))?;
                if theirs > size {
                    return Err(format!(
                        "it holds a checkpoint of size {theirs}, larger than this log's {size}: \
                         this log is behind what it signed before (a fork?)"
                    ));
                }
                *held = theirs;
            }
            _ => {
                let why: String = text.chars().take(200).collect();
                return Err(format!(
                    "HTTP {status}: {}",
                    verifier::shown::line(why.trim())
                ));
            }
        }
    }
    Err("it answered 409 twice".into())
}

/// The signature lines of a witness's `answer` by `key` (name and key
/// ID); others are ignored, as the spec asks.
fn own_lines(answer: &str, key: &WitnessKey) -> String {
    let mut out = String::new();
    for line in answer.lines() {
        let ours = verifier::note::parse_signature_line(line)
            .is_ok_and(|s| s.name == key.name() && s.id == key.id());
        if ours {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
