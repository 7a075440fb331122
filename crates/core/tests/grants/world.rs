//! The world every grant test starts from: a fresh SQLite `:memory:` store seeded
//! with two organizations, their people, APIs and apps; a fixed clock at [`T`];
//! one key ring (made once per test binary: RSA key generation is slow). Helpers
//! read the store's state back (rows the ports do not list are counted in SQL)
//! and verify what was minted with the key ring.

use std::sync::{Arc, OnceLock};

use gatehouse_core::authorize;
use gatehouse_core::clock::{Clock, FixedClock, UnixTime};
use gatehouse_core::context::{ClientContext, ContextSource};
use gatehouse_core::form::Form;
use gatehouse_core::grant::authorization_code::issue_code;
use gatehouse_core::introspect;
use gatehouse_core::jose::{self, KeyEncryptionKey, SigningKey};
use gatehouse_core::keyring::KeyRing;
use gatehouse_core::model::*;
use gatehouse_core::ports::*;
use gatehouse_core::request::*;
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::token::{AccessClaims, Signer};
use gatehouse_core::token_endpoint::{self, Issuer, Policy, TokenError, TokenSet};
use gatehouse_store_sql::{SqliteOptions, SqliteStore};
use serde_json::Value;

/// The fixed "now" every test starts at.
pub const T: UnixTime = 1_800_000_000;
pub const ISSUER: &str = "https://id.acme.test";
pub const CODE_TTL: i64 = 60;
pub const REFRESH_TTL: i64 = 3_600;
pub const FAMILY_MAX_AGE: i64 = 10_000;
pub const REDIRECT: &str = "https://app.test/cb";

/// Organizations, people, APIs and apps of the seed.
pub const ACME: &str = "o-acme";
pub const OTHER_ORG: &str = "o-other";
/// A developer of Acme: may authorize apps.
pub const ALICE: &str = "u-alice";
/// Acme's on-behalf user of the machine app.
pub const ROBOT: &str = "u-robot";
/// A developer of the other organization.
pub const BOB: &str = "u-bob";
/// A JWT (ES256) API and a reference-token API, both Acme's.
pub const GW: &str = "https://gw.acme.test";
pub const REPORTS: &str = "https://reports.acme.test";
/// Authorization code + refresh apps of Acme; `web2` exists to be "another client".
pub const WEB: &str = "web";
pub const WEB2: &str = "web2";
/// Acme's client credentials app, acting for [`ROBOT`].
pub const NIGHTLY: &str = "nightly";

pub struct World {
    pub store: SqliteStore,
    pub clock: FixedClock,
    pub ring: Arc<KeyRing>,
    pub policy: Policy,
}

fn ring() -> Arc<KeyRing> {
    static RING: OnceLock<Arc<KeyRing>> = OnceLock::new();
    RING.get_or_init(|| {
        let kek = KeyEncryptionKey::from_text(&KeyEncryptionKey::generate_text()).unwrap();
        let keys = SigningAlg::ALL
            .into_iter()
            .map(|alg| {
                SigningKey::generate(alg, KeyState::Active, &kek, T)
                    .unwrap()
                    .0
            })
            .collect();
        Arc::new(KeyRing::new(keys))
    })
    .clone()
}

pub fn audit() -> AuditEvent {
    AuditEvent::new(
        &Actor::operator(),
        ACME,
        T,
        "test.seed",
        "-",
        "seeded by the test",
    )
}

fn user(id: &str, org_id: &str, role: &str) -> User {
    User {
        id: id.into(),
        org_id: org_id.into(),
        email: format!("{id}@example.test"),
        name: Some(id.into()),
        password_hash: None,
        role: role.into(),
        groups: vec!["ops".into()],
        status: UserStatus::Active,
        created_at: T - 1000,
        tokens_valid_after: 0,
        profile: Default::default(),
    }
}

fn api(id: &str, aud: &str, scopes: &[&str], format: TokenFormat, alg: SigningAlg) -> Api {
    Api {
        id: id.into(),
        org_id: ACME.into(),
        name: id.into(),
        audience: aud.into(),
        scopes: strings(scopes),
        token_format: format,
        signing_alg: alg,
        access_token_ttl: 600,
        client_id: format!("{id}-client"),
        secret_hash: String::new(),
        created_at: T - 1000,
    }
}

fn app(client_id: &str, grants: &[GrantType], on_behalf_of: Option<&str>) -> App {
    App {
        id: format!("a-{client_id}"),
        client_id: client_id.into(),
        org_id: ACME.into(),
        name: client_id.into(),
        description: None,
        grant_types: grants.to_vec(),
        on_behalf_of: on_behalf_of.map(str::to_owned),
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec![],
        scopes: strings(&["products:read", "products:write", "reports:read"]),
        default_scopes: strings(&["products:read"]),
        default_audience: None,
        secret_hash: String::new(),
        generation: 1,
        status: AppStatus::Active,
        require_pkce: false,
        require_par: false,
        require_dpop: false,
        exchange_audiences: vec![],
        created_at: T - 1000,
        last_used_at: None,
        client_keys: None,
    }
}

