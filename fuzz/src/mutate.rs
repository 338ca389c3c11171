//! Random mutations of seed inputs, for the bounded run in `make test`
//! (coverage-guided runs use libFuzzer's own mutator): bit flips, bytes
//! set to values that parsers treat specially (CBOR heads of huge or
//! indefinite lengths, NaN, break codes), lengths rewritten, ranges
//! removed, repeated or truncated, and pieces of another seed spliced in.
//! Deterministic from its seed, so a failure can be replayed.

/// A small PRNG (SplitMix64): deterministic from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Bytes that parsers treat specially.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, // CBOR argument sizes, indefinite
    0x20, 0x3b, 0x40, 0x5b, 0x5f, 0x60, 0x7b, 0x7f, // negative, bytes, text
    0x80, 0x9b, 0x9f, 0xa0, 0xbb, 0xbf, 0xc0, 0xc1, // arrays, maps, tags
    0xd8, 0xf4, 0xf5, 0xf6, 0xf7, 0xf9, 0xfb, 0xff, // simple, floats, break
    b'"', b'\\', b'{', b'}', b'[', b']', b':', b',', b'\n', b' ', b'-', b'.', b'=', b'/', b'0',
    b'9', b'e', b'+', 0x7e, 0xc3, 0xed, 0xf0,
];

/// Lengths and counts that break parsers that trust them.
const INTERESTING_NUMBERS: &[u64] = &[
    0,
    1,
    23,
    24,
    255,
    256,
    65_535,
    65_536,
    0x7fff_ffff,
    0xffff_ffff,
    0x1_0000_0000,
    u64::MAX / 2,
    u64::MAX,
];

/// One to eight mutations of `seed`; `other` is another seed to splice
/// from.
pub fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        mutate_once(rng, &mut b, other);
        if b.len() > 1 << 20 {
            b.truncate(1 << 20);
        }
    }
    b
}

fn mutate_once(rng: &mut Rng, b: &mut Vec<u8>, other: &[u8]) {
    let len = b.len();
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len);
            b[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            b[i] = INTERESTING[rng.below(INTERESTING.len())];
        }
        2 if len > 0 => {
            let i = rng.below(len);
            b[i] = rng.next_u64() as u8;
        }
        3 => {
            // A number written big-endian (as CBOR writes arguments).
            let n = INTERESTING_NUMBERS[rng.below(INTERESTING_NUMBERS.len())];
            let width = [1, 2, 4, 8][rng.below(4)];
            let bytes = &n.to_be_bytes()[8 - width..];
            let i = rng.below(len + 1);
            let end = (i + width).min(len);
            b.splice(i..end, bytes.iter().copied());
        }
        4 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            b.drain(i..i + n);
        }
        5 if len > 0 => {
            // A range repeated in place.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(256));
            let piece = b[i..i + n].to_vec();
            for _ in 0..1 + rng.below(4) {
                b.splice(i..i, piece.iter().copied());
            }
        }
        6 => {
            b.truncate(rng.below(len + 1));
        }
        7 if !other.is_empty() => {
            let i = rng.below(other.len());
            let n = 1 + rng.below((other.len() - i).min(512));
            let at = rng.below(len + 1);
            b.splice(at..at, other[i..i + n].iter().copied());
        }
        8 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let fresh: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            b.splice(at..at, fresh);
        }
        _ if len > 1 => {
            // Two bytes swapped.
            let (i, j) = (rng.below(len), rng.below(len));
            b.swap(i, j);
        }
        _ => b.push(INTERESTING[rng.below(INTERESTING.len())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutations() {
        let seed = b"{\"decision_id\": \"d-1\"}";
        let a: Vec<_> = {
            let mut r = Rng::new(9);
            (0..100).map(|_| mutate(&mut r, seed, b"xyz")).collect()
        };
        let mut r = Rng::new(9);
        let b: Vec<_> = (0..100).map(|_| mutate(&mut r, seed, b"xyz")).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|m| m.as_slice() != seed));
    }

    #[test]
    fn mutations_of_nothing_still_make_inputs() {
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let m = mutate(&mut r, b"", b"");
            assert!(m.len() <= 1 << 20);
        }
    }
}
