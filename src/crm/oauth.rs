//! The OAuth mode of the Bitrix24 client (a local or marketplace application): calls go to the
//! portal's `client_endpoint` with the access token in the `auth` parameter; on 401
//! `expired_token` the pair is renewed at `oauth.bitrix.info` once and the call repeated. Every
//! renewal returns a new refresh token, so the pair is written back to the token file at once
//! (the old refresh token no longer works). `client_secret` goes only to the OAuth server.

use super::bitrix24::CrmError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;

pub const DEFAULT_TOKEN_URL: &str = "https://oauth.bitrix.info/oauth/token/";

/// The token pair and where to call, as kept in the token file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    /// e.g. `https://salon.bitrix24.ru/rest/`.
    pub client_endpoint: String,
}

/// An application's credentials and its current tokens.
#[derive(Debug)]
pub struct OAuth {
    pub client_id: String,
    pub client_secret: String,
    pub token_url: String,
    /// Where the pair is kept; rewritten after each renewal.
    pub token_file: Option<PathBuf>,
    tokens: Mutex<Tokens>,
}

impl OAuth {
    pub fn new(
        client_id: String,
        client_secret: String,
        token_url: String,
        tokens: Tokens,
    ) -> OAuth {
        OAuth {
            client_id,
            client_secret,
            token_url,
            token_file: None,
            tokens: Mutex::new(tokens),
        }
    }

    /// `BOT_BITRIX24_TOKEN_FILE` (JSON: access_token, refresh_token, client_endpoint),
    /// `BOT_BITRIX24_CLIENT_ID`, `BOT_BITRIX24_CLIENT_SECRET`, optional `BOT_BITRIX24_OAUTH_URL`.
    pub fn from_env(file: PathBuf) -> Result<OAuth, CrmError> {
        let need = |name: &str| {
            std::env::var(name).map_err(|_| {
                CrmError::Config(format!(
                    "{name} is not set (OAuth mode, because BOT_BITRIX24_TOKEN_FILE is set)"
                ))
            })
        };
        let text = std::fs::read_to_string(&file).map_err(|e| {
            CrmError::Config(format!("BOT_BITRIX24_TOKEN_FILE {}: {e}", file.display()))
        })?;
        let tokens: Tokens = serde_json::from_str(&text).map_err(|e| {
            CrmError::Config(format!(
                "{}: {e} (expected {{\"access_token\", \"refresh_token\", \"client_endpoint\"}})",
                file.display()
            ))
        })?;
        let token_url =
            std::env::var("BOT_BITRIX24_OAUTH_URL").unwrap_or_else(|_| DEFAULT_TOKEN_URL.into());
        let mut o = OAuth::new(
            need("BOT_BITRIX24_CLIENT_ID")?,
            need("BOT_BITRIX24_CLIENT_SECRET")?,
            token_url,
            tokens,
        );
        o.token_file = Some(file);
        Ok(o)
    }

    pub fn tokens(&self) -> Tokens {
        match self.tokens.lock() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Renew the pair (GET with `grant_type=refresh_token`), keep it and write the token file.
    pub async fn refresh(&self, http: &reqwest::Client) -> Result<Tokens, CrmError> {
        let old = self.tokens();
        let response = http
            .get(&self.token_url)
            .query(&[
                ("grant_type", "refresh_token"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
                ("refresh_token", old.refresh_token.as_str()),
            ])
            .send()
            .await
            .map_err(|e| CrmError::Unavailable {
                method: "oauth/token".into(),
                attempts: 1,
                // The URL carries client_secret and the refresh token: never show it.
                last: e.without_url().to_string(),
            })?;
        let status = response.status().as_u16();
        let value: serde_json::Value =
            response.json().await.map_err(|e| CrmError::BadResponse {
                method: "oauth/token".into(),
                detail: format!("HTTP {status}: {e}"),
            })?;
        if let Some(error) = super::PortalError::from_value(&value, status) {
            return Err(CrmError::Fatal {
                method: "oauth/token".into(),
                cause: format!(
                    "renewing the OAuth tokens failed ({}): the refresh token is expired or revoked, or the application credentials are wrong",
                    error.code
                ),
                fix: "authorize the application again, put the new pair in BOT_BITRIX24_TOKEN_FILE and check BOT_BITRIX24_CLIENT_ID / BOT_BITRIX24_CLIENT_SECRET".into(),
                error: Box::new(error),
            });
        }
        let field = |k: &str| value.get(k).and_then(serde_json::Value::as_str);
        let (Some(access), Some(refresh)) = (field("access_token"), field("refresh_token")) else {
            return Err(CrmError::BadResponse {
                method: "oauth/token".into(),
                detail: "no access_token / refresh_token".into(),
            });
        };
        let endpoint = match field("client_endpoint") {
            Some(e) => super::bitrix24::validate_base(e)?,
            None => old.client_endpoint.clone(),
        };
        let new = Tokens {
            access_token: access.into(),
            refresh_token: refresh.into(),
            client_endpoint: endpoint,
        };
        if let Ok(mut t) = self.tokens.lock() {
            *t = new.clone();
        }
        if let Some(file) = &self.token_file {
            save(file, &new)?;
        }
        Ok(new)
    }
}

/// Write the pair next to the file and rename it over, so a crash never leaves half a file.
fn save(file: &std::path::Path, tokens: &Tokens) -> Result<(), CrmError> {
    let tmp = file.with_extension("tmp");
    let text = serde_json::to_string_pretty(tokens)
        .map_err(|e| CrmError::Config(format!("token file: {e}")))?;
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, file))
        .map_err(|e| {
            CrmError::Config(format!(
                "saving the renewed tokens to {}: {e} (the old refresh token no longer works)",
                file.display()
            ))
        })
}
