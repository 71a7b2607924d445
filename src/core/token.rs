//! API key tokens (docs/guide.md, API keys): `azk_` + 32 random base62 characters + 6 base62
//! characters of the CRC32 (IEEE) of the first 36 characters, as GitHub's tokens do, so a
//! token with a wrong shape or checksum is told apart without touching any table, and a
//! secret scanner can recognise one offline. Only the SHA-256 of a token is ever stored.

use sha2::{Digest, Sha256};

pub const PREFIX: &str = "azk_";
pub const RANDOM_LEN: usize = 32;
pub const CHECKSUM_LEN: usize = 6;
pub const TOKEN_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;
/// Characters of the random part kept (after the prefix) in a key's preview.
pub const PREVIEW_RANDOM_CHARS: usize = 8;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A newly generated token. Shown to the user once, then dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub token: String,
    pub preview: String,
    pub hash: [u8; 32],
}

/// Builds a token from a source of random bytes (the OS CSPRNG in the extension).
/// Characters are drawn by rejection sampling so each of the 62 is equally likely.
pub fn generate(mut random_bytes: impl FnMut(&mut [u8])) -> NewToken {
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push_str(PREFIX);
    let mut buf = [0u8; 64];
    while token.len() < PREFIX.len() + RANDOM_LEN {
        random_bytes(&mut buf);
        // 248 = 4 * 62: bytes at or above it would favour the first characters.
        for b in buf.iter().filter(|&&b| b < 248) {
            if token.len() == PREFIX.len() + RANDOM_LEN {
                break;
            }
            token.push(ALPHABET[(b % 62) as usize] as char);
        }
    }
    token.push_str(&checksum_text(&token));
    NewToken { preview: preview(&token), hash: hash(&token), token }
}

/// Why a string is not a well-formed token. Never carries the string itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Length,
    Prefix,
    Alphabet,
    Checksum,
}

/// Checks shape and checksum; Ok means the token is worth looking up.
pub fn parse(candidate: &str) -> Result<(), Malformed> {
    let bytes = candidate.as_bytes();
    if bytes.len() != TOKEN_LEN {
        return Err(Malformed::Length);
    }
    if !bytes.starts_with(PREFIX.as_bytes()) {
        return Err(Malformed::Prefix);
    }
    if !bytes[PREFIX.len()..].iter().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Malformed::Alphabet);
    }
    // All ASCII from here, so slicing at byte offsets is slicing at characters.
    let (body, checksum) = candidate.split_at(TOKEN_LEN - CHECKSUM_LEN);
    if checksum != checksum_text(body) {
        return Err(Malformed::Checksum);
    }
    Ok(())
}

/// SHA-256 of the whole token: what is stored, equal to pgcrypto's `digest(token, 'sha256')`.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The prefix and the first characters of the random part, for display.
pub fn preview(token: &str) -> String {
    token.chars().take(PREFIX.len() + PREVIEW_RANDOM_CHARS).collect()
}

/// CRC32 of `body` in base62.
fn checksum_text(body: &str) -> String {
    base62(crc32fast::hash(body.as_bytes()))
}

/// Six base62 digits, most significant first, left-padded with `0` (62^6 > 2^32).
fn base62(mut value: u32) -> String {
    let mut digits = [b'0'; CHECKSUM_LEN];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn from_seed(seed: u64) -> NewToken {
        let mut state = seed;
        generate(|buf| {
            for b in buf.iter_mut() {
                // xorshift: deterministic test randomness, not the extension's source.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
        })
    }

    #[test]
    fn checksum_matches_an_independent_computation() {
        // Computed with Python: zlib.crc32(b"azk_" + b"0" * 32) = 0x7dd8eecb -> base62 "2It5VD".
        let body = format!("{PREFIX}{}", "0".repeat(RANDOM_LEN));
        assert_eq!(crc32fast::hash(body.as_bytes()), 0x7dd8_eecb);
        assert_eq!(checksum_text(&body), "2It5VD");
        assert_eq!(parse(&format!("{body}2It5VD")), Ok(()));
        assert_eq!(parse(&format!("{body}2It5VE")), Err(Malformed::Checksum));
    }

    #[test]
    fn base62_is_padded_and_most_significant_first() {
        assert_eq!(base62(0), "000000");
        assert_eq!(base62(61 * 62 + 1), "0000z1");
        assert_eq!(base62(u32::MAX), "4gfFC3");
    }

    #[test]
    fn preview_is_prefix_and_eight_random_characters() {
        let t = from_seed(7);
        assert_eq!(t.preview.len(), 12);
        assert!(t.token.starts_with(&t.preview));
    }

    #[test]
    fn hash_matches_a_known_sha256() {
        // sha256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            hash("abc").iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_kinds() {
        let good = from_seed(1).token;
        assert_eq!(parse(&good), Ok(()));
        assert_eq!(parse(""), Err(Malformed::Length));
        assert_eq!(parse(&good[..TOKEN_LEN - 1]), Err(Malformed::Length));
        assert_eq!(parse(&format!("{good}x")), Err(Malformed::Length));
        assert_eq!(parse(&good.replacen("azk_", "azk-", 1)), Err(Malformed::Prefix));
        assert_eq!(parse(&good.replacen("azk_", "AZK_", 1)), Err(Malformed::Prefix));
        let mut bad_char = good.clone().into_bytes();
        bad_char[10] = b'-';
        assert_eq!(parse(std::str::from_utf8(&bad_char).unwrap()), Err(Malformed::Alphabet));
        // Non-ASCII of the right byte length: rejected by alphabet, never sliced mid-char.
        let accented = format!("{}é{}", &good[..10], &good[12..]);
        assert_eq!(accented.len(), TOKEN_LEN);
        assert_eq!(parse(&accented), Err(Malformed::Alphabet));
    }

    proptest! {
        #[test]
        fn generated_tokens_are_well_formed(seed in any::<u64>()) {
            let t = from_seed(seed);
            prop_assert_eq!(t.token.len(), TOKEN_LEN);
            prop_assert!(t.token.starts_with(PREFIX));
            prop_assert_eq!(parse(&t.token), Ok(()));
            prop_assert_eq!(t.hash, hash(&t.token));
        }

        #[test]
        fn every_single_character_change_is_detected(
            seed in any::<u64>(), position in 0..TOKEN_LEN, replacement in 0..62usize
        ) {
            let token = from_seed(seed).token;
            let mut changed = token.clone().into_bytes();
            prop_assume!(changed[position] != ALPHABET[replacement]);
            changed[position] = ALPHABET[replacement];
            let changed = String::from_utf8(changed).unwrap();
            prop_assert!(parse(&changed).is_err());
        }

        #[test]
        fn arbitrary_strings_never_panic(candidate in any::<String>()) {
            let _ = parse(&candidate);
        }

        #[test]
        fn mutated_tokens_never_panic_and_only_exact_tokens_pass(
            seed in any::<u64>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0..3u8), 1..4)
        ) {
            let token = from_seed(seed).token;
            let mut chars: Vec<char> = token.chars().collect();
            for (at, c, op) in edits {
                let i = at.index(chars.len() + 1);
                match op {
                    0 if i < chars.len() => chars[i] = c,
                    1 => chars.insert(i, c),
                    _ if i < chars.len() => { chars.remove(i); }
                    _ => chars.push(c),
                }
            }
            let mutated: String = chars.into_iter().collect();
            if parse(&mutated).is_ok() {
                // A changed token passes only if its CRC collides (odds about 2^-32 per case).
                prop_assert_eq!(mutated, token);
            }
        }
    }
}
