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
    #[error("{path}: row {row}, column {column} is {value}; data must be finite")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
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
