use gatehouse_core::clock::UnixTime;
use gatehouse_core::keyring::KeyRing;
use gatehouse_core::model::{Actor, SigningAlg};
use gatehouse_core::ports::Store;
use serde_json::{Value, json};

use crate::cli::{AlgArg, KeysCmd};
use crate::db;
use crate::output::Out;

pub async fn run(store: &dyn Store, now: UnixTime, cmd: KeysCmd, out: &Out) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::List => {
            let keys = store.list_keys().await?;
            let docs: Vec<Value> = keys
                .iter()
                .map(|k| json!({"kid": k.kid, "alg": k.alg.as_str(), "state": k.state.as_str(), "created_at": k.created_at}))
                .collect();
            out.print(&Value::Array(docs), || {
                keys.iter()
                    .map(|k| {
                        format!(
                            "{}\t{}\t{}\t{}",
                            k.kid,
                            k.alg.as_str(),
                            k.state.as_str(),
                            k.created_at
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeysCmd::Rotate { alg, kek } => {
            let kek =
                db::key_encryption_key(kek.key_encryption_key.as_deref(), &kek.key_file, false)?;
            let alg = match alg {
                AlgArg::Es256 => SigningAlg::ES256,
                AlgArg::Rs256 => SigningAlg::RS256,
                AlgArg::EdDsa => SigningAlg::EdDSA,
            };
            // Refuse to seal a key that the servers could not open.
            KeyRing::load(store, &kek).await.map_err(|e| {
                anyhow::anyhow!("the key-encryption key does not open the stored keys: {e}")
            })?;
            let kid = KeyRing::rotate(store, &kek, alg, now, &Actor::operator()).await?;
            out.print(&json!({"kid": kid, "alg": alg.as_str()}), || {
                format!(
                    "new active {} key {kid}; the previous one is retired and stays published until the tokens it signed have expired",
                    alg.as_str()
                )
            });
        }
        KeysCmd::Log { limit } => {
            // Key events belong to the installation (organization "").
            let events = store.audit_events("", None, limit).await?;
            let docs: Vec<Value> = events
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?;
            out.print(&Value::Array(docs), || {
                events
                    .iter()
                    .map(|e| format!("{}\t{}\t{}\t{}", e.at, e.actor_name, e.action, e.detail))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeysCmd::Revoke { kid, kek } => {
            let kek =
                db::key_encryption_key(kek.key_encryption_key.as_deref(), &kek.key_file, false)?;
            KeyRing::load(store, &kek).await.map_err(|e| {
                anyhow::anyhow!("the key-encryption key does not open the stored keys: {e}")
            })?;
            let kid = kid.chars().take(64).collect::<String>();
            let replacement =
                match KeyRing::revoke(store, &kek, &kid, now, &Actor::operator()).await {
                    Err(gatehouse_core::keyring::KeyRingError::Store(
                        gatehouse_core::ports::StoreError::NotFound,
                    )) => anyhow::bail!("no signing key `{kid}` (see `gatehouse keys list`)"),
                    other => other?,
                };
            out.print(
                &json!({"kid": kid, "state": "revoked", "replaced_by": replacement}),
                || match &replacement {
                    Some(new) => {
                        format!("key {kid} revoked; it was active, so {new} now signs in its place")
                    }
                    None => format!("key {kid} revoked"),
                },
            );
        }
    }
    Ok(())
}
