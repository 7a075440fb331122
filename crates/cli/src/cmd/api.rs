use gatehouse_core::admin::{self, NewApi};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::Actor;
use gatehouse_core::model::{Api, SigningAlg, TokenFormat};
use gatehouse_core::ports::Store;
use serde_json::{Value, json};

use crate::cli::{AlgArg, ApiCmd, TokenFormatArg};
use crate::output::Out;

fn doc(a: &Api) -> Value {
    json!({
        "id": a.id, "name": a.name, "audience": a.audience, "scopes": a.scopes, "client_id": a.client_id,
        "token_format": a.token_format.as_str(), "signing_alg": a.signing_alg.as_str(), "access_token_ttl": a.access_token_ttl,
    })
}

pub async fn run(store: &dyn Store, now: UnixTime, cmd: ApiCmd, out: &Out) -> anyhow::Result<()> {
    match cmd {
        ApiCmd::Create {
            org,
            name,
            audience,
            scopes,
            token_format,
            signing_alg,
            access_token_ttl,
        } => {
            let o = admin::org(store, &Actor::operator(), &org).await?;
            let (api, secret) = admin::create_api(
                store,
                now,
                &Actor::operator(),
                NewApi {
                    org: &o,
                    name: &name,
                    audience: &audience,
                    scopes: &scopes,
                    token_format: match token_format {
                        TokenFormatArg::Jwt => TokenFormat::Jwt,
                        TokenFormatArg::Reference => TokenFormat::Reference,
                    },
                    signing_alg: match signing_alg {
                        AlgArg::Es256 => SigningAlg::ES256,
                        AlgArg::Rs256 => SigningAlg::RS256,
                        AlgArg::EdDsa => SigningAlg::EdDSA,
                    },
                    access_token_ttl,
                },
            )
            .await?;
            let mut d = doc(&api);
            d["client_secret"] = Value::String(secret.expose().to_owned());
            out.print(&d, || {
                format!(
                    "created API {} for {}\n  client_id:     {}\n  client_secret: {}\n(the API's own credentials, for introspection; the secret is shown only now)",
                    api.name,
                    api.audience,
                    api.client_id,
                    secret.expose()
                )
            });
        }
        ApiCmd::List { org } => {
            let o = admin::org(store, &Actor::operator(), &org).await?;
            let apis = store.apis_for_org(&o.id).await?;
            out.print(&Value::Array(apis.iter().map(doc).collect()), || {
                apis.iter()
                    .map(|a| format!("{}\t{}\t{}", a.audience, a.client_id, a.scopes.join(" ")))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}
