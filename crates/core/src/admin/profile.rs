//! A person's profile claims (OpenID Connect Core §5.1): `name`, `given_name`,
//! `family_name`, `locale`, `zoneinfo`, `email_verified`, checked here for every
//! admin surface, and `updated_at`, which moves whenever one of them changes.
//! A blank value clears a field (no value: the claim is not sent).

use super::{AdminError, invalid, not_found, user};
use crate::clock::UnixTime;
use crate::model::{Actor, AuditEvent, Profile, User};
use crate::ports::Store;

/// The longest name, given name or family name, in characters.
pub const MAX_NAME: usize = 100;
/// The longest `locale` (BCP 47 tags in practice stay far below).
pub const MAX_LOCALE: usize = 35;
/// The longest `zoneinfo` (the longest IANA name is 32 characters).
pub const MAX_ZONEINFO: usize = 64;

/// What to change; `None` leaves a field alone, `Some(None)` or a blank value
/// clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileEdit {
    pub name: Option<Option<String>>,
    pub given_name: Option<Option<String>>,
    pub family_name: Option<Option<String>>,
    pub locale: Option<Option<String>>,
    pub zoneinfo: Option<Option<String>>,
    pub email_verified: Option<bool>,
}

impl ProfileEdit {
    /// Whether the edit names any field.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `user`'s name and profile with this edit applied and checked;
    /// `updated_at` moves to `now` only when something changed.
    pub fn apply(
        &self,
        name: Option<String>,
        profile: &Profile,
        now: UnixTime,
    ) -> Result<(Option<String>, Profile), AdminError> {
        let pick = |edit: &Option<Option<String>>,
                    old: &Option<String>,
                    check: fn(&str) -> Result<String, AdminError>|
         -> Result<Option<String>, AdminError> {
            match edit {
                None => Ok(old.clone()),
                Some(v) => checked(v.as_deref(), check),
            }
        };
        let new_name = pick(&self.name, &name, |v| text("name", v))?;
        let mut p = Profile {
            given_name: pick(&self.given_name, &profile.given_name, |v| {
                text("given_name", v)
            })?,
            family_name: pick(&self.family_name, &profile.family_name, |v| {
                text("family_name", v)
            })?,
            locale: pick(&self.locale, &profile.locale, locale)?,
            zoneinfo: pick(&self.zoneinfo, &profile.zoneinfo, zoneinfo)?,
            email_verified: self.email_verified.unwrap_or(profile.email_verified),
            updated_at: profile.updated_at,
        };
        if new_name != name || p != *profile {
            p.updated_at = now;
        }
        Ok((new_name, p))
    }
}

/// A blank value is no value; anything else must pass `check`.
fn checked(
    v: Option<&str>,
    check: fn(&str) -> Result<String, AdminError>,
) -> Result<Option<String>, AdminError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => check(v).map(Some),
    }
}

fn text(field: &'static str, v: &str) -> Result<String, AdminError> {
    super::bounded_text(field, v, MAX_NAME)
}

/// A BCP 47 language tag by shape (RFC 5646 §2.1): a 2–8 letter language, then
/// subtags of 1–8 letters or digits, separated by `-` (`en`, `fr-CA`, `zh-Hant-TW`).
pub fn locale(v: &str) -> Result<String, AdminError> {
    let mut parts = v.split('-');
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=8).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
    let rest_ok =
        parts.all(|s| (1..=8).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric()));
    if v.len() > MAX_LOCALE || !lang_ok || !rest_ok {
        return Err(invalid(
            "locale",
            "must be a BCP 47 language tag such as `en`, `fr-CA` or `pt-BR`",
        ));
    }
    Ok(v.to_owned())
}