pub fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| (*s).to_owned()).collect()
}

pub fn scope(s: &str) -> ScopeSet {
    ScopeSet::parse(s).unwrap()
}

impl World {
    pub async fn new() -> Self {
        let opts = SqliteOptions::default();
        let store = SqliteStore::open("sqlite::memory:", opts).await.unwrap();
        for (id, slug) in [(ACME, "acme"), (OTHER_ORG, "other")] {
            let org = Org {
                id: id.into(),
                slug: slug.into(),
                name: slug.into(),
                created_at: T - 1000,
            };
            store
                .insert_org(&org, &Role::defaults(id), &audit())
                .await
                .unwrap();
        }
        for u in [
            user(ALICE, ACME, "developer"),
            user(ROBOT, ACME, "developer"),
            user(BOB, OTHER_ORG, "developer"),
        ] {
            store.insert_user(&u, &audit()).await.unwrap();
        }
        let read = ["products:read", "products:write"];
        store
            .insert_api(
                &api("gw", GW, &read, TokenFormat::Jwt, SigningAlg::ES256),
                &audit(),
            )
            .await
            .unwrap();
        let reports = api(
            "reports",
            REPORTS,
            &["reports:read"],
            TokenFormat::Reference,
            SigningAlg::EdDSA,
        );
        store.insert_api(&reports, &audit()).await.unwrap();
        let user_grants = [GrantType::AuthorizationCode, GrantType::RefreshToken];
        for a in [
            app(WEB, &user_grants, None),
            app(WEB2, &user_grants, None),
            app(NIGHTLY, &[GrantType::ClientCredentials], Some(ROBOT)),
        ] {
            store.insert_app(&a, &audit()).await.unwrap();
        }
        Self {
            store,
            clock: FixedClock::at(T),
            ring: ring(),
            policy: Policy {
                issuer: ISSUER.into(),
                code_ttl: CODE_TTL,
                refresh_ttl: REFRESH_TTL,
                refresh_family_max_age: FAMILY_MAX_AGE,
            },
        }
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Moves the clock to `T + secs`.
    pub fn at(&self, secs: i64) {
        self.clock.advance(T + secs - self.now());
    }

    /// The client's context as the server would load it, from the store now.
    pub async fn ctx(&self, client_id: &str) -> ClientContext {
        ClientContext::load(&self.store, client_id).await.unwrap()
    }

    /// One token request of `client_id`, at the clock's time.
    pub async fn token(
        &self,
        client_id: &str,
        request: TokenRequest,
    ) -> Result<TokenSet, TokenError> {
        let ctx = self.ctx(client_id).await;
        let issuer = Issuer {
            store: &self.store,
            signer: self.ring.as_ref(),
            policy: &self.policy,
            now: self.now(),
            secret_id: None,
            dpop_jkt: None,
        };
        let tokens = gatehouse_core::introspect::LiveTokens {
            signer: self.ring.as_ref(),
            store: &self.store,
            contexts: &FromStore(&self.store),
        };
        token_endpoint::handle(&request, &ctx, &issuer, &tokens).await
    }

    /// A code issued the way `/authorize` issues it (validated request, signed-in
    /// `user_id`), for `client_id` with the extra authorize `params`.
    pub async fn code(&self, client_id: &str, user_id: &str, params: &str) -> String {
        let ctx = self.ctx(client_id).await;
        let body = format!("response_type=code&client_id={client_id}&{params}");
        let form = Form::parse(body.as_bytes()).unwrap();
        let valid = authorize::validate(&form, Some(&ctx)).unwrap();
        let session = Session {
            id_digest: format!("session-of-{user_id}"),
            sid: format!("sid-{user_id}"),
            user_id: user_id.into(),
            auth_time: T - 5,
            amr: gatehouse_core::mfa::amr_password(),
            expires_at: T + 86_400,
            user_agent: None,
            address: None,
            last_seen_at: None,
        };
        issue_code(
            &self.store,
            &valid,
            ctx.app.generation,
            &session,
            &self.policy,
            self.now(),
        )
        .await
        .unwrap()
    }

    pub async fn deactivate(&self, user_id: &str) {
        let ev = audit();
        let status = UserStatus::Deactivated;
        let now = self.now();
        self.store
            .set_user_status(user_id, status, now, &ev)
            .await
            .unwrap();
    }

    pub async fn set_role(&self, user_id: &str, role: &str) {
        let now = self.now();
        self.store
            .set_user_access(user_id, role, &[], now, &audit())
            .await
            .unwrap();
    }

    /// Removes a user outright (no port deletes users: a row gone is the case).
    pub async fn remove(&self, user_id: &str) {
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(self.store.pool())
            .await
            .unwrap();
    }

    pub async fn rotate_secret(&self, client_id: &str) -> i64 {
        let now = self.now();
        self.store
            .rotate_app_secret(client_id, "new-hash", now, &audit())
            .await
            .unwrap()
    }

    /// Rows of `table` (a test-chosen name, never input) with this grant id.
    pub async fn rows_of_grant(&self, table: &str, grant_id: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table} WHERE grant_id = $1");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(grant_id)
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    pub async fn reference_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM reference_tokens")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    /// The only grant in the store (each code test makes one).
    pub async fn only_grant(&self) -> Grant {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM grants")
            .fetch_all(self.store.pool())
            .await
            .unwrap();
        assert_eq!(ids.len(), 1, "{ids:?}");
        self.store.grant(&ids[0]).await.unwrap()
    }

    /// Security events of Acme's audit log with `action`, as `(target, at)`.
    pub async fn security_events(&self, action: &str) -> Vec<(String, UnixTime)> {
        let events = self.store.audit_events(ACME, None, 100).await.unwrap();
        events
            .into_iter()
            .filter(|e| e.action == action)
            .map(|e| (e.target, e.at))
            .collect()
    }

    /// Grant ids the change feed announced as revoked.
    pub async fn revoked_in_feed(&self) -> Vec<String> {
        let changes = self.store.changes_since(0, 1000).await.unwrap();
        changes
            .into_iter()
            .filter(|c| c.kind == ChangeKind::Grant)
            .map(|c| c.key)
            .collect()
    }

    /// Whether the tokens behind `claims` still stand, as introspection decides.
    pub async fn still_valid(&self, claims: &AccessClaims) -> bool {
        let contexts = FromStore(&self.store);
        introspect::still_valid(claims, self.now(), &self.store, &contexts)
            .await
            .unwrap()
    }

    /// The claims of an access token: a JWT verified with the key ring (`typ`
    /// `at+jwt`, signed by the active key of `alg`), or a reference token's record.
    pub async fn access_claims(&self, token: &str, alg: SigningAlg) -> AccessClaims {
        if token.split('.').count() != 3 {
            let record = self
                .store
                .reference_token(&gatehouse_core::secret::digest(token))
                .await
                .unwrap();
            assert_eq!(record.expires_at, record.claims["exp"].as_i64().unwrap());
            return serde_json::from_value(record.claims).unwrap();
        }
        assert_eq!(jose::peek_typ(token).as_deref(), Some("at+jwt"));
        let payload = self.verify(token, alg);
        serde_json::from_slice(&payload).unwrap()
    }

    /// An ID token's claims, verified (RS256, `typ: JWT`).
    pub fn id_claims(&self, token: &str) -> Value {
        assert_eq!(jose::peek_typ(token).as_deref(), Some("JWT"));
        serde_json::from_slice(&self.verify(token, SigningAlg::RS256)).unwrap()
    }

    fn verify(&self, token: &str, alg: SigningAlg) -> Vec<u8> {
        let kid = jose::peek_kid(token).unwrap();
        let active = self.ring.active(alg).unwrap();
        assert_eq!(kid, active.kid, "signed by the active {alg:?} key");
        active.verify(token).expect("a valid signature")
    }
}

/// Client contexts straight from the store (the server caches them).
struct FromStore<'a>(&'a SqliteStore);

