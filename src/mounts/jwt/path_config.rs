//! `config` (write, read): where verification keys come from, the bound issuer, the default
//! role and the allowed algorithms. A write validates the key source now — PEM keys parsed,
//! discovery document fetched and its issuer compared, JWKS fetched — and installs the new key
//! set; nothing is stored when a check fails.

use super::store::{CONFIG_KEY, JwtConfig};
use super::validate::DEFAULT_ALGS;
use super::{JwtBackend, KeySource};
use crate::error::{Error, Result};
use crate::logical::{FieldData, FieldType as T, Operation as Op, PathSpec, Request, Response};

type P = PathSpec<JwtBackend>;

pub(super) fn paths() -> Vec<P> {
    vec![
        P::new("config/?$")
            .field(
                "oidc_discovery_url",
                T::Str,
                "OIDC discovery URL, without any .well-known component (base path).",
            )
            .field(
                "oidc_discovery_ca_pem",
                T::Str,
                "CA certificates (PEM) for the discovery URL; system roots when empty.",
            )
            .field(
                "oidc_client_id",
                T::Str,
                "Browser OIDC client id (not supported here).",
            )
            .field(
                "oidc_client_secret",
                T::Str,
                "Browser OIDC client secret (not supported here).",
            )
            .field("oidc_response_mode", T::Str, "Browser OIDC response mode.")
            .field(
                "oidc_response_types",
                T::CommaStringSlice,
                "Browser OIDC response types.",
            )
            .field("jwks_url", T::Str, "JWKS URL used to verify signatures.")
            .field(
                "jwks_ca_pem",
                T::Str,
                "CA certificates (PEM) for the JWKS URL.",
            )
            .field("default_role", T::Str, "Role used when a login names none.")
            .field(
                "jwt_validation_pubkeys",
                T::CommaStringSlice,
                "PEM public keys used to verify signatures offline.",
            )
            .field(
                "jwt_supported_algs",
                T::CommaStringSlice,
                "Allowed signing algorithms; all asymmetric ones when empty.",
            )
            .field("bound_issuer", T::Str, "Required value of the 'iss' claim.")
            .field(
                "provider_config",
                T::Map,
                "Provider-specific configuration (accepted, unused).",
            )
            .field(
                "namespace_in_state",
                T::Bool,
                "Browser OIDC: namespace in the state parameter.",
            )
            .field(
                "skip_jwks_validation",
                T::Bool,
                "Store the config even if the key source cannot be reached now (warning).",
            )
            .field(
                "override_allowed_server_names",
                T::CommaStringSlice,
                "TLS server names accepted for the providers (not supported: must be empty).",
            )
            .on(Op::Update, |b, r, d| Box::pin(b.config_write(r, d)))
            .on(Op::Create, |b, r, d| Box::pin(b.config_write(r, d)))
            .on(Op::Read, |b, r, d| Box::pin(b.config_read(r, d)))
            .help("Configure the JWT authentication backend."),
    ]
}

impl JwtBackend {
    async fn config_read(&self, req: &Request, _d: &FieldData<'_>) -> Result<Option<Response>> {
        let Some(config) = self.config(&req.storage).await? else {
            return Ok(None);
        };
        let mut data = config.read_data();
        let mut resp = Response::default();
        match self.validator(&config).await {
            Ok(_) => {
                data.insert("status".into(), "valid".into());
            }
            Err(e) => {
                data.insert("status".into(), "invalid".into());
                resp.warnings
                    .push(format!("failed to construct JWK validator: {e}"));
            }
        }
        resp.data = Some(data);
        Ok(Some(resp))
    }

