//! Conversions between host arrays (`ndarray`, `f32`) and candle tensors, and seeded noise.

use candle_core::{Device, Tensor};
use ndarray::Array2;
use sb_data::SbRng;

use crate::Result;

/// Copies a host matrix `(n, d)` into a tensor of the same shape.
pub fn to_tensor(a: &Array2<f32>, device: &Device) -> Result<Tensor> {
    let owned;
    let slice = match a.as_slice() {
        Some(s) => s,
        None => {
            owned = a.as_standard_layout().into_owned();
            owned.as_slice().expect("standard layout is contiguous")
        }
    };
    Ok(Tensor::from_slice(slice, a.dim(), device)?)
}

/// Copies a 2-D tensor back to a host matrix.
pub fn to_array(t: &Tensor) -> Result<Array2<f32>> {
    let (n, d) = t.dims2()?;
    let v = t.flatten_all()?.to_vec1::<f32>()?;
    Ok(Array2::from_shape_vec((n, d), v).expect("tensor size matches its shape"))
}

/// Standard normal noise of shape `(n, d)` drawn from the project's generator.
pub fn normal(n: usize, d: usize, rng: &mut SbRng, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(rng.normal_f32(n * d), (n, d), device)?)
}

/// Casts a float64 host matrix to float32.
pub fn to_f32(a: &Array2<f64>) -> Array2<f32> {
    a.mapv(|v| v as f32)
}

/// Whether every entry of a host matrix is finite.
pub fn all_finite(a: &Array2<f32>) -> bool {
    a.iter().all(|v| v.is_finite())
}
