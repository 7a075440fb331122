//! Scope strings (RFC 6749 §3.3): space-delimited, case-sensitive tokens of
//! `%x21 / %x23-5B / %x5D-7E`. Order of first appearance is kept so responses
//! echo scopes the way clients asked for them.

use std::fmt;

use crate::error::OAuthError;

pub const MAX_SCOPES: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<String>);

impl ScopeSet {
    pub fn parse(raw: &str) -> Result<Self, OAuthError> {
        let mut out: Vec<String> = Vec::new();
        for tok in raw.split(' ').filter(|t| !t.is_empty()) {
            if !tok.bytes().all(valid_scope_byte) || tok.len() > 128 {
                return Err(OAuthError::invalid_scope(format!(
                    "`{}` is not a valid scope token (RFC 6749 §3.3)",
                    tok.chars()
                        .filter(|c| !c.is_control())
                        .take(40)
                        .collect::<String>()
                )));
            }
            if !out.iter().any(|s| s == tok) {
                out.push(tok.to_owned());
            }
            if out.len() > MAX_SCOPES {
                return Err(OAuthError::invalid_scope(format!(
                    "too many scopes (at most {MAX_SCOPES})"
                )));
            }
        }
        Ok(Self(out))
    }

    pub fn from_vec(v: Vec<String>) -> Self {
        let mut s = Self::default();
        for x in v {
            if !s.contains(&x) {
                s.0.push(x);
            }
        }
        s
    }

    pub fn contains(&self, s: &str) -> bool {
        self.0.iter().any(|x| x == s)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
    /// Scopes of `self` that `other` also holds, in `self`'s order.
    pub fn intersect(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(
            self.0
                .iter()
                .filter(|s| other.contains(s))
                .cloned()
                .collect(),
        )
    }
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }
    /// `self` with `scope` added at the end when missing.
    pub fn with(mut self, scope: &str) -> ScopeSet {
        if !self.contains(scope) {
            self.0.push(scope.to_owned());
        }
        self
    }
    /// Scopes of `self`, then those of `other` it lacks.
    pub fn union(mut self, other: &ScopeSet) -> ScopeSet {
        for s in other.iter() {
            self = self.with(s);
        }
        self
    }
    /// The scopes for which `keep` holds, in order.
    pub fn filter(&self, mut keep: impl FnMut(&str) -> bool) -> ScopeSet {
        ScopeSet(self.0.iter().filter(|s| keep(s)).cloned().collect())
    }
    /// The stored form (model records keep scopes as a list).
    pub fn to_vec(&self) -> Vec<String> {
        self.0.clone()
    }
}

impl From<&[String]> for ScopeSet {
    fn from(stored: &[String]) -> Self {
        Self::from_vec(stored.to_vec())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

fn valid_scope_byte(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_dedupes_in_order() {
        let s = ScopeSet::parse("b a  b c").unwrap();
        assert_eq!(s.to_string(), "b a c");
    }

    #[test]
    fn rejects_quotes_and_backslashes() {
        assert!(ScopeSet::parse("a\"b").is_err());
        assert!(ScopeSet::parse("a\\b").is_err());
    }

    #[test]
    fn intersect_keeps_left_order() {
        let a = ScopeSet::parse("x y z").unwrap();
        let b = ScopeSet::parse("z x").unwrap();
        assert_eq!(a.intersect(&b).to_string(), "x z");
    }

    #[test]
    fn with_and_union_append_only_what_is_missing() {
        let a = ScopeSet::parse("x y").unwrap();
        assert_eq!(a.clone().with("y").with("z").to_string(), "x y z");
        let b = ScopeSet::parse("z x w").unwrap();
        assert_eq!(a.union(&b).to_string(), "x y z w");
    }
}
