//! COSE receipts (specs/receipt.md): RFC 9942 with the RFC9162_SHA256
//! verifiable data structure, signed with the log's Ed25519 key.
//!
//! ```text
//! 18([                                   COSE_Sign1, tagged
//!   << { 1: -8,                          alg: EdDSA
//!        395: 1,                         vds: RFC9162_SHA256
//!        -65537: tree_size } >>,         the tree size the root is of
//!   { 396: { -1: [ << [tree_size, leaf_index, [+ hash]] >> ] } },
//!   nil,                                 detached payload: the tree root
//!   signature                            Ed25519 over Sig_structure
//! ])
//! Sig_structure = ["Signature1", protected, h'', root]
//! ```
//!
//! A receipt is in deterministic CBOR. Its verifier recomputes the root from
//! the leaf and the inclusion path (RFC 9162 §2.1.3.2) and checks the
//! signature with that root as the payload; any COSE implementation can do
//! the same. The tree size is repeated in the protected header because the
//! unprotected one is not signed.

use ciborium::Value;

use crate::cbor::{self, CborError};
use crate::hash::{leaf_hash, Hash, HASH_SIZE};
use crate::inclusion::{root_from_inclusion, InclusionError};
use crate::note::{SignerKey, VerifierKey};

/// CBOR tag of a COSE_Sign1.
pub const TAG_COSE_SIGN1: u64 = 18;
/// Header label `alg`.
pub const LABEL_ALG: i64 = 1;
/// COSE algorithm EdDSA.
pub const ALG_EDDSA: i64 = -8;
/// Header label `vds` (verifiable data structure).
pub const LABEL_VDS: i64 = 395;
/// `vds` value RFC9162_SHA256.
pub const VDS_RFC9162_SHA256: i64 = 1;
/// Header label `vdp` (verifiable data structure proofs).
pub const LABEL_VDP: i64 = 396;
/// `vdp` key of the inclusion proofs.
pub const VDP_INCLUSION: i64 = -1;
/// Protected header label (private use) of the tree size.
pub const LABEL_TREE_SIZE: i64 = -65537;

/// The media type.
pub const MEDIA_TYPE: &str = "application/cose";

/// Why a receipt was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    /// Not one CBOR item.
    #[error("receipt: {0}")]
    Cbor(#[from] CborError),
    /// Valid CBOR, but not in deterministic encoding.
    #[error("receipt is not in deterministic CBOR encoding")]
    NotDeterministic,
    /// Not a receipt of this profile.
    #[error("malformed receipt: {0}")]
    Malformed(&'static str),
    /// The inclusion path does not fit the leaf index and tree size.
    #[error("receipt inclusion proof: {0}")]
    Inclusion(#[from] InclusionError),
    /// The signature does not verify over the recomputed root.
    #[error(
        "receipt signature does not verify with the log's key over the root computed from the leaf"
    )]
    Signature,
}

/// A receipt's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The tree size (signed, in the protected header).
    pub tree_size: u64,
    /// The leaf's index.
    pub leaf_index: u64,
    /// The inclusion path, leaf upward.
    pub path: Vec<Hash>,
    /// The Ed25519 signature.
    pub signature: [u8; 64],
}

pub(crate) fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

fn protected_bytes(tree_size: u64) -> Vec<u8> {
    cbor::encode(&Value::Map(vec![
        (int(LABEL_ALG), int(ALG_EDDSA)),
        (int(LABEL_VDS), int(VDS_RFC9162_SHA256)),
        (int(LABEL_TREE_SIZE), Value::Integer(tree_size.into())),
    ]))
}

