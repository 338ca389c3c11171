//! Chain bundles (specs/chain.md): the decisions linked to one another as
//! one request passes from a person through agents and service accounts to
//! an API, each hop proven against one signed checkpoint.
//!
//! ```text
//! decision-ledger/chain@v1\n
//! complete\n | truncated\n            whether the hop limit cut the chain
//! hop <leaf index>\n                  for each hop, indexes ascending:
//! leaf <standard base64 of the leaf>\n
//! [<base64 inclusion proof hash>\n]*
//! \n
//! <signed checkpoint, the log's signature alone>
//! ```
//!
//! Two decisions are linked when one names the other as
//! `context.parent_decision_id`, or when they share `context.request_id` or
//! `context.trace_id`. A bundle holds the linked decisions reachable from the
//! one asked about, at most [`HOP_LIMIT`]; [`ChainBundle::verify`] checks
//! every hop's inclusion and that the hops are linked into one chain.

use std::collections::BTreeMap;

use crate::b64;
use crate::checkpoint::{parse_decimal, Checkpoint, CheckpointError};
use crate::cosignature::{self, Policy, Witnessing};
use crate::decision::{Decision, DecisionError, LoggedDecision};
use crate::findings::{self, Agreement, Finding};
use crate::hash::{leaf_hash, parse_hash_lines, write_hash_lines, Hash};
use crate::inclusion::{verify_inclusion, InclusionError};
use crate::note::VerifierKey;
use crate::tile::MAX_ENTRY_SIZE;

/// The first line of every chain bundle.
pub const HEADER: &str = "decision-ledger/chain@v1";
/// Hops a bundle holds at most; a chain with more is cut there and the
/// bundle says `truncated`.
pub const HOP_LIMIT: usize = 256;

/// Why a chain bundle was rejected; the message names what failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    /// The text is not a chain bundle.
    #[error("malformed chain bundle: {0}")]
    Malformed(String),
    /// The checkpoint is bad or not signed by the log's key (alone).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A hop's leaf is not at its index in the signed tree.
    #[error("hop {index}: the leaf is not in the signed tree at this index: {source}")]
    Inclusion {
        /// The hop's leaf index.
        index: u64,
        /// Why.
        source: InclusionError,
    },
    /// A hop's leaf is not a decision record.
    #[error("hop {index}: the logged leaf is not a readable decision: {source}")]
    Record {
        /// The hop's leaf index.
        index: u64,
        /// Why.
        source: DecisionError,
    },
    /// Two hops carry the same `decision_id`.
    #[error("hops {first} and {second} carry the same decision_id {id:?}")]
    DuplicateDecision {
        /// The first hop's index.
        first: u64,
        /// The second hop's index.
        second: u64,
        /// The decision id.
        id: String,
    },
    /// A hop is not linked to the others.
    #[error("hop {index} (decision {id:?}) is not linked to the rest of the chain by parent_decision_id, request_id or trace_id")]
    Unlinked {
        /// The hop's index.
        index: u64,
        /// Its decision id.
        id: String,
    },
}

fn malformed(why: impl Into<String>) -> ChainError {
    ChainError::Malformed(why.into())
}

/// One hop of a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The leaf's index.
    pub index: u64,
    /// The exact leaf bytes.
    pub leaf: Vec<u8>,
    /// Its inclusion proof in the checkpoint's tree.
    pub proof: Vec<Hash>,
}

/// A parsed (not yet verified) chain bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBundle {
    /// The hop limit cut the chain.
    pub truncated: bool,
    /// The hops, indexes ascending.
    pub hops: Vec<Hop>,
    /// The signed checkpoint every proof is against, verbatim.
    pub checkpoint: String,
}

/// A verified hop: its index and decision.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedHop {
    /// The leaf's index.
    pub index: u64,
    /// The decision read from the leaf.
    pub logged: LoggedDecision,
}

/// What a verified bundle proves.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedChain {
    /// The checkpoint every hop is included in.
    pub checkpoint: Checkpoint,
    /// The hop limit cut the chain.
    pub truncated: bool,
    /// The hops, indexes ascending.
    pub hops: Vec<VerifiedHop>,
    /// The witnesses' cosignatures on the checkpoint.
    pub witnessing: Witnessing,
}

