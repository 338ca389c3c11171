//! `ledgerctl` against a running `ledgerd` (`--url`, `--token`): the same
//! read commands as on a data dir, computed from what the server serves and
//! checked with the verifier before anything is printed.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use verifier::consistency_file::ConsistencyFile;
use verifier::cosignature::{self, Policy};
use verifier::tile::{Tile, TileHashReader};
use verifier::tlog_proof::TlogProof;
use verifier::{checkpoint, Checkpoint, VerifierKey};

/// How long [`Remote::get_ok`] keeps asking again while the server answers
/// 503 with `Retry-After` (checkpoints are signed about every second).
pub const BUSY_WAIT: Duration = Duration::from_secs(10);

/// An HTTP response: status, body, and `Retry-After` seconds if given.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after: Option<u64>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Why the server refused: the `error` of its JSON answer, or the
    /// answer as it is.
    pub fn error_text(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| self.text().trim().to_string())
    }
}

/// The server's `/metrics`, read by name.
pub struct Metrics(String);

impl Metrics {
    /// The whole text.
    pub fn text(&self) -> &str {
        &self.0
    }

    /// The value of the sample named `name` (with its labels, if any);
    /// NaN where the server does not give it.
    pub fn get(&self, name: &str) -> f64 {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN)
    }
}

pub struct Remote {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
    /// The witnesses whose cosignatures served checkpoints must carry.
    policy: Policy,
}

impl Remote {
    /// A client of the ledgerd at `url` (`http://` or `https://`). An
    /// `https` server's certificate must chain to Mozilla's roots, or to a
    /// certificate in the PEM file `ca` when given (a private CA). A server
    /// that asks for a client certificate is shown `identity`.
    pub fn new(
        url: &str,
        token: Option<String>,
        ca: Option<&Path>,
        identity: Option<api::tls::ClientIdentity<'_>>,
    ) -> Result<Remote> {
        let agent =
            api::tls::client(ca, identity, Duration::from_secs(60)).map_err(|e| match e {
                api::tls::TlsError::Ca { path, why } => anyhow::anyhow!("--ca {path}: {why}"),
                api::tls::TlsError::ClientCert { path, why } => {
                    anyhow::anyhow!("--client-cert/--client-key {path}: {why}")
                }
                e => e.into(),
            })?;
        Ok(Remote {
            base: url.trim_end_matches('/').to_string(),
            token,
            agent,
            policy: Policy::default(),
        })
    }

    /// This client, asking for the cosignatures of `policy` on every
    /// checkpoint it takes from the server.
    pub fn with_witnesses(mut self, policy: Policy) -> Remote {
        self.policy = policy;
        self
    }

