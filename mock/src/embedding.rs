//! Deterministic embeddings: the same input always gives the same unit vector.
//!
//! The input's bytes are hashed (64-bit FNV-1a); the hash seeds a SplitMix64 sequence
//! whose outputs, mapped to [-1, 1), are the components, scaled to length 1. O(bytes
//! + dimensions). The vectors mean nothing; they only have the shape of real ones.

use base64::Engine;

/// Components of a vector when the request does not ask for `dimensions`.
pub const DEFAULT_DIMENSIONS: usize = 16;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The unit vector of `input`, with `dimensions` components.
pub fn vector(input: &[u8], dimensions: usize) -> Vec<f32> {
    let mut state = fnv1a(input);
    let raw: Vec<f64> = (0..dimensions)
        // The top 53 bits as a fraction in [0, 1), then stretched to [-1, 1).
        .map(|_| (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    raw.iter()
        .map(|x| if norm > 0.0 { (x / norm) as f32 } else { 0.0 })
        .collect()
}

/// `encoding_format: "base64"`: the components as little-endian `f32`s, base64.
pub fn base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_input_gives_the_same_unit_vector() {
        let a = vector(b"hello", 32);
        assert_eq!(a, vector(b"hello", 32));
        assert_ne!(a, vector(b"hellp", 32));
        let length: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((length - 1.0).abs() < 1e-5, "{length}");
    }

    #[test]
    fn base64_is_the_little_endian_floats() {
        assert_eq!(base64(&[1.0]), "AACAPw==");
    }
}
