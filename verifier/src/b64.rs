//! Standard base64 (RFC 4648 §4, with padding), the only encoding the C2SP
//! formats use. Decoding is strict: no whitespace, canonical padding.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}