    /// The witnesses asked for.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The server's URL, as given.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn reply(
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        what: &str,
    ) -> Result<Reply> {
        let mut r = r.map_err(|e| no_answer(what, e))?;
        let retry_after = retry_after(&r);
        let status = r.status().as_u16();
        let body = r.body_mut().with_config().limit(256 << 20).read_to_vec()?;
        Ok(Reply {
            status,
            body,
            retry_after,
        })
    }

    /// The server's `/metrics`.
    pub fn metrics(&self) -> Result<Metrics> {
        Ok(Metrics(self.get("/metrics")?.text()))
    }

    pub fn get(&self, path: &str) -> Result<Reply> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        Remote::reply(req.call(), &format!("GET {path}"))
    }

    /// The exact leaf bytes of a decision (`Accept: application/cbor`),
    /// checked against the leaf hash the server states.
    pub fn get_leaf(&self, decision_id: &str) -> Result<Vec<u8>> {
        let path = format!("/v1/decisions/{}", encode(decision_id));
        let mut req = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Accept", "application/cbor");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut r = req
            .call()
            .with_context(|| format!("GET {path}: no answer from ledgerd"))?;
        let stated = r
            .headers()
            .get("x-ledger-leaf-hash")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = r.status().as_u16();
        let body = r.body_mut().with_config().limit(1 << 20).read_to_vec()?;
        if status != 200 {
            bail!(
                "GET {path}: {status} {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
        if stated.as_deref() != Some(verifier::leaf_hash(&body).to_hex().as_str()) {
            bail!("GET {path}: the leaf served does not hash to the leaf hash stated");
        }
        Ok(body)
    }

    /// GET of a long stream: no overall time limit (the server keeps
    /// sending), the body as a reader; the server's reason if it refuses.
    pub fn get_stream(&self, path: &str) -> Result<impl std::io::Read + Send + 'static> {
        let deadline = std::time::Instant::now() + BUSY_WAIT;
        loop {
            let mut req = self
                .agent
                .get(format!("{}{path}", self.base))
                .config()
                .timeout_global(None)
                .timeout_recv_body(None)
                .build();
            if let Some(t) = &self.token {
                req = req.header("Authorization", format!("Bearer {t}"));
            }
            let r = req
                .call()
                .map_err(|e| no_answer(&format!("GET {path}"), e))?;
            let status = r.status().as_u16();
            if status == 200 {
                return Ok(r.into_body().into_reader());
            }
            // Busy, or what it needs not yet in a signed checkpoint: asked
            // again after the wait, as `get_ok` does.
            let retry = retry_after(&r)
                .map(Duration::from_secs)
                .filter(|&wait| status == 503 && std::time::Instant::now() + wait <= deadline);
            let text = r.into_body().read_to_string().unwrap_or_default();
            match retry {
                Some(wait) => std::thread::sleep(wait),
                None => bail!("GET {path}: {status} {}", text.trim()),
            }
        }
    }

    /// GET that must succeed; the server's reason otherwise. A 503 with
    /// `Retry-After` (a decision not yet in a signed checkpoint, indexes
    /// catching up) is asked again after the wait, for up to
    /// [`BUSY_WAIT`] in all, so that a record shipped a moment ago can be
    /// proven at once.
    pub fn get_ok(&self, path: &str) -> Result<Vec<u8>> {
        let r = Remote::while_busy(|| self.get(path))?;
        match r.status {
            200 => Ok(r.body),
            _ => bail!("GET {path}: {} {}", r.status, r.text().trim()),
        }
    }

    /// `ask`'s reply, asked again while the server answers 503 with
    /// `Retry-After`, for up to [`BUSY_WAIT`] in all.
    pub fn while_busy(mut ask: impl FnMut() -> Result<Reply>) -> Result<Reply> {
        let deadline = std::time::Instant::now() + BUSY_WAIT;
        loop {
            let r = ask()?;
            match (r.status, r.retry_after) {
                (503, Some(secs))
                    if std::time::Instant::now() + Duration::from_secs(secs) <= deadline =>
                {
                    std::thread::sleep(Duration::from_secs(secs));
                }
                _ => return Ok(r),
            }
        }
    }

    /// [`Remote::post`] asking for an answer in `accept`.
    pub fn post_accepting(
        &self,
        path: &str,
        content_type: &str,
        accept: &str,
        body: &[u8],
    ) -> Result<Reply> {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", content_type)
            .header("Accept", accept);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        Remote::reply(req.send(body), &format!("POST {path}"))
    }

    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<Reply> {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", content_type);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        Remote::reply(req.send(body), &format!("POST {path}"))
    }

    /// The signed checkpoint (latest, or the one signed at `size`),
    /// verified, with the witnesses' cosignatures asked for.
    pub fn checkpoint(&self, key: &VerifierKey, size: Option<u64>) -> Result<(Checkpoint, String)> {
        let (cp, text) = self.log_checkpoint(key, size)?;
        cosignature::witnessing(text.as_bytes(), key, &self.policy)
            .with_context(|| format!("the checkpoint of size {}", cp.size))?;
        Ok((cp, text))
    }

    /// [`Remote::checkpoint`], checking the log's signature only.
    pub fn log_checkpoint(
        &self,
        key: &VerifierKey,
        size: Option<u64>,
    ) -> Result<(Checkpoint, String)> {
        let path = size.map_or("/checkpoint".to_string(), |s| {
            format!("/v1/checkpoints/{s}")
        });
        let text = self.get_ok(&path)?;
        let cp = checkpoint::open(&text, key)
            .with_context(|| format!("{path} does not verify with the log key"))?;
        Ok((cp, String::from_utf8_lossy(&text).into_owned()))
    }

    fn tiles(&self, size: u64) -> TileHashReader<impl Fn(&Tile) -> Result<Vec<u8>> + '_> {
        TileHashReader::new(size, move |t: &Tile| self.get_ok(&format!("/{}", t.path())))
    }

    /// A tlog-proof of leaf `index`, computed from tiles and checked against
    /// the signed checkpoint before it is returned.
    pub fn prove(&self, key: &VerifierKey, index: u64, size: Option<u64>) -> Result<TlogProof> {
        let (cp, text) = self.checkpoint(key, size)?;
        if index >= cp.size {
            bail!(
                "leaf index {index} is beyond the checkpoint's size {}",
                cp.size
            );
        }
        let reader = self.tiles(cp.size);
        let proof = verifier::tree::inclusion_proof(&reader, index, cp.size)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let leaf = verifier::tree::HashReader::node(&reader, verifier::NodeId::leaf(index))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        verifier::inclusion::verify_inclusion(&leaf, index, cp.size, &proof, &cp.root)
            .context("tiles served do not match the signed checkpoint")?;
        Ok(TlogProof {
            extra: None,
            index,
            proof,
            checkpoint: text,
        })
    }

    pub fn consistency(&self, old: u64, new: u64) -> Result<ConsistencyFile> {
        let body = self.get_ok(&format!("/v1/proof/consistency?from={old}&to={new}"))?;
        Ok(ConsistencyFile::parse(&body)?)
    }

    /// Audits the served log ([`crate::audit`]): every entry bundle
    /// rehashed into the tree whose root must be the signed checkpoint's,
    /// and the hash tiles served must give that root too.
    pub fn audit(
        &self,
        keys: &ledger::keys::LogKeys,
        held: &[Vec<u8>],
        progress: impl FnMut(u64, u64),
    ) -> Result<crate::audit::Audited> {
        let audited = crate::audit::audit(self, keys, held, progress)?;
        let cp = &audited.checkpoint;
        // The hash tiles must agree with the entries too.
        let served = verifier::tree::root(&self.tiles(cp.size), cp.size)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if served != cp.root {
            bail!("the served hash tiles do not match the signed root");
        }
        Ok(audited)
    }
}

