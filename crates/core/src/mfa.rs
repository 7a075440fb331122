//! Second factors: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, what
//! every authenticator app expects) and recovery codes, and how a sign-in's
//! methods become the ID token's `amr` (RFC 8176) and `acr`. Pure functions: the
//! server seals the secret, the store remembers the last step accepted so that
//! no code works twice (RFC 6238 §5.2).
//!
//! Recovery codes are 80 random bits made by the server, stored as SHA-256 of
//! the user id and the code: like client secrets, a value that cannot be guessed
//! needs no slow hash (an offline search of 2^80 is out of reach), and the user
//! id keeps one digest from matching another person's code.

use totp_rs::{Algorithm, Builder, Totp};

use crate::clock::UnixTime;
use crate::secret;

/// RFC 6238 §5.2's recommendation: 30-second steps.
pub const STEP: u64 = 30;
/// Codes of the step before and after the current one are accepted (clock drift).
pub const SKEW: u16 = 1;
/// Bytes of a TOTP secret (RFC 4226 §4 recommends 160 bits).
pub const SECRET_LEN: usize = 20;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// The longest code accepted at the second step (a recovery code with dashes
/// and spaces; anything longer is refused before it is looked at).
pub const MAX_CODE: usize = 32;

/// `amr` of a password sign-in (RFC 8176 §2).
pub const AMR_PASSWORD: &str = crate::claims::AMR_PASSWORD;
/// `amr` of a one-time password.
pub const AMR_OTP: &str = "otp";
/// `amr` of a sign-in with more than one factor.
pub const AMR_MFA: &str = "mfa";

/// The methods of a password sign-in.
pub fn amr_password() -> Vec<String> {
    vec![AMR_PASSWORD.to_owned()]
}

/// The methods of a password followed by a TOTP or recovery code.
pub fn amr_password_otp() -> Vec<String> {
    vec![
        AMR_PASSWORD.to_owned(),
        AMR_OTP.to_owned(),
        AMR_MFA.to_owned(),
    ]
}

/// Whether `amr` is a multi-factor sign-in.
pub fn is_mfa(amr: &[String]) -> bool {
    amr.iter().any(|m| m == AMR_MFA)
}

/// The `acr` of a sign-in by `amr`: see [`crate::claims::ACR_MFA`].
pub fn acr(amr: &[String]) -> &'static str {
    if is_mfa(amr) {
        crate::claims::ACR_MFA
    } else {
        crate::claims::ACR_PASSWORD
    }
}

/// A new TOTP secret (160 random bits).
pub fn new_secret() -> Vec<u8> {
    let mut buf = vec![0u8; SECRET_LEN];
    secret::fill(&mut buf);
    buf
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(SKEW)
        .with_step_duration(STEP)
        .with_secret(secret.to_vec())
        .with_issuer(Some(label(issuer)))
        .with_account_name(label(account))
        .build()
        .ok()
}

/// otpauth labels may not hold `:` (Key Uri Format).
fn label(s: &str) -> String {
    s.replace(':', " ")
}

/// The secret as people type it (RFC 4648 base32, no padding).
pub fn secret_base32(secret: &[u8]) -> String {
    totp(secret, "", "")
        .map(|t| t.secret().to_base32())
        .unwrap_or_default()
}

/// The `otpauth://totp/…` URI an authenticator app reads from the QR code.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> Option<String> {
    totp(secret, issuer, account)?.to_url().ok()
}

/// The time step of `now`.
pub fn step_of(now: UnixTime) -> i64 {
    now.max(0) / STEP as i64
}

/// The step whose code `code` is (within ±[`SKEW`] steps of `now`), if any. The
/// caller must accept it only when it is later than the last step accepted.
pub fn check(secret: &[u8], code: &str, now: UnixTime) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "", "")?;
    let step = t.check(code, u64::try_from(now).ok()?)?;
    i64::try_from(step).ok()
}

/// Whether `code` looks like a TOTP code (six digits) rather than a recovery code.
pub fn is_totp_shaped(code: &str) -> bool {
    let c = code.trim();
    c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())
}

/// Ten new recovery codes, `xxxx-xxxx-xxxx-xxxx` of base32 (80 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut buf = [0u8; 10];
            secret::fill(&mut buf);
            let s = secret_base32(&pad_for_base32(&buf)).to_lowercase();
            let s: String = s.chars().take(16).collect();
            format!("{}-{}-{}-{}", &s[0..4], &s[4..8], &s[8..12], &s[12..16])
        })
        .collect()
}

/// TOTP secrets must be at least 128 bits; a recovery code is encoded through
/// the same base32 with its 10 bytes padded (only the first 16 characters,
/// exactly those 80 bits, are kept).
fn pad_for_base32(buf: &[u8; 10]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..10].copy_from_slice(buf);
    out
}

/// A recovery code as compared: lower case, without dashes or spaces.
pub fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// What the store keeps of `user_id`'s recovery code.
pub fn recovery_digest(user_id: &str, code: &str) -> String {
    secret::digest(&format!(
        "gatehouse-recovery:{user_id}:{}",
        normalize_recovery_code(code)
    ))
}

/// The additional data the TOTP secret is sealed with: bound to its person.
pub fn seal_aad(user_id: &str) -> String {
    format!("gatehouse-totp:{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 (8 digits there; the last 6 here).
    #[test]
    fn rfc6238_test_vectors() {
        let key = b"12345678901234567890";
        for (t, code) in [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(check(key, code, t), Some(t / 30), "t={t}");
        }
    }

    #[test]
    fn drift_is_one_step_either_way() {
        let key = b"12345678901234567890";
        // 287082 is the code of step 1 (t = 30..59).
        assert_eq!(check(key, "287082", 59 + 30), Some(1));
        assert_eq!(check(key, "287082", 30 - 30), Some(1));
        assert_eq!(check(key, "287082", 59 + 61), None);
        assert_eq!(check(key, "28708", 59), None);
        assert_eq!(check(key, "2870822", 59), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalized() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let c = &codes[0];
        assert_eq!(c.len(), 19);
        assert_eq!(
            recovery_digest("u", c),
            recovery_digest("u", &c.to_uppercase().replace('-', " "))
        );
        assert_ne!(recovery_digest("u", c), recovery_digest("v", c));
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), RECOVERY_CODES);
    }

    #[test]
    fn acr_follows_amr() {
        assert_eq!(acr(&amr_password()), crate::claims::ACR_PASSWORD);
        assert_eq!(acr(&amr_password_otp()), crate::claims::ACR_MFA);
    }
}