/// The Sig_structure of a COSE_Sign1 with no external AAD (RFC 9052
/// §4.4): `["Signature1", protected, h'', payload]`, written directly
/// (receipts and enforcer signatures, [`crate::enforcer_signature`]).
pub(crate) fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + protected.len() + 24);
    cbor::head(4, 4, &mut out);
    cbor::text_into("Signature1", &mut out);
    cbor::head(2, protected.len() as u64, &mut out);
    out.extend_from_slice(protected);
    cbor::head(2, 0, &mut out);
    cbor::head(2, payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

impl Receipt {
    /// Signs a receipt for leaf `leaf_index` of the tree of `tree_size`
    /// leaves whose root is `root` (the caller computed `path` and `root`
    /// from the log).
    pub fn sign(
        signer: &SignerKey,
        tree_size: u64,
        leaf_index: u64,
        path: Vec<Hash>,
        root: &Hash,
    ) -> Receipt {
        let signature = signer.sign_bytes(&sig_structure(&protected_bytes(tree_size), &root.0));
        Receipt {
            tree_size,
            leaf_index,
            path,
            signature,
        }
    }

    /// The receipt's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let proof = cbor::encode(&Value::Array(vec![
            Value::Integer(self.tree_size.into()),
            Value::Integer(self.leaf_index.into()),
            Value::Array(
                self.path
                    .iter()
                    .map(|h| Value::Bytes(h.0.to_vec()))
                    .collect(),
            ),
        ]));
        let unprotected = Value::Map(vec![(
            int(LABEL_VDP),
            Value::Map(vec![(
                int(VDP_INCLUSION),
                Value::Array(vec![Value::Bytes(proof)]),
            )]),
        )]);
        cbor::encode(&Value::Tag(
            TAG_COSE_SIGN1,
            Box::new(Value::Array(vec![
                Value::Bytes(protected_bytes(self.tree_size)),
                unprotected,
                Value::Null,
                Value::Bytes(self.signature.to_vec()),
            ])),
        ))
    }

    /// Decodes a receipt of this profile (not yet verified).
    pub fn decode(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        use ReceiptError::Malformed;
        let value = cbor::decode(bytes)?;
        if cbor::encode(&value) != bytes {
            return Err(ReceiptError::NotDeterministic);
        }
        let Value::Tag(TAG_COSE_SIGN1, body) = value else {
            return Err(Malformed("not a COSE_Sign1 tagged 18"));
        };
        let Value::Array(parts) = *body else {
            return Err(Malformed("COSE_Sign1 is not an array"));
        };
        let [Value::Bytes(protected), unprotected, payload, Value::Bytes(signature)] = &parts[..]
        else {
            return Err(Malformed(
                "COSE_Sign1 is not [protected, unprotected, payload, signature]",
            ));
        };
        if !payload.is_null() {
            return Err(Malformed("the payload must be detached (nil)"));
        }
        let signature: [u8; 64] = signature[..]
            .try_into()
            .map_err(|_| Malformed("the signature is not 64 bytes"))?;
        let header = labels(&cbor::decode(protected)?, "protected header")?;
        let tree_size = match &header[..] {
            [(LABEL_ALG, a), (LABEL_VDS, v), (LABEL_TREE_SIZE, n)]
                if a.as_integer() == Some(ALG_EDDSA.into())
                    && v.as_integer() == Some(VDS_RFC9162_SHA256.into()) =>
            {
                uint(n).ok_or(Malformed(
                    "the protected tree size is not an unsigned integer",
                ))?
            }
            _ => {
                return Err(Malformed(
                    "the protected header is not {alg: EdDSA, vds: RFC9162_SHA256, tree size}",
                ))
            }
        };
        let vdp = match &labels(unprotected, "unprotected header")?[..] {
            [(LABEL_VDP, vdp)] => labels(vdp, "vdp")?,
            _ => return Err(Malformed("the unprotected header holds anything but vdp")),
        };
        let proof = match &vdp[..] {
            [(VDP_INCLUSION, Value::Array(proofs))] => match &proofs[..] {
                [Value::Bytes(p)] => cbor::decode(p)?,
                _ => return Err(Malformed("vdp does not hold exactly one inclusion proof")),
            },
            _ => return Err(Malformed("vdp holds anything but inclusion proofs")),
        };
        let Value::Array(fields) = proof else {
            return Err(Malformed("the inclusion proof is not an array"));
        };
        let [size, index, Value::Array(path)] = &fields[..] else {
            return Err(Malformed(
                "the inclusion proof is not [tree_size, leaf_index, path]",
            ));
        };
        if uint(size) != Some(tree_size) {
            return Err(Malformed(
                "the inclusion proof's tree size is not the signed one",
            ));
        }
        let leaf_index =
            uint(index).ok_or(Malformed("the leaf index is not an unsigned integer"))?;
        let path = path
            .iter()
            .map(|h| match h {
                Value::Bytes(b) if b.len() == HASH_SIZE => Hash::from_slice(b),
                _ => None,
            })
            .collect::<Option<Vec<Hash>>>()
            .ok_or(Malformed("an inclusion path element is not a 32-byte hash"))?;
        Ok(Receipt {
            tree_size,
            leaf_index,
            path,
            signature,
        })
    }

    /// Verifies that `leaf` is at the receipt's index in a tree whose root
    /// the log's key signed; returns that root.
    pub fn verify(&self, leaf: &[u8], key: &VerifierKey) -> Result<Hash, ReceiptError> {
        let root = root_from_inclusion(
            &leaf_hash(leaf),
            self.leaf_index,
            self.tree_size,
            &self.path,
        )?;
        let message = sig_structure(&protected_bytes(self.tree_size), &root.0);
        if !key.verify(&message, &self.signature) {
            return Err(ReceiptError::Signature);
        }
        Ok(root)
    }
}

/// A map's entries with integer labels, in order; anything else refused.
fn labels(v: &Value, what: &'static str) -> Result<Vec<(i64, Value)>, ReceiptError> {
    let Value::Map(entries) = v else {
        return Err(ReceiptError::Malformed(match what {
            "protected header" => "the protected header is not a map",
            "unprotected header" => "the unprotected header is not a map",
            _ => "vdp is not a map",
        }));
    };
    entries
        .iter()
        .map(|(k, v)| {
            k.as_integer()
                .and_then(|i| i64::try_from(i).ok())
                .map(|k| (k, v.clone()))
                .ok_or(ReceiptError::Malformed("a header label is not an integer"))
        })
        .collect()
}

fn uint(v: &Value) -> Option<u64> {
    v.as_integer().and_then(|i| u64::try_from(i).ok())
}

/// Decodes and verifies a receipt for `leaf` in one step; returns it and
/// the root the log signed.
pub fn verify(
    receipt: &[u8],
    leaf: &[u8],
    key: &VerifierKey,
) -> Result<(Receipt, Hash), ReceiptError> {
    let r = Receipt::decode(receipt)?;
    let root = r.verify(leaf, key)?;
    Ok((r, root))
}
