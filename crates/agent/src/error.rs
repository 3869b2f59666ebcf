//! The agent library's error type.

use std::path::PathBuf;

/// What can go wrong in the agent library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },
    /// A setting or argument that cannot work.
    #[error("{0}")]
    Config(String),
    /// A response action that could not be carried out (whole or in part), and why.
    #[error("{0}")]
    Action(String),
    #[error("not enrolled: {} does not exist; run `rampart-agent enroll` first", .0.display())]
    NotEnrolled(PathBuf),
    /// The server answered, and refused.
    #[error("the server refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// The server could not be reached, or its answer could not be read.
    #[error("network: {0}")]
    Network(String),
    #[error("another rampart-agent is using {}", .0.display())]
    Locked(PathBuf),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps an I/O error to [`Error::Io`] with what was being done.
pub fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Maps a JSON error to [`Error::Json`] with what was being read or written.
pub fn json_err(context: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
    let context = context.into();
    move |source| Error::Json { context, source }
}
