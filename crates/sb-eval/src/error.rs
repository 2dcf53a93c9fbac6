/// Why a metric cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// An input holds no points.
    #[error("{0} holds no points")]
    EmptyInput(&'static str),
    /// Inputs have incompatible shapes.
    #[error("shape mismatch: {0}")]
    ShapeMismatch(String),
    /// An input holds NaN or infinity.
    #[error("{what} holds a non-finite value at row {} (counting from 1)", row + 1)]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Zero-based row (shown counting from 1).
        row: usize,
    },
    /// An input has the right shape but an invalid value.
    #[error("{0}")]
    Invalid(String),
    /// A computation would need more memory than the system has available.
    #[error("{what} needs {} but {} of memory is available", crate::memory::human_bytes(*needed), crate::memory::human_bytes(*available))]
    TooLarge {
        /// What would be allocated.
        what: String,
        /// Bytes it needs.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
}

pub(crate) fn check_cloud(
    what: &'static str,
    x: ndarray::ArrayView2<'_, f64>,
) -> Result<(), EvalError> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(EvalError::EmptyInput(what));
    }
    for (row, r) in x.rows().into_iter().enumerate() {
        if r.iter().any(|v| !v.is_finite()) {
            return Err(EvalError::NonFinite { what, row });
        }
    }
    Ok(())
}

/// Checks two clouds for emptiness, finiteness and equal dimension.
pub(crate) fn check_pair(
    a: ndarray::ArrayView2<'_, f64>,
    b: ndarray::ArrayView2<'_, f64>,
) -> Result<(), EvalError> {
    check_cloud("the first cloud", a)?;
    check_cloud("the second cloud", b)?;
    if a.ncols() != b.ncols() {
        return Err(EvalError::ShapeMismatch(format!(
            "dimension {} against {}",
            a.ncols(),
            b.ncols()
        )));
    }
    Ok(())
}

/// Checks that a cost matrix is non-empty and finite.
pub(crate) fn check_cost(cost: ndarray::ArrayView2<'_, f64>) -> Result<(), EvalError> {
    if cost.is_empty() {
        return Err(EvalError::EmptyInput("the cost matrix"));
    }
    if let Some(row) = cost
        .rows()
        .into_iter()
        .position(|r| r.iter().any(|v| !v.is_finite()))
    {
        return Err(EvalError::NonFinite {
            what: "the cost matrix",
            row,
        });
    }
    Ok(())
}
