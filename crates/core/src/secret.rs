//! Server-made secrets: client secrets, reference tokens, ids. 256 bits from the
//! system CSPRNG, base64url without padding (URL-safe, so they paste unencoded into
//! curl and Basic headers). They are stored as SHA-256 digests and compared in
//! constant time; a slow password hash would add cost, not safety, for values that
//! cannot be guessed (ECOSYSTEM.md §Secrets).

use std::fmt;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 32 random bytes, base64url.
pub fn random_token() -> String {
    let mut buf = [0u8; 32];
    fill(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A random UUID (v4) string, used for ids and client ids.
pub fn random_id() -> String {
    let mut buf = [0u8; 16];
    fill(&mut buf);
    uuid::Builder::from_random_bytes(buf)
        .into_uuid()
        .to_string()
}

pub fn fill(buf: &mut [u8]) {
    // The system RNG only fails when the OS has no entropy source at all, in which
    // case nothing secure can be done; aborting beats issuing guessable secrets.
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(buf)
        .expect("the operating system's random number generator failed");
}

/// SHA-256 of a secret, hex encoded: what the store keeps.
pub fn digest(secret: &str) -> String {
    let d = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in d.iter() {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Does `presented` hash to `stored`? Constant time in the digest comparison.
pub fn verify(presented: &str, stored_digest: &str) -> bool {
    digest(presented)
        .as_bytes()
        .ct_eq(stored_digest.as_bytes())
        .into()
}

/// A freshly made secret: shown to the operator once, then only its digest exists.
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn generate() -> Self {
        Self(random_token())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn digest(&self) -> String {
        digest(&self.0)
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_url_safe_and_long() {
        let s = random_token();
        assert_eq!(s.len(), 43);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn verify_matches_only_the_same_secret() {
        let s = ClientSecret::generate();
        let d = s.digest();
        assert!(verify(s.expose(), &d));
        assert!(!verify("other", &d));
        assert_eq!(format!("{s:?}"), "ClientSecret(<redacted>)");
    }
}
