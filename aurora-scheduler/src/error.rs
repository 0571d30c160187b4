//! Errors: [`SchedulerError`] for the service as a whole, [`RequestError`] for one request.

use aurora_core::api::{ApiError, ErrorCode};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::StorageError;

/// Why the scheduler could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// The storage could not be opened or read at start.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The HTTP server failed while running.
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    /// A write to storage failed while running; nothing after it was acknowledged.
    #[error(
        "storage failed while running: {0}; restart the scheduler to recover every acknowledged change"
    )]
    StorageFailed(String),
}

/// A request that cannot be served, answered with an [`ApiError`] body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct RequestError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl RequestError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> RequestError {
        RequestError {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> RequestError {
        RequestError::new(ErrorCode::InvalidRequest, message)
    }
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        let status = match self.code {
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict | ErrorCode::Locked => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            status,
            Json(ApiError {
                code: self.code,
                message: self.message,
            }),
        )
            .into_response()
    }
}
