use std::path::PathBuf;

/// Everything that can go wrong when loading or drawing data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A file was read but its content is not what was expected.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A value in a file is NaN or infinite.
    #[error("{path}: row {}, column {} is {value} (counting from 1); data must be finite", row + 1, column + 1)]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Zero-based row (shown counting from 1, as every message about a row does).
        row: usize,
        /// Zero-based column (shown counting from 1).
        column: usize,
        /// The value found.
        value: f64,
    },
    /// A file or selection holds no points.
    #[error("{what} holds no points")]
    Empty {
        /// What is empty (a file, a day of a time course).
        what: String,
    },
    /// A parameter of a distribution is invalid.
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    pub(crate) fn format(path: &std::path::Path, message: impl Into<String>) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
