//! The HTTP error of every handler: a status code and a short JSON body
//! `{"error": "<code>", "message": "<for people>"}`. Causes of 5xx are logged here and never
//! sent to the client.

use crate::store::StoreError;
use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("text must be at most {0} characters")]
    TextTooLong(usize),
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("missing or wrong secret token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Unavailable(String),
    /// Over a rate limit: try again after this many seconds.
    #[error("too many requests; try again in {0} s")]
    TooManyRequests(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TextTooLong(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Store(e) if e.is_busy() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code (also the `errors` metric label).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::TooLarge(_) => "too_large",
            ApiError::TextTooLong(_) => "text_too_long",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::TooManyRequests(_) => "rate_limited",
            ApiError::Store(e) if e.is_busy() => "unavailable",
            ApiError::Store(_) => "internal",
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge(super::routes::MAX_BODY)
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> ApiError {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(super::routes::MAX_BODY)
        } else {
            ApiError::BadRequest(r.body_text())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            "the bot could not process this request; try again".to_string()
        } else {
            self.to_string()
        };
        let body = json!({ "error": self.code(), "message": message });
        if let ApiError::TooManyRequests(secs) = self {
            let after = secs.to_string();
            return (
                status,
                [(axum::http::header::RETRY_AFTER, after)],
                Json(body),
            )
                .into_response();
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Busy, not broken: the sender may try again in a moment (webhooks do).
            return (status, [(axum::http::header::RETRY_AFTER, "1")], Json(body)).into_response();
        }
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_database_is_503_with_retry_after_and_a_broken_one_500() {
        for (e, want) in [
            (StoreError::Contended(20), 503),
            (StoreError::Db(sqlx::Error::PoolTimedOut), 503),
            (StoreError::Db(sqlx::Error::RowNotFound), 500),
        ] {
            let r = ApiError::Store(e).into_response();
            assert_eq!(r.status().as_u16(), want);
            assert_eq!(r.headers().contains_key("retry-after"), want == 503);
        }
    }
}
