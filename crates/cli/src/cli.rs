//! The command line, declared once. `--database-url`, `--json`, `--dev` and
//! `--dns-server` are global: they are accepted before or after any subcommand's
//! own arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "OAuth 2.0 / OpenID Connect authorization server and API gateway"
)]
pub struct Cli {
    /// Where Gatehouse keeps its data.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_DATABASE_URL",
        default_value = "sqlite://gatehouse.db"
    )]
    pub database_url: String,
    /// Print machine-readable JSON on standard output (messages go to standard error).
    #[arg(long, global = true)]
    pub json: bool,
    /// Development mode: also accept `http://localhost` and `http://127.0.0.1`
    /// redirect URIs (any port). Never in production.
    #[arg(long, global = true, env = "GATEHOUSE_DEV")]
    pub dev: bool,
    /// The DNS server (ADDR:PORT) that redirect-URI hosts must resolve on;
    /// default: the system's (/etc/resolv.conf).
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_DNS_SERVER",
        value_name = "ADDR:PORT"
    )]
    pub dns_server: Option<SocketAddr>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the authorization server.
    Serve(ServeArgs),
    /// Run the API gateway: validate Gatehouse access tokens and forward to an upstream.
    Gateway(GatewayArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Copy every record from one database to another: SQLite to PostgreSQL,
    /// or PostgreSQL to SQLite. The target is migrated first and must be
    /// empty; the copy is one transaction.
    Copy {
        /// Source database URL (sqlite://… or postgres://…).
        #[arg(long)]
        from: String,
        /// Target database URL (postgres://… or sqlite://…).
        #[arg(long)]
        to: String,
    },
    /// Check a configuration file (for `serve --config` or `gateway --config`)
    /// without starting anything.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Copy a running SQLite installation's database to FILE, consistently
    /// (SQLite's `VACUUM INTO`); back up the key file beside it.
    Backup {
        /// The backup file to write (must not exist yet).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Restore a backup made by `gatehouse backup` into the SQLite database that
    /// `--database-url` names (stop the servers using it first).
    Restore {
        /// The backup file to read.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Replace a database that already holds data.
        #[arg(long)]
        force: bool,
    },
    /// Organizations.
    #[command(subcommand)]
    Org(OrgCmd),
    /// Users of an organization.
    #[command(subcommand)]
    User(UserCmd),
    /// APIs (resource servers) that tokens are issued for.
    #[command(subcommand)]
    Api(ApiCmd),
    /// Apps (OAuth clients).
    #[command(subcommand)]
    App(AppCmd),
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// An organization's audit log, newest first.
    Audit {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// How many events.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Only events older than this sequence number (for paging).
        #[arg(long)]
        before: Option<i64>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Issuer URL (goes in `iss` and discovery); default `http://<listen address>`.
    #[arg(long, env = "GATEHOUSE_ISSUER")]
    pub issuer: Option<String>,
    /// Serve Prometheus metrics at `/metrics` on this separate address (off unless set).
    #[arg(long, env = "GATEHOUSE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub kek: KekArgs,
    /// Log format.
    #[arg(long, env = "GATEHOUSE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// SQLite busy timeout in milliseconds (how long a locked database is waited for before 503).
    #[arg(long, env = "GATEHOUSE_SQLITE_BUSY_TIMEOUT_MS", default_value_t = 5000)]
    pub sqlite_busy_timeout_ms: u64,
    /// PostgreSQL: connections this instance opens at most (half of them for
    /// the token grants' one-statement calls, the rest for everything else).
    #[arg(long, env = "GATEHOUSE_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// PostgreSQL: statement timeout in milliseconds.
    #[arg(
        long,
        env = "GATEHOUSE_DB_STATEMENT_TIMEOUT_MS",
        default_value_t = 5000
    )]
    pub db_statement_timeout_ms: u64,
    /// PostgreSQL: how long a request waits for a connection before answering 503.
    #[arg(long, env = "GATEHOUSE_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub db_acquire_timeout_ms: u64,
    /// Failed client authentications per client id before 429 (per minute).
    #[arg(long, env = "GATEHOUSE_FAILURES_PER_CLIENT", default_value_t = 20)]
    pub failures_per_client: u32,
    /// Failed client authentications per source address before 429 (per minute).
    #[arg(long, env = "GATEHOUSE_FAILURES_PER_ADDRESS", default_value_t = 50)]
    pub failures_per_address: u32,
    /// DPoP (RFC 9449): the token endpoint demands a server nonce in every
    /// proof (`use_dpop_nonce`, the nonce in the `DPoP-Nonce` header).
    #[arg(long, env = "GATEHOUSE_DPOP_NONCE")]
    pub dpop_nonce: bool,
    /// DPoP: a proof's `iat` must be within this many seconds of now.
    #[arg(long, env = "GATEHOUSE_DPOP_WINDOW_SECS", default_value_t = 60, value_parser = clap::value_parser!(i64).range(5..=600))]
    pub dpop_window_secs: i64,
    /// Authorization code lifetime in seconds.
    #[arg(long, env = "GATEHOUSE_CODE_TTL", default_value_t = 1800, value_parser = clap::value_parser!(i64).range(10..=3600))]
    pub code_ttl: i64,
    /// Refresh token lifetime in seconds (each rotation starts a new one).
    #[arg(long, env = "GATEHOUSE_REFRESH_TTL", default_value_t = 30 * 24 * 3600, value_parser = clap::value_parser!(i64).range(60..=365 * 24 * 3600))]
    pub refresh_ttl: i64,
    /// A refresh-token family's absolute lifetime in days from the authorization,
    /// however often it is rotated; then the user authorizes the app again.
    #[arg(long, env = "GATEHOUSE_REFRESH_FAMILY_MAX_AGE", default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub refresh_family_max_age: i64,
    /// Rotate the signing keys this many days after each became active (the
    /// next key is published in the JWKS at 90 % of it); 0 rotates only by hand.
    #[arg(long, env = "GATEHOUSE_KEY_ROTATION_DAYS", default_value_t = 90, value_parser = clap::value_parser!(i64).range(0..=3650))]
    pub key_rotation_days: i64,
    /// Login session lifetime in seconds.
    #[arg(long, env = "GATEHOUSE_SESSION_TTL", default_value_t = 12 * 3600, value_parser = clap::value_parser!(i64).range(60..=30 * 24 * 3600))]
    pub session_ttl: i64,
    /// OpenID Connect Back-Channel Logout: apps that registered a logout URI
    /// are told when a session ends or expires. `false` turns it off:
    /// discovery says so, nothing is queued or sent, new logout URIs are refused.
    #[arg(long, env = "GATEHOUSE_BACKCHANNEL_LOGOUT", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub backchannel_logout: bool,
    /// Load balancers / reverse proxies (CIDR ranges or addresses, comma-separated)
    /// whose forwarding header names the client; requests from anywhere else are
    /// their TCP peer. Empty: the header is never read.
    #[arg(
        long,
        env = "GATEHOUSE_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = gatehouse_server::config::parse_proxy,
        value_name = "CIDR,..."
    )]
    pub trusted_proxies: Vec<gatehouse_server::config::IpNet>,
    /// The header those proxies append the client address to.
    #[arg(long, env = "GATEHOUSE_FORWARDED_HEADER", value_enum, default_value_t = ForwardedHeaderArg::XForwardedFor)]
    pub forwarded_header: ForwardedHeaderArg,
    /// A request's headers must arrive within this many milliseconds of their
    /// first byte.
    #[arg(long, env = "GATEHOUSE_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub header_read_timeout_ms: u64,
    /// How long a keep-alive connection may sit idle between requests, in
    /// milliseconds. Keep it above a load balancer's idle timeout.
    #[arg(long, env = "GATEHOUSE_IDLE_TIMEOUT_MS", default_value_t = 120_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub idle_timeout_ms: u64,
    /// A request's body must arrive within this many milliseconds of its headers.
    #[arg(long, env = "GATEHOUSE_BODY_READ_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub body_read_timeout_ms: u64,
    /// Connections served at once; more wait until one closes.
    #[arg(long, env = "GATEHOUSE_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// How often housekeeping runs, in milliseconds: apps' last use and usage
    /// counts are written out, expired records purged, keys rotated on schedule.
    #[arg(long, env = "GATEHOUSE_HOUSEKEEPING_INTERVAL_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub housekeeping_interval_ms: u64,
    #[command(flatten)]
    pub smtp: SmtpArgs,
    /// A TOML file of settings: each key is an option's long name with `_` for
    /// `-` (e.g. `listen`, `database_url`); environment variables and options
    /// given on the command line override it.
    #[arg(long, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Where invitation and password-reset e-mail goes.
