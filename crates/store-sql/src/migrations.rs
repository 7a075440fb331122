//! The schema migrations, embedded in the binary, one list per dialect.
//!
//! sqlx's `migrate!` macro embeds them too, but it is a procedural macro whose
//! crate builds sqlx again for the compiler's host, with its PostgreSQL driver,
//! rustls, aws-lc and a bundled SQLite: about 100 s of CPU on a cold build, a
//! tenth of the README's first `cargo run --release`. The list below is checked
//! against the directory by a test, so a new file cannot be forgotten; the
//! version, description and checksum are derived exactly as sqlx's resolver
//! derives them, so databases migrated by the macro see the same history.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

/// `(file name, contents)` of every migration in `migrations/<dialect>/`.
type Files = &'static [(&'static str, &'static str)];

/// Both dialects have the same migrations (versions and names); only the SQL
/// differs. The tests below tell if a directory ever stops matching the list.
macro_rules! embed {
    ($($file:literal),+ $(,)?) => {
        pub(crate) const SQLITE: Files =
            &[$(($file, include_str!(concat!("../migrations/sqlite/", $file)))),+];
        pub(crate) const POSTGRES: Files =
            &[$(($file, include_str!(concat!("../migrations/postgres/", $file)))),+];
    };
}

embed!(
    "20261123000001_init.sql",
    "20261123000002_grants.sql",
    "20261123000003_throttle.sql",
    "20261123000004_audit.sql",
    "20261130000005_user_tokens_valid_after.sql",
    "20261130000006_changes_org.sql",
    "20261130000007_user_email_per_org.sql",
    "20261130000008_key_lifecycle.sql",
    "20261130000009_app_require_pkce.sql",
    "20261130000010_code_finished.sql",
    "20261130000011_user_profile.sql",
    "20261130000012_app_usage.sql",
    "20261130000013_pushed_requests.sql",
    "20261130000014_app_secrets.sql",
    "20261130000015_app_exchange_audiences.sql",
    "20261130000016_device_authorizations.sql",
    "20261130000017_client_keys.sql",
    "20261130000018_dpop.sql",
    "20261130000019_second_factor.sql",
    "20261130000020_backchannel_logout.sql",
    "20261130000021_passkeys.sql",
    "20261130000022_mail_links.sql",
    "20261130000023_upstream_providers.sql",
    "20261130000024_role_mfa.sql",
    "20261201000026_session_devices.sql",
    "20261201000027_upstream_trust_mfa.sql",
);

/// The migrator for one dialect's files. The names are fixed at compile time
/// and checked by the tests below, so a malformed one is a build defect.
pub(crate) fn migrator(files: Files) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(name, sql)| migration(name, sql))
            .collect(),
    )
}

/// As sqlx's resolver reads `<version>_<description>.sql`.
fn migration(name: &str, sql: &'static str) -> Migration {
    let (version, rest) = name.split_once('_').unwrap_or((name, ""));
    let kind = MigrationType::from_filename(rest);
    Migration::new(
        version.parse().unwrap_or_default(),
        Cow::Owned(rest.trim_end_matches(kind.suffix()).replace('_', " ")),
        kind,
        AssertSqlSafe(sql).into_sql_str(),
        sql.starts_with("-- no-transaction"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_disk(dialect: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .expect("the migrations directory")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        for (dialect, files) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let embedded: Vec<String> = files.iter().map(|(n, _)| (*n).to_owned()).collect();
            assert_eq!(
                embedded,
                on_disk(dialect),
                "{dialect}: list every file in migrations/"
            );
        }
    }

    #[test]
    fn versions_descriptions_and_checksums_are_sqlx_resolvers() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for (dialect, files) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let ours = migrator(files);
            let theirs = sqlx::migrate::resolve_blocking(&dir.join(dialect)).expect("resolves");
            assert_eq!(ours.migrations.len(), theirs.len());
            for (a, (b, _)) in ours.migrations.iter().zip(theirs.iter()) {
                assert_eq!(a.version, b.version);
                assert_eq!(a.description, b.description);
                assert_eq!(a.checksum, b.checksum, "{dialect} {}", a.version);
                assert_eq!(a.no_tx, b.no_tx);
                assert!(a.migration_type == b.migration_type);
            }
        }
    }
}
