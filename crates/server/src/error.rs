//! API errors: `{"error":{"code","message"}}` with the HTTP status. Messages come from the
//! vault, whose errors name fields and rules, never values; body parse errors are replaced
//! by a fixed text, since a JSON parser's message can quote the input.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use custody_vault::Error;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// A plain-words explanation (never a customer value).
    pub message: String,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401: no valid API key.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is needed: send `Authorization: Bearer ck_…`",
        )
    }

    /// 503: the vault is sealed.
    pub fn sealed() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sealed",
            "the vault is sealed: unseal it with `custody unseal` or POST /v1/sys/unseal",
        )
    }

    /// 404 for routes and collections that do not exist.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("not found: {what}"))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (status, code) = match &e {
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_field"),
            Error::Locked(_) => (StatusCode::FORBIDDEN, "unseal_refused"),
            // Fail closed: the access was not recorded, so it did not happen.
            Error::Audit(_) => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
            Error::Busy(_) => (StatusCode::TOO_MANY_REQUESTS, "busy"),
            Error::Crypto(_) => (StatusCode::INTERNAL_SERVER_ERROR, "integrity"),
            _ => {
                // Database and configuration details (file paths, SQL) stay in the server's
                // log; the caller gets a plain message.
                eprintln!("internal error: {e}");
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the vault could not complete the request; the server log has the details",
                );
            }
        };
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}