/// An IANA time zone name by shape: `UTC` or `GMT`, or `Area/Location[/Sub]`
/// whose parts start with a letter and hold letters, digits, `_`, `-` and `+`
/// (`Europe/Paris`, `America/Argentina/Buenos_Aires`, `Etc/GMT+5`). The old
/// one-word links (`Japan`) are refused: a typo like `Paris` would pass as one.
pub fn zoneinfo(v: &str) -> Result<String, AdminError> {
    if matches!(v, "UTC" | "GMT") {
        return Ok(v.to_owned());
    }
    let parts: Vec<&str> = v.split('/').collect();
    let part_ok = |p: &&str| {
        p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
    };
    if v.len() > MAX_ZONEINFO || !(2..=3).contains(&parts.len()) || !parts.iter().all(part_ok) {
        return Err(invalid(
            "zoneinfo",
            "must be an IANA time zone name such as `Europe/Paris` or `UTC`",
        ));
    }
    Ok(v.to_owned())
}

/// Changes a user's name and profile claims; `updated_at` moves when anything
/// changed (an edit that changes nothing writes nothing).
pub async fn update_user_profile(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    user_id: &str,
    edit: &ProfileEdit,
) -> Result<User, AdminError> {
    let user = user(store, actor, user_id).await?;
    let (name, profile) = edit.apply(user.name.clone(), &user.profile, now)?;
    if name == user.name && profile == user.profile {
        return Ok(user);
    }
    let audit = AuditEvent::new(
        actor,
        &user.org_id,
        now,
        "user.update_profile",
        &user.id,
        format!(
            "changed {} of `{}`",
            changed_fields(&user, name.as_ref(), &profile).join(", "),
            user.email
        ),
    );
    store
        .set_user_profile(&user.id, name.as_deref(), &profile, &audit)
        .await
        .map_err(not_found(format!("user `{user_id}`")))?;
    Ok(User {
        name,
        profile,
        ..user
    })
}

/// The names of the fields that differ (for the audit log; never the values).
fn changed_fields(user: &User, name: Option<&String>, p: &Profile) -> Vec<&'static str> {
    let old = &user.profile;
    [
        ("name", user.name.as_ref() != name),
        ("given_name", old.given_name != p.given_name),
        ("family_name", old.family_name != p.family_name),
        ("locale", old.locale != p.locale),
        ("zoneinfo", old.zoneinfo != p.zoneinfo),
        ("email_verified", old.email_verified != p.email_verified),
    ]
    .into_iter()
    .filter_map(|(field, differs)| differs.then_some(field))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_are_bcp47_shaped() {
        for good in ["en", "fr-CA", "pt-BR", "zh-Hant-TW", "de-CH-1996"] {
            assert_eq!(locale(good).unwrap(), good);
        }
        for bad in [
            "e",
            "en_US",
            "en-",
            "-en",
            "fr CA",
            "fr-CA\n",
            "123",
            "en-toolongsubtag",
        ] {
            assert!(locale(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn zoneinfo_is_iana_shaped() {
        for good in [
            "UTC",
            "Europe/Paris",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert_eq!(zoneinfo(good).unwrap(), good);
        }
        for bad in [
            "",
            "Europe/",
            "/Paris",
            "Europe/Pa ris",
            "../etc",
            "1/2",
            "Europe\u{7}/Paris",
            "Paris",
            "Japan",
        ] {
            assert!(zoneinfo(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn updated_at_moves_only_when_something_changes() {
        let p = Profile {
            locale: Some("fr".into()),
            updated_at: 10,
            ..Profile::default()
        };
        let same = ProfileEdit {
            locale: Some(Some("fr".into())),
            ..ProfileEdit::default()
        };
        let (_, kept) = same.apply(None, &p, 20).unwrap();
        assert_eq!(kept.updated_at, 10);
        let rename = ProfileEdit {
            name: Some(Some(" Ana ".into())),
            locale: Some(Some(String::new())),
            ..ProfileEdit::default()
        };
        let (name, changed) = rename.apply(None, &p, 20).unwrap();
        assert_eq!(
            (name.as_deref(), changed.locale, changed.updated_at),
            (Some("Ana"), None, 20)
        );
        let bad = ProfileEdit {
            given_name: Some(Some("a\u{0}b".into())),
            ..ProfileEdit::default()
        };
        assert!(bad.apply(None, &p, 20).is_err());
    }
}
