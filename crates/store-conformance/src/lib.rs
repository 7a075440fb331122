//! The Store contract every Gatehouse backend must pass, one test per scenario.
//!
//! A backend's test file expands [`conformance_tests!`] with an expression that
//! makes a fresh, empty database guard (with an `async fn open(&self)` giving
//! the store, which has an `async fn close(&self)`); every scenario in [`scenarios`] becomes its own `#[tokio::test]`
//! named after it, on a database of its own, so a failure names the scenario
//! and scenarios run in parallel. The scenarios exercise each port operation
//! with its edge cases (not found, conflicts, the change feed written in the
//! same transaction as the change, one winner of concurrent redemptions).
//!
//! ```ignore
//! gatehouse_store_conformance::conformance_tests!(
//!     gatehouse_store_sql::testing::SqliteTestFile::new()
//! );
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test suite: a failed step must stop it loudly

mod fixtures;
pub mod scenarios;

/// One `#[tokio::test]` per scenario; `$fresh` makes the database guard of one
/// test (kept alive until the test ends).
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr) => {
        $crate::conformance_tests!(@each $fresh;
            orgs_and_roles,
            users,
            user_profiles_read_back_and_change,
            a_grant_keeps_its_claims_request,
            apis,
            apps_and_the_change_feed,
            app_edits_and_the_audit_log,
            a_token_exchange_app_keeps_its_exchange_audiences,
            a_new_user_and_their_app_land_together,
            app_usage_adds_up_per_day,
            reference_tokens,
            keys,
            key_rotation,
            sessions,
            grants_and_revocation,
            deactivation_ends_a_users_tokens_for_good,
            auth_codes,
            refresh_tokens,
            consents,
            revoked_access_tokens,
            purge_keeps_live_records,
            concurrent_redemption,
            throttle_buckets,
            grant_context_joins_the_user_and_their_role,
            grant_context_when_the_user_or_their_role_is_gone,
            refresh_context_reads_token_grant_and_person_at_once,
            rotation_issuing_stores_the_reference_token_with_the_successor,
            concurrent_rotations_issuing_have_one_winner,
            claim_code_issuing_claims_once_and_stores_both_records_with_it,
            code_context_reads_the_code_with_its_grant_and_claims_nothing,
            pushed_requests_are_claimed_once_by_their_client_while_live,
            concurrent_claims_of_a_pushed_request_have_one_winner,
            device_authorizations_are_decided_once_and_redeemed_once,
            device_polls_record_the_interval_and_slow_down,
            concurrent_redemptions_of_a_device_code_have_one_winner,
            an_app_has_at_most_two_active_secrets_and_never_none,
            retiring_one_of_two_keeps_the_other_without_its_grace_period,
            secret_use_is_recorded_and_regeneration_replaces_every_secret,
            concurrent_adds_leave_at_most_two_active_secrets,
            a_second_factor_counts_once_confirmed_and_each_code_works_once,
            passkeys_are_bounded_owned_and_their_counter_only_goes_up,
            client_assertion_jtis_are_single_use_until_they_expire,
            a_person_lists_and_revokes_their_own_apps_and_ends_their_sessions,
            sessions_keep_their_device_end_one_by_one_and_expire_once,
            roles_that_require_a_second_factor_read_back,
            a_mail_link_is_used_once_replaced_by_the_next_and_expires,
            an_upstream_provider_per_org_and_its_sign_ins_are_claimed_once,
            upstream_providers_are_found_by_exact_domain,
        );
    };
    (@each $fresh:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let db = $fresh;
                let store = db.open().await;
                $crate::scenarios::$scenario(&store).await;
                // Before the guard drops the database: nothing may still hold a lock.
                store.close().await;
            }
        )*
    };
}
