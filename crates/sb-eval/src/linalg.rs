//! Symmetric matrix functions by eigendecomposition (faer), never a general `sqrtm`.

use faer::{Mat, Side};
use ndarray::{Array1, Array2};

use crate::EvalError;

/// Eigenvalues (ascending) and eigenvectors (columns) of the symmetric part `(A + Aᵀ)/2`.
///
/// # Errors
/// A non-square or non-finite matrix, or an eigensolver failure.
pub fn sym_eigen(a: &Array2<f64>) -> Result<(Array1<f64>, Array2<f64>), EvalError> {
    let n = a.nrows();
    if a.ncols() != n {
        return Err(EvalError::ShapeMismatch(format!(
            "expected a square matrix, got {}×{}",
            n,
            a.ncols()
        )));
    }
    if a.iter().any(|v| !v.is_finite()) {
        return Err(EvalError::NonFinite {
            what: "a matrix",
            row: 0,
        });
    }
    let m = Mat::<f64>::from_fn(n, n, |i, j| 0.5 * (a[[i, j]] + a[[j, i]]));
    let eig = m
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| EvalError::ShapeMismatch(format!("eigendecomposition failed: {e:?}")))?;
    let s = eig.S().column_vector();
    let u = eig.U();
    Ok((
        Array1::from_shape_fn(n, |i| s[i]),
        Array2::from_shape_fn((n, n), |(i, j)| u[(i, j)]),
    ))
}

/// `U f(Λ) Uᵀ` for the symmetric part of `a`.
///
/// # Errors
/// As [`sym_eigen`].
pub fn sym_apply(a: &Array2<f64>, f: impl Fn(f64) -> f64) -> Result<Array2<f64>, EvalError> {
    let (values, vectors) = sym_eigen(a)?;
    let scaled = &vectors * &values.mapv(f);
    Ok(scaled.dot(&vectors.t()))
}

/// The symmetric square root of a positive semi-definite matrix; tiny negative eigenvalues
/// (rounding) are clamped to zero.
///
/// # Errors
/// As [`sym_eigen`].
pub fn sqrt_psd(a: &Array2<f64>) -> Result<Array2<f64>, EvalError> {
    sym_apply(a, |l| l.max(0.0).sqrt())
}

/// The inverse of a symmetric positive definite matrix.
///
/// # Errors
/// As [`sym_eigen`], or a non-positive eigenvalue.
pub fn inv_pd(a: &Array2<f64>) -> Result<Array2<f64>, EvalError> {
    pd_apply(a, |l| 1.0 / l)
}

/// The inverse square root of a symmetric positive definite matrix.
///
/// # Errors
/// As [`inv_pd`].
pub fn inv_sqrt_pd(a: &Array2<f64>) -> Result<Array2<f64>, EvalError> {
    pd_apply(a, |l| 1.0 / l.sqrt())
}

/// `ln det A` of a symmetric positive definite matrix.
///
/// # Errors
/// As [`inv_pd`].
pub fn log_det_pd(a: &Array2<f64>) -> Result<f64, EvalError> {
    let (values, _) = sym_eigen(a)?;
    check_pd(&values)?;
    Ok(values.iter().map(|l| l.ln()).sum())
}

fn pd_apply(a: &Array2<f64>, f: impl Fn(f64) -> f64) -> Result<Array2<f64>, EvalError> {
    let (values, vectors) = sym_eigen(a)?;
    check_pd(&values)?;
    let scaled = &vectors * &values.mapv(f);
    Ok(scaled.dot(&vectors.t()))
}

fn check_pd(values: &Array1<f64>) -> Result<(), EvalError> {
    match values.first() {
        Some(&l) if l > 0.0 => Ok(()),
        Some(&l) => Err(EvalError::ShapeMismatch(format!(
            "the matrix must be positive definite; its smallest eigenvalue is {l:e}"
        ))),
        None => Err(EvalError::EmptyInput("the matrix")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn square_root_squares_back() {
        let a = array![[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]];
        let r = sqrt_psd(&a).unwrap();
        let back = r.dot(&r);
        for (x, y) in back.iter().zip(a.iter()) {
            assert!((x - y).abs() < 1e-12);
        }
        let inv = inv_pd(&a).unwrap().dot(&a);
        for ((i, j), v) in inv.indexed_iter() {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((v - want).abs() < 1e-12);
        }
    }
}
