//! Outgoing e-mail over SMTP (lettre): plain-text messages to one person. The
//! transport is built once at start-up from `--smtp-url` (parsed and checked
//! there), so a bad setting stops the server instead of the first invitation.
//! Nothing here logs a message's body (it holds a link that sets a password),
//! nor the SMTP password; `Debug` shows only where mail goes.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long one delivery to the SMTP server may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for messages.
    server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// Why a message was not handed to the SMTP server (never its contents).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the recipient address is not valid")]
    Recipient,
    #[error("the message could not be built: {0}")]
    Build(String),
    #[error("the SMTP server did not accept it: {0}")]
    Smtp(String),
}

impl Mailer {
    /// `url`: `smtp://host[:port]` (plain, or `?tls=required` for STARTTLS),
    /// `smtps://host[:port]` (TLS from the start). Credentials come apart from
    /// the URL, so the URL can be shown and logged.
    pub fn new(
        url: &str,
        from: &str,
        credentials: Option<(String, String)>,
    ) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("--smtp-url: {e}"))?;
        if !matches!(parsed.scheme(), "smtp" | "smtps") {
            return Err("--smtp-url must start with smtp:// or smtps://".into());
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(
                "--smtp-url must not hold credentials: give --smtp-username and --smtp-password (or their environment variables)".into(),
            );
        }
        let host = parsed
            .host_str()
            .ok_or("--smtp-url names no host")?
            .to_owned();
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("--smtp-from `{from}` is not a mail address: {e}"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("--smtp-url: {e}"))?
            .timeout(Some(SEND_TIMEOUT));
        if let Some((user, password)) = credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
        Ok(Mailer {
            transport: builder.build(),
            from,
            server: format!("{host}{port}"),
        })
    }

    /// Where mail goes (`host:port`), for the start-up banner.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends one plain-text message to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), SendError> {
        let to: Mailbox = to.parse().map_err(|_| SendError::Recipient)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| SendError::Build(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| SendError::Smtp(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_at_start() {
        let ok = Mailer::new("smtp://127.0.0.1:2525", "Gatehouse <id@acme.test>", None).unwrap();
        assert_eq!(ok.server(), "127.0.0.1:2525");
        assert!(!format!("{ok:?}").contains("password"));
        for (url, from) in [
            ("http://mail.acme.test", "id@acme.test"),
            ("smtp://user:pw@mail.acme.test", "id@acme.test"),
            ("smtp://mail.acme.test", "not an address"),
            ("smtp://", "id@acme.test"),
        ] {
            let e = Mailer::new(url, from, None).unwrap_err();
            assert!(!e.contains("pw@"), "{e}");
        }
    }
}