#[async_trait::async_trait]
impl ContextSource for FromStore<'_> {
    async fn client_context(&self, client_id: &str) -> StoreResult<Arc<ClientContext>> {
        ClientContext::load(self.0, client_id).await.map(Arc::new)
    }
}

pub fn code_request(code: &str, redirect: Option<&str>, verifier: Option<&str>) -> TokenRequest {
    TokenRequest::AuthorizationCode(AuthorizationCodeRequest {
        code: code.into(),
        redirect_uri: redirect.map(str::to_owned),
        code_verifier: verifier.map(str::to_owned),
    })
}

pub fn refresh_request(token: &str, scope: Option<&str>) -> TokenRequest {
    TokenRequest::RefreshToken(RefreshTokenRequest {
        refresh_token: token.into(),
        scope: scope.map(self::scope),
    })
}

pub fn machine_request(scope: Option<&str>, target: Option<&str>) -> TokenRequest {
    TokenRequest::ClientCredentials(ClientCredentialsRequest {
        scope: scope.map(self::scope),
        target: target.map(str::to_owned),
    })
}

/// The OAuth error of a refused request, as `(code, description)`.
pub fn refused(result: Result<TokenSet, TokenError>) -> (ErrorCodeName, String) {
    match result {
        Err(TokenError::OAuth(e)) => (e.code.as_str(), e.description.into_owned()),
        Err(other) => panic!("expected an OAuth error, got {other:?}"),
        Ok(set) => panic!("expected a refusal, got tokens for {}", set.scope),
    }
}

pub type ErrorCodeName = &'static str;