#[derive(Debug, Args)]
pub struct SmtpArgs {
    /// SMTP server for invitation and password-reset e-mail:
    /// smtp://host:port (plain; add ?tls=required for STARTTLS) or
    /// smtps://host:port (TLS). Unset: no e-mail is sent, and the console shows
    /// invitation links for the admin to pass on.
    #[arg(long, env = "GATEHOUSE_SMTP_URL", requires = "smtp_from")]
    pub smtp_url: Option<String>,
    /// The sender of that e-mail, e.g. "Acme ID <id@acme.test>".
    #[arg(long, env = "GATEHOUSE_SMTP_FROM", requires = "smtp_url")]
    pub smtp_from: Option<String>,
    /// SMTP user name (with --smtp-password).
    #[arg(long, env = "GATEHOUSE_SMTP_USERNAME", requires = "smtp_password")]
    pub smtp_username: Option<String>,
    /// SMTP password (better in the environment, or as `smtp_password_file`
    /// in the configuration file, than on the command line).
    #[arg(
        long,
        env = "GATEHOUSE_SMTP_PASSWORD",
        hide_env_values = true,
        requires = "smtp_username"
    )]
    pub smtp_password: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Validate FILE as `serve --config FILE` (or `gateway --config FILE`) would
    /// read it, and exit: unknown keys, bad values and unreadable `*_file`
    /// secrets are errors naming the key and its line.
    Check {
        /// The TOML file.
        file: PathBuf,
        /// The command the file is for.
        #[arg(long = "for", value_enum, default_value_t = ConfigFor::Serve)]
        for_command: ConfigFor,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConfigFor {
    Serve,
    Gateway,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ForwardedHeaderArg {
    /// `X-Forwarded-For` (AWS ALB, GCP, nginx, HAProxy, Envoy).
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=…`.
    Forwarded,
}

/// Where the key that seals signing keys at rest comes from.
#[derive(Debug, Args)]
pub struct KekArgs {
    /// File holding the key that encrypts signing keys at rest (`serve` creates it if missing).
    #[arg(long, env = "GATEHOUSE_KEY_FILE", default_value = "gatehouse.key")]
    pub key_file: PathBuf,
    /// The key-encryption key itself (base64url, 32 bytes), instead of a key file.
    #[arg(long, env = "GATEHOUSE_KEY_ENCRYPTION_KEY", hide_env_values = true)]
    pub key_encryption_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// List signing keys (never the private parts).
    List,
    /// Retire the active key of an algorithm and make a new one; running servers
    /// pick it up within a moment, and retired keys stay published so tokens in
    /// flight keep verifying.
    Rotate {
        /// The algorithm whose key is replaced.
        #[arg(long, value_enum)]
        alg: AlgArg,
        #[command(flatten)]
        kek: KekArgs,
    },
    /// Withdraw a (compromised) key at once: it leaves the JWKS, tokens it signed
    /// are refused everywhere (gateways hear of it through the revocation feed).
    /// An active key is replaced by a new one first.
    Revoke {
        /// The key's id (`gatehouse keys list`).
        kid: String,
        #[command(flatten)]
        kek: KekArgs,
    },
    /// The signing keys' audit log (rotations and revocations), newest first.
    Log {
        /// How many events.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
    },
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "GATEHOUSE_GATEWAY_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub listen: SocketAddr,
    /// Serve Prometheus metrics at `/metrics` on this separate address (off unless set).
    #[arg(long, env = "GATEHOUSE_GATEWAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// The Gatehouse issuer URL (tokens' `iss`; discovery is read from it).
    #[arg(long, env = "GATEHOUSE_GATEWAY_ISSUER")]
    pub issuer: String,
    /// This API's audience identifier (tokens' `aud`).
    #[arg(long, env = "GATEHOUSE_GATEWAY_AUDIENCE")]
    pub audience: String,
    /// The API's own client id (from `gatehouse api create`).
    #[arg(long, env = "GATEHOUSE_GATEWAY_API_CLIENT_ID")]
    pub api_client_id: String,
    /// The API's client secret (better in the environment than on the command line).
    #[arg(
        long,
        env = "GATEHOUSE_GATEWAY_API_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub api_client_secret: String,
    /// Where validated requests go (http://host:port[/base]); not with --demo.
    #[arg(
        long,
        env = "GATEHOUSE_GATEWAY_UPSTREAM",
        required_unless_present = "demo",
        conflicts_with = "demo"
    )]
    pub upstream: Option<String>,
    /// A route: "METHOD /path/prefix/* [forward_authorization] [path_params]=scope1 scope2"
    /// (repeatable; `*` method = any). `forward_authorization`: pass the caller's
    /// Authorization header upstream; `path_params`: allow `;` path parameters.
    #[arg(long = "route")]
    pub routes: Vec<String>,
    /// A TOML file of `[[route]]` tables (method, path, scopes, forward_authorization,
    /// path_params) and an optional top-level `case_insensitive = true`.
    #[arg(long = "routes", env = "GATEHOUSE_GATEWAY_ROUTES")]
    pub routes_file: Option<PathBuf>,
    /// Match routes case-insensitively (for an upstream that ignores case), so a
    /// case change can never reach a route's path under a laxer route.
    #[arg(long, env = "GATEHOUSE_GATEWAY_CASE_INSENSITIVE_ROUTES")]
    pub case_insensitive_routes: bool,
    /// Serve the built-in products API (default route `GET /v1/products/*=cfgateway`).
    #[arg(long)]
    pub demo: bool,
    /// Clock skew allowed on exp/nbf/iat, in seconds.
    #[arg(long, env = "GATEHOUSE_GATEWAY_LEEWAY_SECS", default_value_t = 5)]
    pub leeway_secs: u64,
    /// Seconds the revocation feed may be lost before tokens issued since are refused.
    #[arg(
        long,
        env = "GATEHOUSE_GATEWAY_MAX_FEED_STALENESS_SECS",
        default_value_t = 30
    )]
    pub max_feed_staleness_secs: u64,
    /// The gateway's URL as callers address it (e.g. https://api.example.com
    /// behind a TLS load balancer): DPoP proofs name it in `htu`. Default:
    /// http:// and the request's Host.
    #[arg(long, env = "GATEHOUSE_GATEWAY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Accepted signature algorithms.
    #[arg(long, value_delimiter = ',', default_value = "ES256,RS256,EdDSA")]
    pub algorithms: Vec<String>,
    /// Seconds an introspection answer (reference tokens) is reused.
    #[arg(long, default_value_t = 30)]
    pub introspection_cache_secs: u64,
    /// Seconds the upstream has to start answering before 504.
    #[arg(long, default_value_t = 30)]
    pub upstream_timeout_secs: u64,
    /// A request's headers must arrive within this many milliseconds of their
    /// first byte.
    #[arg(long, env = "GATEHOUSE_GATEWAY_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub header_read_timeout_ms: u64,
    /// How long a keep-alive connection may sit idle between requests, in
    /// milliseconds. Keep it above a load balancer's idle timeout.
    #[arg(long, env = "GATEHOUSE_GATEWAY_IDLE_TIMEOUT_MS", default_value_t = 120_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub idle_timeout_ms: u64,
    /// A request's body must arrive within this many milliseconds of its headers
    /// (it streams to the upstream meanwhile).
    #[arg(long, env = "GATEHOUSE_GATEWAY_BODY_READ_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub body_read_timeout_ms: u64,
    /// Connections served at once; more wait until one closes.
    #[arg(long, env = "GATEHOUSE_GATEWAY_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Log format.
    #[arg(long, env = "GATEHOUSE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// A TOML file of settings: each key is an option's long name with `_` for
    /// `-` (e.g. `issuer`, `api_client_secret_file`); environment variables and
    /// options given on the command line override it.
    #[arg(long, env = "GATEHOUSE_GATEWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum OrgCmd {
    /// Create an organization (with the roles admin, developer and member).
    Create {
        /// The organization's display name.
        #[arg(long)]
        name: String,
        /// URL-friendly id; derived from the name by default.
        #[arg(long)]
        slug: Option<String>,
    },
    /// List organizations.
    List,
    /// Change an organization's sign-in policy.
    Update {
        /// The organization's slug.
        slug: String,
        /// Require a second factor (an authenticator app) of everyone.
        #[arg(long, conflicts_with = "no_require_mfa")]
        require_mfa: bool,
        /// Stop requiring a second factor.
        #[arg(long)]
        no_require_mfa: bool,
        /// Require a second factor of everyone holding one of these roles
        /// (comma-separated, e.g. `admin`; `''` for none).
        #[arg(long, value_name = "ROLES", value_delimiter = ',')]
        require_mfa_roles: Option<Vec<String>>,
    },
    /// The organization's own OpenID Connect identity provider, which people
    /// of its e-mail domains sign in through.
    #[command(subcommand)]
    IdentityProvider(IdpCmd),
}

#[derive(Debug, Subcommand)]
pub enum IdpCmd {
    /// Show the organization's identity provider (never its client secret).
    Show {
        /// The organization's slug.
        slug: String,
    },
    /// Set (create or replace) it. Register `<issuer>/upstream/callback` as
    /// Gatehouse's redirect URI at the provider.
    Set {
        /// The organization's slug.
        slug: String,
        /// The provider's issuer URL (https; its discovery document is read from it).
        #[arg(long)]
        issuer: String,
        /// Gatehouse's client id at the provider.
        #[arg(long)]
        client_id: String,
        /// Read Gatehouse's client secret at the provider from standard input
        /// (one line); without it, a provider already set keeps its secret.
        #[arg(long)]
        client_secret_stdin: bool,
        /// Comma-separated e-mail domains whose people sign in there.
        #[arg(long, value_delimiter = ',', required = true)]
        domains: Vec<String>,
        /// Let people of those domains still sign in with a local password.
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        allow_passwords: Option<bool>,
        /// The role of people created on their first sign-in.
        #[arg(long, default_value = "member")]
        default_role: String,
        /// Count a sign-in the provider says was multi-factor (its ID token's
        /// `amr` holds `mfa`, or `otp`/`hwk` beside another method) as
        /// multi-factor here, meeting second-factor requirements.
        #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        trust_upstream_mfa: Option<bool>,
        #[command(flatten)]
        kek: KekArgs,
    },
    /// Remove it: its people sign in with passwords again.
    Remove {
        /// The organization's slug.
        slug: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user.
    Create {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// The user's email address (unique in the organization; their sign-in name).
        #[arg(long)]
        email: String,
        /// The user's role: admin, developer or member.
        #[arg(long, default_value = "member")]
        role: String,
        /// The user's display name.
        #[arg(long)]
        name: Option<String>,
        /// Comma-separated groups.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Read the user's password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Create a user without a password and print an invitation link that sets
    /// it (once, within 72 hours), for you to pass on. (A running server with
    /// --smtp-url e-mails invitations itself: the console or the admin API.)
    /// With --resend: a new link for a user invited before who has not chosen
    /// a password yet; their earlier link stops working.
    Invite {
        /// Invite an existing user again (role, name and groups are left as
        /// they are).
        #[arg(long, conflicts_with_all = ["name", "groups"])]
        resend: bool,
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// The person's email address.
        #[arg(long)]
        email: String,
        /// Their role: admin, developer or member.
        #[arg(long, default_value = "member")]
        role: String,
        /// Their display name.
        #[arg(long)]
        name: Option<String>,
        /// Comma-separated groups.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// The server's public URL (its issuer): the link starts with it.
        #[arg(long, env = "GATEHOUSE_ISSUER")]
        issuer: String,
    },
    /// Change a user's profile (the OpenID Connect claims apps may read); an
    /// empty value clears a field. Fields not given stay as they are.
    #[command(visible_alias = "update")]
    SetProfile {
        /// The user's email address.
        email: String,
        /// The user's organization (needed when the email is in several).
        #[arg(long)]
        org: Option<String>,
        /// The user's display name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// List the users of an organization.
    List {
        /// The organization's slug.
        #[arg(long)]
        org: String,
    },
    /// Deactivate a user: their sessions and every app acting for them stop working,
    /// and the tokens they had stay ended even if they are reactivated.
    Deactivate {
        /// The user's email address.
        email: String,
        /// The user's organization (needed when the email is in several).
        #[arg(long)]
        org: Option<String>,
    },
    /// Reactivate a user.
    Activate {
        /// The user's email address.
        email: String,
        /// The user's organization (needed when the email is in several).
        #[arg(long)]
        org: Option<String>,
    },
    /// Give a user a role and groups (their new tokens carry them).
    SetRole {
        /// The user's email address.
        email: String,
        /// The user's organization (needed when the email is in several).
        #[arg(long)]
        org: Option<String>,
        /// The new role: admin, developer or member.
        #[arg(long)]
        role: String,
        /// Comma-separated groups (replaces the current ones; empty clears them).
        #[arg(long, value_delimiter = ',')]
        groups: Option<Vec<String>>,
    },
}

/// A user's OpenID Connect profile claims besides the name.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Given (first) name.
    #[arg(long)]
    pub given_name: Option<String>,
    /// Family (last) name.
    #[arg(long)]
    pub family_name: Option<String>,
    /// A BCP 47 language tag, e.g. `fr-CA`.
    #[arg(long)]
    pub locale: Option<String>,
    /// An IANA time zone, e.g. `Europe/Paris`.
    #[arg(long)]
    pub zoneinfo: Option<String>,
    /// The email address is vouched for (`--email-verified false` takes it back).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub email_verified: Option<bool>,
}

impl ProfileArgs {
    /// The edit these flags ask for, with `name` (blank values clear).
    pub fn edit(self, name: Option<String>) -> gatehouse_core::admin::ProfileEdit {
        gatehouse_core::admin::ProfileEdit {
            name: name.map(Some),
            given_name: self.given_name.map(Some),
            family_name: self.family_name.map(Some),
            locale: self.locale.map(Some),
            zoneinfo: self.zoneinfo.map(Some),
            email_verified: self.email_verified,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TokenFormatArg {
    Jwt,
    Reference,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgArg {
    #[value(name = "ES256")]
    Es256,
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "EdDSA")]
    EdDsa,
}

#[derive(Debug, Subcommand)]
pub enum ApiCmd {
    /// Define an API; prints its own credentials (for introspection) once.
    Create {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// The API's display name.
        #[arg(long)]
        name: String,
        /// The identifier tokens carry in `aud` (and clients pass as `audience`/`resource`).
        #[arg(long)]
        audience: String,
        /// Space-separated scopes the API defines.
        #[arg(long)]
        scopes: String,
        /// Access tokens as signed JWTs (checked locally) or opaque references
        /// (checked by introspection).
        #[arg(long, value_enum, default_value_t = TokenFormatArg::Jwt)]
        token_format: TokenFormatArg,
        /// Access-token signing algorithm.
        #[arg(long, value_enum, default_value_t = AlgArg::Es256)]
        signing_alg: AlgArg,
        /// Access-token lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        access_token_ttl: i64,
    },
    /// List an organization's APIs.
    List {
        /// The organization's slug.
        #[arg(long)]
        org: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GrantArg {
    #[value(name = "client_credentials", alias = "client-credentials")]
    ClientCredentials,
    #[value(name = "authorization_code", alias = "authorization-code")]
    AuthorizationCode,
    /// RFC 8693: exchanges people's tokens for tokens to its --exchange-audience APIs.
    #[value(
        name = "urn:ietf:params:oauth:grant-type:token-exchange",
        alias = "token-exchange",
        alias = "token_exchange"
    )]
    TokenExchange,
    /// RFC 8628: a device without a browser (a CLI, a TV); people approve it at /device.
    #[value(
        name = "urn:ietf:params:oauth:grant-type:device_code",
        alias = "device_code",
        alias = "device-code"
    )]
    DeviceCode,
}

#[derive(Debug, Subcommand)]
pub enum AppCmd {
    /// Register an app; prints its client secret once.
    Register {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// The app's name (shown on the consent page).
        #[arg(long)]
        name: String,
        /// What the app does (shown on the consent page).
        #[arg(long)]
        description: Option<String>,
        /// client_credentials (a machine), authorization_code (people sign in) or
        /// urn:ietf:params:oauth:grant-type:token-exchange (an API exchanging the
        /// tokens people send it for tokens to other APIs, RFC 8693) or device_code
        /// (urn:ietf:params:oauth:grant-type:device_code: a device without a
        /// browser that people approve at /device, RFC 8628).
        #[arg(long, value_enum)]
        grant: GrantArg,
        /// Email of the user a client credentials app acts on behalf of.
        #[arg(long)]
        on_behalf_of: Option<String>,
        /// Space-separated scopes the app may request.
        #[arg(long)]
        scopes: String,
        /// Scopes granted when a request names none (default: all of --scopes).
        #[arg(long)]
        default_scopes: Option<String>,
        /// The API tokens are for when a request names none.
        #[arg(long)]
        audience: Option<String>,
        /// Where the browser returns with the code (repeat for several; https on
        /// a public DNS name, or localhost with --dev).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Where the browser may go after signing out (repeat for several).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Authorization requests must use PKCE (default: true for authorization code apps).
        #[arg(long)]
        require_pkce: Option<bool>,
        /// Authorization requests must be pushed to /connect/par first (RFC 9126;
        /// authorization code apps; default: false).
        #[arg(long)]
        require_par: Option<bool>,
        /// Token requests must carry a DPoP proof (RFC 9449): every token is
        /// bound to the app's key (`--require-dpop` alone means true).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        require_dpop: Option<bool>,
        /// An API (audience) of the organization a token exchange app may
        /// exchange people's tokens for (repeat for several; none: it may not
        /// exchange any).
        #[arg(long = "exchange-audience")]
        exchange_audiences: Vec<String>,
        /// How the app authenticates: client_secret_basic (default; a secret is
        /// made and shown once), client_secret_post, or private_key_jwt (a JWT
        /// signed with its own key, RFC 7523: no secret; give --jwks-file or
        /// --jwks-uri).
        #[arg(long)]
        auth_method: Option<String>,
        /// private_key_jwt: a file holding the app's public keys as a JWKS.
        #[arg(long, conflicts_with = "jwks_uri")]
        jwks_file: Option<std::path::PathBuf>,
        /// private_key_jwt: where the app publishes its JWKS (https on a public
        /// DNS name, like redirect URIs; localhost with --dev).
        #[arg(long)]
        jwks_uri: Option<String>,
        /// Where logout tokens are POSTed when a person's session ends
        /// (OpenID Connect Back-Channel Logout 1.0; authorization code apps;
        /// the redirect-URI policy applies).
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// Whether the app needs `sid` in its logout tokens (they always carry it).
        #[arg(long)]
        backchannel_logout_session_required: Option<bool>,
    },
    /// Replace the client secret; every token issued so far ends now.
    RotateSecret {
        /// The app's client id.
        client_id: String,
    },
    /// Give the app a second secret (printed once) beside its current one; both
    /// work until one is retired. Tokens issued so far stay valid.
    AddSecret {
        /// The app's client id.
        client_id: String,
        /// Grace period of the current secret: it stops working this long from
        /// now (7d, 12h, 30m, 90s; at most 90d). Without it, the current secret
        /// works until `app retire-secret`.
        #[arg(long, value_parser = parse_grace)]
        expires_in: Option<i64>,
    },
    /// Retire one of the app's secrets: it stops working and the tokens issued
    /// with it end now (not the other secret's). The last one cannot be retired.
    RetireSecret {
        /// The app's client id.
        client_id: String,
        /// The secret's id (see `app show`).
        secret_id: String,
    },
    /// Change the user the app acts on behalf of; every token issued so far ends now.
    SetOnBehalfOf {
        /// The app's client id.
        client_id: String,
        /// The new user's email address.
        #[arg(long)]
        user: String,
    },
    /// Show an app, with its active secrets' ids and last use (never a secret).
    Show {
        /// The app's client id.
        client_id: String,
    },
    /// List an organization's apps.
    List {
        /// The organization's slug.
        #[arg(long)]
        org: String,
    },
    /// Delete an app; its tokens end now.
    Delete {
        /// The app's client id.
        client_id: String,
    },
    /// Edit an app's details; options not given are left as they are.
    Update {
        /// The app's client id.
        client_id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New description (an empty string clears it).
        #[arg(long)]
        description: Option<String>,
        /// Replaces every redirect URI (repeat for several).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Replaces every post-logout redirect URI (repeat for several).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Remove every post-logout redirect URI.
        #[arg(long, conflicts_with = "post_logout_redirect_uris")]
        clear_post_logout_redirect_uris: bool,
        /// Space-separated scopes the app may request (replaces them).
        #[arg(long)]
        scopes: Option<String>,
        /// Scopes granted when a request names none.
        #[arg(long)]
        default_scopes: Option<String>,
        /// Default audience (an empty string clears it).
        #[arg(long)]
        audience: Option<String>,
        /// Whether authorization requests must use PKCE (authorization code apps).
        #[arg(long)]
        require_pkce: Option<bool>,
        /// Whether authorization requests must be pushed to /connect/par first
        /// (RFC 9126; authorization code apps).
        #[arg(long)]
        require_par: Option<bool>,
        /// Whether token requests must carry a DPoP proof (RFC 9449;
        /// `--require-dpop` alone means true).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        require_dpop: Option<bool>,
        /// Replaces the APIs a token exchange app may exchange people's tokens
        /// for (repeat for several).
        #[arg(long = "exchange-audience")]
        exchange_audiences: Vec<String>,
        /// Remove every exchange audience (the app may exchange no token).
        #[arg(long, conflicts_with = "exchange_audiences")]
        clear_exchange_audiences: bool,
        /// Replaces a private_key_jwt app's keys with the JWKS in this file
        /// (every instance uses them from the next request).
        #[arg(long, conflicts_with = "jwks_uri")]
        jwks_file: Option<std::path::PathBuf>,
        /// Replaces a private_key_jwt app's keys with the JWKS at this URL.
        #[arg(long)]
        jwks_uri: Option<String>,
        /// Where logout tokens are POSTed when a person's session ends
        /// (OpenID Connect Back-Channel Logout 1.0; authorization code apps;
        /// the redirect-URI policy applies).
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// Whether the app needs `sid` in its logout tokens (they always carry it).
        #[arg(long)]
        backchannel_logout_session_required: Option<bool>,
        /// Remove the back-channel logout URI.
        #[arg(long, conflicts_with = "backchannel_logout_uri")]
        clear_backchannel_logout_uri: bool,
    },
    /// The app's most recent back-channel logout deliveries (newest first):
    /// pending, delivered, or given up after the last attempt.
    LogoutDeliveries {
        /// The app's client id.
        client_id: String,
    },
    /// Disable an app: it cannot get tokens and every token it holds ends now.
    Disable {
        /// The app's client id.
        client_id: String,
    },
    /// Enable a disabled app (tokens issued before it was disabled stay ended).
    Enable {
        /// The app's client id.
        client_id: String,
    },
}

fn parse_grace(text: &str) -> Result<i64, String> {
    gatehouse_core::admin::parse_grace(text)
}
