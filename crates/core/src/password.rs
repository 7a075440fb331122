//! User passwords: Argon2id (OWASP minimum parameters), PHC strings so the
//! parameters can be raised later and old hashes still verify.
//!
//! A check works through 19 MiB of Argon2 memory. Allocated per check, that
//! is an mmap, ~4,900 page faults and a munmap each time, and the process's
//! resident memory jumps up and down by 19 MiB per sign-in in flight. The
//! working memory is kept instead ([`SPARE`]) for the next check: resident
//! memory stays flat at what the busiest moment needed (the server bounds
//! checks in flight to its cores), and a check costs the hash alone.

use std::sync::Mutex;

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;

/// Working memory of finished checks, for the next ones.
static SPARE: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Working memories kept at most: beyond the server's bound on checks in
/// flight (its cores) only an unbounded caller (the CLI, an admin creating
/// people) would make more, and those are handed back.
const SPARE_MAX: usize = 8;

/// Memory of a stored hash's parameters beyond this (1 GiB) is not allocated:
/// such a hash was not made here, and verifying it would be a memory bomb.
const MAX_BLOCKS: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_LEN} characters")]
    TooShort,
    #[error("password must be at most {MAX_LEN} bytes")]
    TooLong,
    #[error("password hashing failed")]
    Hash,
}

pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_LEN {
        return Err(PasswordError::TooLong);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

/// Whether `password` is the one `phc` was made of (constant-time compare).
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_LEN {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return false;
    }
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    let hashed = with_memory(blocks, |memory| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, memory)
    });
    hashed.is_ok() && argon2::password_hash::phc::Output::new(out).is_ok_and(|o| o == *expected)
}

/// Runs `f` on `blocks` blocks of working memory, a spare one when there is.
fn with_memory<R>(blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    let mut memory = SPARE
        .lock()
        .ok()
        .and_then(|mut spare| spare.pop())
        .unwrap_or_default();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let r = f(&mut memory[..blocks]);
    if let Ok(mut spare) = SPARE.lock()
        && spare.len() < SPARE_MAX
    {
        spare.push(memory);
    }
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_then_verify() {
        let h = super::hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse", &h));
        assert!(!super::verify("wrong horse", &h));
    }

    #[test]
    fn hashes_of_other_parameters_verify_and_bad_ones_do_not() {
        // Made elsewhere (argon2's own verifier) with other parameters: the
        // kept working memory is resized, never misused.
        let small = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(1024, 1, 1, Some(16)).unwrap(),
        );
        use argon2::password_hash::PasswordHasher;
        let h = small.hash_password(b"correct horse").unwrap().to_string();
        let big = super::hash("correct horse").unwrap();
        for _ in 0..3 {
            assert!(super::verify("correct horse", &h));
            assert!(super::verify("correct horse", &big));
            assert!(!super::verify("correct horsf", &h));
            assert!(!super::verify("correct horsf", &big));
        }
        assert!(!super::verify(
            "correct horse",
            "$argon2id$v=19$m=19456,t=2,p=1$junk"
        ));
        assert!(!super::verify("correct horse", "not a hash"));
        // A stored hash asking for 4 GiB is refused, not allocated.
        let bomb = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$5m0hXfXOYQv4sT2vb1gqS9hWz0V7v7F0a1pQJ5s3aJ0";
        assert!(!super::verify("correct horse", bomb));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(super::hash("short").is_err());
    }
}
