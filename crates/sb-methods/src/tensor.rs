//! Conversions between host arrays (`ndarray`, `f32`) and candle tensors, and seeded noise.

use candle_core::{CpuStorage, DType, Device, Layout, Storage, Tensor};
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

/// Whether a tensor can take the fused CPU paths (network, Adam, EMA): f32 on the CPU.
pub(crate) fn is_cpu_f32(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// The f32 values of a contiguous CPU storage, as candle hands it to a custom op; `what`
/// names the tensor in the error.
pub(crate) fn host_values<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("the {what} must be contiguous"),
    }
}

/// [`host_values`], to update in place.
pub(crate) fn host_values_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<&'a mut [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("the {what} must be contiguous")
    };
    match storage {
        CpuStorage::F32(data) => Ok(&mut data[start..end]),
        _ => candle_core::bail!("the {what} must be f32"),
    }
}

/// Runs `f` on the f32 values of contiguous CPU tensors (read-locked meanwhile).
pub(crate) fn with_host_values<R>(
    tensors: &[&Tensor],
    what: &str,
    f: impl FnOnce(Vec<&[f32]>) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let slices = guards
        .iter()
        .map(|(storage, layout)| match &**storage {
            Storage::Cpu(cpu) => host_values(cpu, layout, what),
            _ => candle_core::bail!("the {what} must be on the CPU"),
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    f(slices)
}
