use std::path::PathBuf;

/// Everything the runner can report to its user (the front ends show these messages as they are).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The experiment file is malformed or holds an invalid value.
    #[error("{file}: {message}")]
    Config {
        /// The experiment file.
        file: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Bad input to a subcommand (a flag's value, an input array).
    #[error("{0}")]
    Input(String),
    /// Training or sampling failed.
    #[error(transparent)]
    Method(#[from] sb_methods::MethodError),
    /// Data could not be loaded.
    #[error(transparent)]
    Data(#[from] sb_data::DataError),
    /// A metric could not be computed.
    #[error("evaluation: {0}")]
    Eval(#[from] sb_eval::EvalError),
}

impl RunnerError {
    /// An I/O error naming the file or folder.
    pub fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Reads and parses `path` if it is a file (`None` if it is not there): an unreadable or
/// unparsable file is an error naming it.
pub fn read_if_present<T, E: std::fmt::Display>(
    path: &std::path::Path,
    parse: impl FnOnce(&str) -> std::result::Result<T, E>,
) -> Result<Option<T>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| RunnerError::io(path, e))?;
    parse(&text).map(Some).map_err(|e| RunnerError::Config {
        file: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, RunnerError>;