    async fn config_write(&self, req: &Request, d: &FieldData<'_>) -> Result<Option<Response>> {
        let s = |k: &str| -> Result<String> { Ok(d.get_str(k)?.unwrap_or_default()) };
        let l = |k: &str| -> Result<Vec<String>> { Ok(d.get_list(k)?.unwrap_or_default()) };
        let existing = self.config(&req.storage).await?;
        let config = JwtConfig {
            oidc_discovery_url: s("oidc_discovery_url")?,
            oidc_discovery_ca_pem: s("oidc_discovery_ca_pem")?,
            oidc_client_id: s("oidc_client_id")?,
            oidc_response_mode: s("oidc_response_mode")?,
            oidc_response_types: l("oidc_response_types")?,
            jwks_url: s("jwks_url")?,
            jwks_ca_pem: s("jwks_ca_pem")?,
            jwt_validation_pubkeys: l("jwt_validation_pubkeys")?,
            jwt_supported_algs: l("jwt_supported_algs")?,
            bound_issuer: s("bound_issuer")?,
            default_role: s("default_role")?.to_lowercase(),
            provider_config: d.get_map("provider_config")?.unwrap_or_default(),
            namespace_in_state: match d.get_bool("namespace_in_state")? {
                Some(b) => b,
                None => existing.as_ref().is_none_or(|c| c.namespace_in_state),
            },
            override_allowed_server_names: l("override_allowed_server_names")?,
        };
        let client_secret = s("oidc_client_secret")?;
        let skip = d.get_bool("skip_jwks_validation")?.unwrap_or(false);

        let methods = [
            !config.oidc_discovery_url.is_empty(),
            !config.jwt_validation_pubkeys.is_empty(),
            !config.jwks_url.is_empty(),
            !config.provider_config.is_empty(),
        ];
        if methods.iter().filter(|m| **m).count() != 1 {
            return Err(Error::bad(
                "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs', 'oidc_discovery_url', or 'provider_config' must be set",
            ));
        }
        if config.oidc_client_id.is_empty() != client_secret.is_empty() {
            return Err(Error::bad(
                "both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC",
            ));
        }
        if !config.oidc_client_id.is_empty() {
            return Err(Error::bad(
                "the browser OIDC flow is not supported by this server: leave 'oidc_client_id' and 'oidc_client_secret' unset and log in with role_type \"jwt\" roles",
            ));
        }
        if !config.provider_config.is_empty() {
            return Err(Error::bad(
                "invalid provider_config: custom providers are not supported by this server",
            ));
        }
        if !config.override_allowed_server_names.is_empty() {
            return Err(Error::bad(
                "'override_allowed_server_names' is not supported by this server",
            ));
        }
        if config
            .oidc_discovery_url
            .contains(".well-known/openid-configuration")
        {
            return Err(Error::bad(
                "'oidc_discovery_url' contains '.well-known' component",
            ));
        }
        for a in &config.jwt_supported_algs {
            if !DEFAULT_ALGS.contains(&a.as_str()) {
                return Err(Error::bad(format!(
                    "invalid jwt_supported_algs: unsupported signing algorithm {a:?}"
                )));
            }
        }
        let mut resp = Response::default();
        if !config
            .oidc_response_types
            .iter()
            .all(|t| t == "code" || t == "id_token")
        {
            return Err(Error::bad(format!(
                "invalid response_types [{}]. 'code' and 'id_token' are allowed",
                config.oidc_response_types.join(" ")
            )));
        }
        match config.oidc_response_mode.as_str() {
            "" | "query" => {
                if config.oidc_response_types.iter().any(|t| t == "id_token") {
                    return Err(Error::bad(
                        "query response_mode may not be used with an id_token response_type",
                    ));
                }
            }
            "form_post" => {}
            other => return Err(Error::bad(format!("invalid response_mode: {other:?}"))),
        }

        // Check (and build) the key source before anything is stored.
        let source = KeySource::of(&config);
        let built = if !config.jwt_validation_pubkeys.is_empty() {
            Some(source.build(false).await.map_err(Error::bad)?)
        } else if !config.oidc_discovery_url.is_empty() {
            match source.build(true).await {
                Ok(k) => Some(k),
                Err(e) if skip => {
                    tracing::warn!(error = %e, "error checking oidc discovery URL (skipped)");
                    resp.warnings
                        .push("error checking oidc discovery URL".into());
                    None
                }
                Err(e) => {
                    return Err(Error::bad(format!(
                        "error checking oidc discovery URL: {e}"
                    )));
                }
            }
        } else {
            let client = super::keys::http_client(&config.jwks_ca_pem).map_err(|e| {
                tracing::warn!(error = %e, "error checking jwks_ca_pem");
                Error::bad("error checking jwks_ca_pem")
            })?;
            let remote = super::keys::RemoteKeys::new(config.jwks_url.clone(), client);
            match remote.fetch_now().await {
                Ok(_) => Some(super::validate::KeySet::Remote(remote)),
                Err(e) if skip => {
                    tracing::warn!(jwks.url = %config.jwks_url, error = %e, "error checking jwks URL (skipped)");
                    resp.warnings.push("error checking jwks URL".into());
                    Some(super::validate::KeySet::Remote(remote))
                }
                Err(e) => {
                    tracing::warn!(jwks.url = %config.jwks_url, error = %e, "error checking jwks URL");
                    return Err(Error::bad("error checking jwks URL"));
                }
            }
        };

        let written = req.storage.put_json(CONFIG_KEY, &config).await;
        self.config_cache.invalidate();
        written?;
        // An explicit write retries at once whatever failed before.
        *self.build.lock().await = None;
        match built {
            Some(keys) => self.install(source, keys),
            None => self.validator.store(None),
        }
        Ok((!resp.warnings.is_empty()).then_some(resp))
    }
}