impl ChainBundle {
    /// Parses the text form.
    pub fn parse(data: &[u8]) -> Result<ChainBundle, ChainError> {
        let text = std::str::from_utf8(data).map_err(|_| malformed("not UTF-8"))?;
        let rest = text
            .strip_prefix(HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or_else(|| malformed("the first line is not decision-ledger/chain@v1"))?;
        let (head, checkpoint) = rest
            .split_once("\n\n")
            .ok_or_else(|| malformed("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let truncated = match lines.next() {
            Some("complete") => false,
            Some("truncated") => true,
            _ => return Err(malformed("the second line is not complete or truncated")),
        };
        let mut hops: Vec<Hop> = Vec::new();
        let mut lines = lines.peekable();
        while let Some(line) = lines.next() {
            let index = line
                .strip_prefix("hop ")
                .and_then(parse_decimal)
                .ok_or_else(|| malformed(format!("expected \"hop <index>\", found {line:?}")))?;
            if hops.last().is_some_and(|h| h.index >= index) {
                return Err(malformed(format!(
                    "hop {index} is not after the hop before it (indexes ascend)"
                )));
            }
            let leaf = lines
                .next()
                .and_then(|l| l.strip_prefix("leaf "))
                .and_then(b64::decode)
                .filter(|l| !l.is_empty() && l.len() <= MAX_ENTRY_SIZE)
                .ok_or_else(|| malformed(format!("hop {index}: no \"leaf <base64>\" line")))?;
            let mut proof_lines = Vec::new();
            while let Some(l) = lines.next_if(|l| !l.starts_with("hop ")) {
                proof_lines.push(l);
            }
            let proof = parse_hash_lines(proof_lines.into_iter())
                .ok_or_else(|| malformed(format!("hop {index}: a proof line is not a hash")))?;
            hops.push(Hop { index, leaf, proof });
        }
        if hops.is_empty() {
            return Err(malformed("no hops"));
        }
        if hops.len() > HOP_LIMIT || (truncated && hops.len() != HOP_LIMIT) {
            return Err(malformed(format!(
                "{} hops: a bundle holds at most {HOP_LIMIT}, and a truncated one exactly that",
                hops.len()
            )));
        }
        Ok(ChainBundle {
            truncated,
            hops,
            checkpoint: checkpoint.to_string(),
        })
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{HEADER}\n{}\n",
            if self.truncated {
                "truncated"
            } else {
                "complete"
            }
        );
        for h in &self.hops {
            s.push_str(&format!("hop {}\nleaf {}\n", h.index, b64::encode(&h.leaf)));
            write_hash_lines(&mut s, &h.proof);
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Verifies the bundle with the log's key: the checkpoint, every hop's
    /// inclusion in it, that every hop is a decision, and that the hops are
    /// linked into one chain. Nothing is returned unless all hold.
    pub fn verify(&self, key: &VerifierKey) -> Result<VerifiedChain, ChainError> {
        self.verify_witnessed(key, &Policy::default())
    }

    /// [`ChainBundle::verify`], and the checkpoint's cosignatures by the
    /// witnesses of `policy` verified and reaching its quorum.
    pub fn verify_witnessed(
        &self,
        key: &VerifierKey,
        policy: &Policy,
    ) -> Result<VerifiedChain, ChainError> {
        let (cp, witnessing) =
            cosignature::open_witnessed(self.checkpoint.as_bytes(), key, policy)?;
        let mut hops = Vec::with_capacity(self.hops.len());
        for h in &self.hops {
            verify_inclusion(&leaf_hash(&h.leaf), h.index, cp.size, &h.proof, &cp.root).map_err(
                |source| ChainError::Inclusion {
                    index: h.index,
                    source,
                },
            )?;
            let logged =
                LoggedDecision::from_leaf(&h.leaf).map_err(|source| ChainError::Record {
                    index: h.index,
                    source,
                })?;
            hops.push(VerifiedHop {
                index: h.index,
                logged,
            });
        }
        let mut ids: BTreeMap<&str, u64> = BTreeMap::new();
        for h in &hops {
            if let Some(first) = ids.insert(&h.logged.decision.decision_id, h.index) {
                return Err(ChainError::DuplicateDecision {
                    first,
                    second: h.index,
                    id: h.logged.decision.decision_id.clone(),
                });
            }
        }
        let decisions: Vec<&Decision> = hops.iter().map(|h| &h.logged.decision).collect();
        if let Some(i) = first_unlinked(&decisions) {
            return Err(ChainError::Unlinked {
                index: hops[i].index,
                id: decisions[i].decision_id.clone(),
            });
        }
        Ok(VerifiedChain {
            checkpoint: cp,
            truncated: self.truncated,
            hops,
            witnessing,
        })
    }
}

/// Whether two decisions are linked (specs/chain.md, "Links").
pub fn linked(a: &Decision, b: &Decision) -> bool {
    let same = |x: &Option<String>, y: &Option<String>| x.is_some() && x == y;
    a.context.parent_decision_id.as_deref() == Some(b.decision_id.as_str())
        || b.context.parent_decision_id.as_deref() == Some(a.decision_id.as_str())
        || same(&a.context.request_id, &b.context.request_id)
        || same(&a.context.trace_id, &b.context.trace_id)
}

/// The position of a decision outside the largest group of decisions
/// linked to one another (the first such group if several are as large),
/// if there is one.
fn first_unlinked(ds: &[&Decision]) -> Option<usize> {
    let mut group = vec![usize::MAX; ds.len()];
    let mut sizes = Vec::new();
    for start in 0..ds.len() {
        if group[start] != usize::MAX {
            continue;
        }
        let g = sizes.len();
        let (mut todo, mut size) = (vec![start], 1);
        group[start] = g;
        while let Some(i) = todo.pop() {
            for j in 0..ds.len() {
                if group[j] == usize::MAX && linked(ds[i], ds[j]) {
                    group[j] = g;
                    size += 1;
                    todo.push(j);
                }
            }
        }
        sizes.push(size);
    }
    let largest = (0..sizes.len()).max_by_key(|&g| (sizes[g], usize::MAX - g))?;
    group.iter().position(|&g| g != largest)
}

/// One line of the chain drawn as a tree: the hop and its depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeLine {
    /// Position of the hop in [`VerifiedChain::hops`].
    pub hop: usize,
    /// 0 for a hop whose parent is not in the bundle.
    pub depth: usize,
}

impl VerifiedChain {
    /// The hops' decisions, in bundle order.
    pub fn decisions(&self) -> Vec<&Decision> {
        self.hops.iter().map(|h| &h.logged.decision).collect()
    }

    /// Every finding over the chain: each hop's as logged
    /// ([`findings::of_logged`]), then those across hops ([`findings::across`]).
    pub fn findings(&self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .hops
            .iter()
            .flat_map(|h| findings::of_logged(&h.logged))
            .collect();
        out.extend(findings::across(&self.decisions(), self.truncated));
        out
    }

    /// The per-request agreement table ([`findings::agreement`]).
    pub fn agreement(&self) -> Vec<Agreement> {
        findings::agreement(&self.decisions())
    }

    /// The hops as a tree by `parent_decision_id`: each hop after its
    /// parent, children in log order; hops whose parent is not in the
    /// bundle (linked by request or trace only) start trees of their own.
    pub fn tree(&self) -> Vec<TreeLine> {
        let ds = self.decisions();
        let pos: BTreeMap<&str, usize> = ds
            .iter()
            .enumerate()
            .map(|(i, d)| (d.decision_id.as_str(), i))
            .collect();
        let parent = |i: usize| {
            ds[i]
                .context
                .parent_decision_id
                .as_deref()
                .and_then(|p| pos.get(p).copied())
                .filter(|&p| p != i)
        };
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); ds.len()];
        for i in 0..ds.len() {
            if let Some(p) = parent(i) {
                children[p].push(i);
            }
        }
        let mut out = Vec::with_capacity(ds.len());
        let mut seen = vec![false; ds.len()];
        // Roots first; then any hop left (parents that form a cycle).
        let roots = (0..ds.len()).filter(|&i| parent(i).is_none());
        for root in roots.chain(0..ds.len()) {
            let mut stack = vec![(root, 0)];
            while let Some((i, depth)) = stack.pop() {
                if std::mem::replace(&mut seen[i], true) {
                    continue;
                }
                out.push(TreeLine { hop: i, depth });
                stack.extend(children[i].iter().rev().map(|&c| (c, depth + 1)));
            }
        }
        out
    }
}

/// Parses and verifies a chain bundle in one step.
pub fn verify(data: &[u8], key: &VerifierKey) -> Result<VerifiedChain, ChainError> {
    ChainBundle::parse(data)?.verify(key)
}

/// [`verify`] with the witnesses of `policy`.
pub fn verify_witnessed(
    data: &[u8],
    key: &VerifierKey,
    policy: &Policy,
) -> Result<VerifiedChain, ChainError> {
    ChainBundle::parse(data)?.verify_witnessed(key, policy)
}