impl crate::audit::Source for Remote {
    type Error = anyhow::Error;

    fn checkpoint(&self) -> Result<Vec<u8>> {
        self.get_ok("/checkpoint")
    }

    fn bundle(&self, tile: &Tile) -> Result<crate::audit::Bundle> {
        let path = format!("/{}", tile.path());
        let r = self.get(&path)?;
        match r.status {
            200 if crate::audit::holds_erased(&r.body) => {
                // Erased entries' hashes are in the hash tile.
                let hashes = crate::audit::hashes_of(tile);
                Ok(crate::audit::Bundle::Erased {
                    entries: r.body,
                    hashes: self.get_ok(&format!("/{}", hashes.path()))?,
                })
            }
            200 => Ok(crate::audit::Bundle::Entries(r.body)),
            // The log's retention removed these entries; their hashes stay.
            410 => {
                let hashes = crate::audit::hashes_of(tile);
                let tile = self.get_ok(&format!("/{}", hashes.path()))?;
                Ok(crate::audit::Bundle::Pruned(tile))
            }
            // Busy, or an error: asked again as every other read is.
            _ => Ok(crate::audit::Bundle::Entries(self.get_ok(&path)?)),
        }
    }

    fn kept(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        Ok(Vec::new())
    }
}

/// Whether `e` is a TLS handshake refused for its certificates (the
/// server's, or the client's): asking again will not help.
pub fn tls_refused(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("fatal alert") || text.contains("invalid peer certificate")
}

/// A request that got no HTTP answer, with what to do about the usual
/// causes: a certificate from a private CA, or the wrong scheme.
fn no_answer(what: &str, e: ureq::Error) -> anyhow::Error {
    let text = e.to_string();
    let hint = if text.contains("CertificateRequired") {
        " (the server asks for a client certificate: give --client-cert and --client-key)"
    } else if text.contains("fatal alert: UnknownCA")
        || text.contains("fatal alert: BadCertificate")
    {
        " (the server does not accept this client certificate: one from the CA of its --tls-client-ca is needed)"
    } else if text.contains("certificate") {
        " (a server certificate from a private CA: give the CA's certificate with --ca)"
    } else if text.contains("InvalidContentType") {
        " (the server answers plain HTTP: use an http:// URL)"
    } else if text.contains("invalid HTTP version") {
        " (the server may speak HTTPS only: use an https:// URL)"
    } else {
        ""
    };
    anyhow::Error::new(e).context(format!("{what}: no answer from ledgerd{hint}"))
}

/// Percent-encodes a path segment or query value.
pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The seconds of an answer's `Retry-After`, if it has one.
fn retry_after<B>(r: &ureq::http::Response<B>) -> Option<u64> {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}
