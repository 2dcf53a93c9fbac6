//! The drift MLP on the CPU as one candle operation (the fast path of [`crate::net::DriftNet`]).
//!
//! candle evaluates an MLP one tensor operation at a time: a matrix product, a broadcast bias
//! addition and an activation, each a fresh buffer and a pass through memory, and the backward
//! pass as many again. [`MlpOp`] does the whole stack of `Linear (+ activation)` layers in one
//! custom operation instead:
//!
//! - each product is faer's (about twice the f32 throughput of the `gemm` crate candle uses, on
//!   the development machine) with the bias already in the destination, and the activation is
//!   applied in the same pass that records its derivative, while the rows are still in cache;
//! - the rows are split into blocks that run the whole network on rayon's threads, one block
//!   per thread at training batch sizes;
//! - the backward pass reuses the activations and derivatives saved by the forward pass, and
//!   computes each weight gradient as one product over all rows (split by output, so the
//!   summation order never depends on the number of threads).
//!
//! The parameters enter as one flat vector, `[W₀, b₀, W₁, b₁, …]` with `Wₗ` of shape
//! `(fan_out, fan_in)` row-major, as the network's variables concatenated.
//! [`crate::net::DriftNet::forward_reference`] is the same function built from candle's own
//! operations; the tests below and in `net.rs` check that both agree, values and gradients.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::net::Activation;
use crate::tensor::{host_values, with_host_values};

/// Most rows in one block of the forward pass: a 256 × 256 block of activations (256 KiB)
/// stays in a core's L2 cache between the product and the activation.
const MAX_BLOCK_ROWS: usize = 256;

/// Fewest rows worth a block of their own.
const MIN_BLOCK_ROWS: usize = 16;

/// The shapes of an MLP: `widths[0]` inputs, `widths[L]` outputs, `L` linear layers, an
/// activation after every layer but the last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MlpShape {
    widths: Vec<usize>,
}

impl MlpShape {
    /// The MLP with these layer widths (at least an input and an output width).
    pub(crate) fn new(widths: Vec<usize>) -> Self {
        assert!(widths.len() >= 2, "an MLP has an input and an output width");
        Self { widths }
    }

    fn layers(&self) -> usize {
        self.widths.len() - 1
    }

    fn fan_in(&self, layer: usize) -> usize {
        self.widths[layer]
    }

    fn fan_out(&self, layer: usize) -> usize {
        self.widths[layer + 1]
    }

    fn input_width(&self) -> usize {
        self.widths[0]
    }

    fn output_width(&self) -> usize {
        self.widths[self.layers()]
    }

    fn param_count(&self) -> usize {
        (0..self.layers())
            .map(|l| self.fan_out(l) * (self.fan_in(l) + 1))
            .sum()
    }

    /// Splits a flat parameter vector `[W₀, b₀, W₁, b₁, …]` into layers.
    fn split<'a>(&self, flat: &'a [f32]) -> Params<'a> {
        let mut layers = Vec::with_capacity(2 * self.layers());
        let mut rest = flat;
        for l in 0..self.layers() {
            for len in [self.fan_out(l) * self.fan_in(l), self.fan_out(l)] {
                let (head, tail) = rest.split_at(len);
                layers.push(head);
                rest = tail;
            }
        }
        Params(layers)
    }
}

/// The parameters as host slices, in the network's variable order: `W₀, b₀, W₁, b₁, …`,
/// `Wₗ` of shape `(fan_out, fan_in)` row-major.
#[derive(Clone, Debug)]
pub(crate) struct Params<'a>(pub(crate) Vec<&'a [f32]>);

impl Params<'_> {
    fn weight(&self, layer: usize) -> &[f32] {
        self.0[2 * layer]
    }

    fn bias(&self, layer: usize) -> &[f32] {
        self.0[2 * layer + 1]
    }
}

/// What the backward pass needs from the forward pass, for every hidden layer `l`: its output
/// `h[l] = act(z)` and the derivative `d[l] = act'(z)`, both `(rows, width)` row-major.
#[derive(Debug)]
struct Saved {
    h: Vec<Vec<f32>>,
    d: Vec<Vec<f32>>,
}

/// The network's function: shapes and activation, with the forward and backward kernels.
#[derive(Clone, Debug)]
pub(crate) struct Mlp {
    shape: MlpShape,
    activation: Activation,
}

/// The MLP `(input, flat params) ↦ output` as a candle operation with a backward pass.
///
/// One instance serves one forward call: it keeps that call's activations (when `keep` is
/// set) until the backward pass takes them.
#[derive(Debug)]
pub(crate) struct MlpOp {
    mlp: Mlp,
    keep: bool,
    saved: Mutex<Option<Saved>>,
}

impl MlpOp {
    /// An operation for one forward call; `keep` saves what a backward pass needs (pass
    /// `false` when no gradient will be asked for, as when sampling).
    pub(crate) fn new(mlp: Mlp, keep: bool) -> Self {
        Self {
            mlp,
            keep,
            saved: Mutex::new(None),
        }
    }
}

impl Mlp {
    /// The MLP of these layer widths, with `activation` after every layer but the last.
    pub(crate) fn new(widths: Vec<usize>, activation: Activation) -> Self {
        Self {
            shape: MlpShape::new(widths),
            activation,
        }
    }

    /// Mean squared error against `target` (`(rows, widths[L])`) and its gradient for each
    /// parameter, in one forward and one backward pass with nothing else in between.
    pub(crate) fn mse_gradients(
        &self,
        input: &[f32],
        params: &Params<'_>,
        target: &[f32],
    ) -> (f64, Vec<Vec<f32>>) {
        let (out, saved) = self.run_forward(input, params, true);
        let saved = saved.expect("kept");
        let scale = 2.0 / out.len() as f32;
        let mut sum = 0f64;
        let grad_out: Vec<f32> = out
            .iter()
            .zip(target)
            .map(|(o, t)| {
                let e = o - t;
                sum += f64::from(e * e);
                scale * e
            })
            .collect();
        let (grads, _) = self.run_backward(input, params, &saved, &grad_out, false);
        (sum / out.len() as f64, grads)
    }

    /// The forward pass on host slices: `input` is `(rows, widths[0])`, and the result
    /// `(rows, widths[L])`; with `keep`, also what the backward pass needs.
    fn run_forward(
        &self,
        input: &[f32],
        params: &Params<'_>,
        keep: bool,
    ) -> (Vec<f32>, Option<Saved>) {
        let shape = &self.shape;
        let rows = input.len() / shape.input_width();
        let mut out = vec![0f32; rows * shape.output_width()];
        let block = block_rows(rows);
        if !keep {
            out.par_chunks_mut(block * shape.output_width())
                .zip(input.par_chunks(block * shape.input_width()))
                .for_each(|(out, x)| self.forward_block(x, params, out, None));
            return (out, None);
        }
        let hidden = shape.layers() - 1;
        let mut saved = Saved {
            h: (0..hidden)
                .map(|l| vec![0f32; rows * shape.fan_out(l)])
                .collect(),
            d: (0..hidden)
                .map(|l| vec![0f32; rows * shape.fan_out(l)])
                .collect(),
        };
        // One row block's share of every saved array.
        let blocks = rows.div_ceil(block);
        let mut shares: Vec<BlockSaved<'_>> = (0..blocks)
            .map(|_| BlockSaved {
                h: Vec::with_capacity(hidden),
                d: Vec::with_capacity(hidden),
            })
            .collect();
        for (l, (h, d)) in saved.h.iter_mut().zip(saved.d.iter_mut()).enumerate() {
            let width = shape.fan_out(l);
            for (share, (h, d)) in shares
                .iter_mut()
                .zip(h.chunks_mut(block * width).zip(d.chunks_mut(block * width)))
            {
                share.h.push(h);
                share.d.push(d);
            }
        }
        out.par_chunks_mut(block * shape.output_width())
            .zip(input.par_chunks(block * shape.input_width()))
            .zip(shares.into_par_iter())
            .for_each(|((out, x), share)| self.forward_block(x, params, out, Some(share)));
        (out, Some(saved))
    }

    /// The whole network on one block of rows. Without `saved`, two scratch buffers take
    /// turns holding the hidden layers.
    fn forward_block(
        &self,
        x: &[f32],
        params: &Params<'_>,
        out: &mut [f32],
        saved: Option<BlockSaved<'_>>,
    ) {
        let shape = &self.shape;
        let rows = x.len() / shape.input_width();
        let last = shape.layers() - 1;
        match saved {
            Some(BlockSaved { mut h, mut d }) => {
                for l in 0..last {
                    let (done, rest) = h.split_at_mut(l);
                    let input: &[f32] = if l == 0 { x } else { &*done[l - 1] };
                    linear(shape, params, l, input, &mut *rest[0], rows);
                    self.activation
                        .apply_with_derivative(&mut *rest[0], &mut *d[l]);
                }
                let input: &[f32] = if last == 0 { x } else { &*h[last - 1] };
                linear(shape, params, last, input, out, rows);
            }
            None => {
                let widest = shape.widths[1..=last].iter().copied().max().unwrap_or(0);
                let mut a = vec![0f32; rows * widest];
                let mut b = vec![0f32; rows * widest];
                for l in 0..last {
                    let width = shape.fan_out(l);
                    let dst = &mut b[..rows * width];
                    let input: &[f32] = if l == 0 {
                        x
                    } else {
                        &a[..rows * shape.fan_in(l)]
                    };
                    linear(shape, params, l, input, dst, rows);
                    self.activation.apply(dst);
                    std::mem::swap(&mut a, &mut b);
                }
                let input: &[f32] = if last == 0 {
                    x
                } else {
                    &a[..rows * shape.fan_in(last)]
                };
                linear(shape, params, last, input, out, rows);
            }
        }
    }

    /// The backward pass on host slices: the gradient of each parameter (in [`Params`]
    /// order), and of the input when `want_input` is set.
    fn run_backward(
        &self,
        input: &[f32],
        params: &Params<'_>,
        saved: &Saved,
        grad_out: &[f32],
        want_input: bool,
    ) -> (Vec<Vec<f32>>, Option<Vec<f32>>) {
        let shape = &self.shape;
        let rows = input.len() / shape.input_width();
        let threads = rayon::current_num_threads().max(1);
        let mut grads: Vec<Vec<f32>> = params.0.iter().map(|p| vec![0f32; p.len()]).collect();
        let mut delta = grad_out.to_vec();
        let block = block_rows(rows);
        for l in (0..shape.layers()).rev() {
            let (fan_in, fan_out) = (shape.fan_in(l), shape.fan_out(l));
            let layer_input: &[f32] = if l == 0 { input } else { &saved.h[l - 1] };
            let (gw, gb) = grads[2 * l..2 * l + 2].split_at_mut(1);
            let (gw, gb) = (&mut gw[0], &mut gb[0]);
            // ∂W = δᵀ · input, one product over all rows, its output rows split across threads.
            let per_thread = fan_out.div_ceil(threads);
            gw.par_chunks_mut(per_thread * fan_in)
                .enumerate()
                .for_each(|(i, gw)| {
                    let outputs = gw.len() / fan_in;
                    matmul(
                        MatMut::from_row_major_slice_mut(gw, outputs, fan_in),
                        Accum::Replace,
                        MatRef::from_row_major_slice(&delta, rows, fan_out)
                            .subcols(i * per_thread, outputs)
                            .transpose(),
                        MatRef::from_row_major_slice(layer_input, rows, fan_in),
                        1.0f32,
                        Par::Seq,
                    );
                });
            column_sums(&delta, fan_out, gb);
            if l == 0 && !want_input {
                break;
            }
            // δ ← (δ · W) ⊙ act'(z) of the layer below, block by block.
            let weight = params.weight(l);
            let mut below = vec![0f32; rows * fan_in];
            let derivative: Option<&[f32]> = (l > 0).then(|| saved.d[l - 1].as_slice());
            below
                .par_chunks_mut(block * fan_in)
                .zip(delta.par_chunks(block * fan_out))
                .enumerate()
                .for_each(|(i, (dst, delta))| {
                    let r = delta.len() / fan_out;
                    matmul(
                        MatMut::from_row_major_slice_mut(dst, r, fan_in),
                        Accum::Replace,
                        MatRef::from_row_major_slice(delta, r, fan_out),
                        MatRef::from_row_major_slice(weight, fan_out, fan_in),
                        1.0f32,
                        Par::Seq,
                    );
                    if let Some(d) = derivative {
                        let (start, len) = (i * block * fan_in, dst.len());
                        for (g, d) in dst.iter_mut().zip(&d[start..start + len]) {
                            *g *= d;
                        }
                    }
                });
            delta = below;
        }
        let grad_input = (want_input).then_some(delta);
        (grads, grad_input)
    }
}

/// One row block's slices of the saved arrays.
struct BlockSaved<'a> {
    h: Vec<&'a mut [f32]>,
    d: Vec<&'a mut [f32]>,
}

/// Rows per block: one block per thread, at least [`MIN_BLOCK_ROWS`] and at most
/// [`MAX_BLOCK_ROWS`].
fn block_rows(rows: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    rows.div_ceil(threads)
        .clamp(MIN_BLOCK_ROWS, MAX_BLOCK_ROWS)
        .max(1)
}

/// `dst = x · Wₗᵀ + bₗ` for `rows` rows: the bias is written first and the product added.
fn linear(
    shape: &MlpShape,
    params: &Params<'_>,
    layer: usize,
    x: &[f32],
    dst: &mut [f32],
    rows: usize,
) {
    let (fan_in, fan_out) = (shape.fan_in(layer), shape.fan_out(layer));
    let bias = params.bias(layer);
    for row in dst.chunks_exact_mut(fan_out) {
        row.copy_from_slice(bias);
    }
    matmul(
        MatMut::from_row_major_slice_mut(dst, rows, fan_out),
        Accum::Add,
        MatRef::from_row_major_slice(x, rows, fan_in),
        MatRef::from_row_major_slice(params.weight(layer), fan_out, fan_in).transpose(),
        1.0f32,
        Par::Seq,
    );
}

/// `sums[j] = Σᵢ m[i, j]` for a row-major matrix with `width` columns.
fn column_sums(m: &[f32], width: usize, sums: &mut [f32]) {
    sums.fill(0.0);
    for row in m.chunks_exact(width) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
}

impl Activation {
    /// Applies the activation in place.
    fn apply(self, z: &mut [f32]) {
        pulp::Arch::new().dispatch(ActivationPass {
            activation: self,
            z,
            derivative: None,
        });
    }

    /// Applies the activation in place and writes its derivative at the input into `d`.
    fn apply_with_derivative(self, z: &mut [f32], d: &mut [f32]) {
        pulp::Arch::new().dispatch(ActivationPass {
            activation: self,
            z,
            derivative: Some(d),
        });
    }
}

/// One pass of an activation over a buffer. Run through `pulp`'s dispatch, the loop is
/// compiled once per instruction set (AVX2, AVX-512) and the best one the CPU has is picked
/// at run time, so the branch-free [`exp`] below vectorises at full width.
struct ActivationPass<'a> {
    activation: Activation,
    z: &'a mut [f32],
    derivative: Option<&'a mut [f32]>,
}

impl pulp::WithSimd for ActivationPass<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let z = self.z;
        match (self.activation, self.derivative) {
            (Activation::Silu, None) => z.iter_mut().for_each(|v| *v *= sigmoid(*v)),
            (Activation::Relu, None) => z.iter_mut().for_each(|v| *v = v.max(0.0)),
            (Activation::Tanh, None) => z.iter_mut().for_each(|v| *v = tanh(*v)),
            (Activation::Gelu, None) => z.iter_mut().for_each(|v| *v = gelu(*v).0),
            (Activation::Silu, Some(d)) => z.iter_mut().zip(d).for_each(|(v, d)| {
                let s = sigmoid(*v);
                *d = s * (1.0 + *v * (1.0 - s));
                *v *= s;
            }),
            (Activation::Relu, Some(d)) => z.iter_mut().zip(d).for_each(|(v, d)| {
                *d = if *v > 0.0 { 1.0 } else { 0.0 };
                *v = v.max(0.0);
            }),
            (Activation::Tanh, Some(d)) => z.iter_mut().zip(d).for_each(|(v, d)| {
                let t = tanh(*v);
                *d = 1.0 - t * t;
                *v = t;
            }),
            (Activation::Gelu, Some(d)) => z.iter_mut().zip(d).for_each(|(v, d)| {
                let (g, dg) = gelu(*v);
                *d = dg;
                *v = g;
            }),
        }
    }
}

/// `eˣ` for f32, written without branches or calls so that it vectorises: `x = n ln 2 + r`
/// with `|r| ≤ ln 2 / 2`, `eʳ` by Cephes' degree-7 polynomial, `2ⁿ` built in the
/// exponent bits. Relative error below 3·10⁻⁷ on `[−87, 88]` (tested); the input is clamped
/// there (`e⁻⁸⁷ ≈ 1.6·10⁻³⁸` is just above the smallest normal f32, `1.2·10⁻³⁸`).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2²³: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // The low bits of `shifted` hold n (in two's complement around 1.5 · 2²³): rebias them
    // to the exponent of 2ⁿ without a float-to-integer conversion (which does not vectorise).
    let scale = f32::from_bits(shifted.to_bits().wrapping_sub(0x4B40_0000 - 127) << 23);
    er * scale
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    // 1 − 2 / (e²ˣ + 1), odd by construction; exact ±1 far out.
    let y = x.abs();
    let t = 1.0 - 2.0 / (exp(2.0 * y) + 1.0);
    t.copysign(x)
}

/// The tanh approximation of GELU (candle's `gelu`) and its derivative.
#[inline(always)]
fn gelu(x: f32) -> (f32, f32) {
    const C: f32 = 0.797_884_6; // √(2/π)
    const A: f32 = 0.044_715;
    let u = C * x * (1.0 + A * x * x);
    let t = tanh(u);
    let g = 0.5 * x * (1.0 + t);
    let du = C * (1.0 + 3.0 * A * x * x);
    (g, 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
}

impl CustomOp2 for MlpOp {
    fn name(&self) -> &'static str {
        "mlp"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let input = host_values(s1, l1, "network input")?;
        let flat = host_values(s2, l2, "network parameters")?;
        let (rows, width) = l1.shape().dims2()?;
        let shape = &self.mlp.shape;
        if width != shape.input_width() || flat.len() != shape.param_count() {
            candle_core::bail!(
                "mlp: input width {width} and {} parameters for widths {:?}",
                flat.len(),
                shape.widths
            );
        }
        let (out, saved) = self.mlp.run_forward(input, &shape.split(flat), self.keep);
        *self
            .saved
            .lock()
            .expect("the saved activations' lock is never poisoned") = saved;
        Ok((
            CpuStorage::F32(out),
            Shape::from((rows, shape.output_width())),
        ))
    }

    fn bwd(
        &self,
        input: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let want_input = input.track_op();
        let taken = self
            .saved
            .lock()
            .expect("the saved activations' lock is never poisoned")
            .take();
        let (x, flat, g) = (
            input.contiguous()?,
            params.contiguous()?,
            grad_res.contiguous()?,
        );
        let (grads, grad_input) = with_host_values(&[&x, &flat, &g], "network tensors", |v| {
            let (x, p, g) = (v[0], self.mlp.shape.split(v[1]), v[2]);
            // A second backward pass through the same call recomputes the activations.
            let recomputed;
            let saved = match &taken {
                Some(s) => s,
                None => {
                    recomputed = self.mlp.run_forward(x, &p, true).1.expect("kept");
                    &recomputed
                }
            };
            Ok(self.mlp.run_backward(x, &p, saved, g, want_input))
        })?;
        let device = input.device();
        let grad_params = Tensor::from_vec(grads.concat(), params.shape(), device)?;
        let grad_input = grad_input
            .map(|g| Tensor::from_vec(g, input.shape(), device))
            .transpose()?;
        Ok((grad_input, Some(grad_params)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_range() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.013;
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert!(exp(-1000.0) > 0.0 && exp(1000.0).is_finite());
        // A NaN stays a NaN (training's divergence check relies on it).
        assert!(exp(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn activations_and_derivatives_match_the_definitions() {
        let h = 1e-3f64;
        for act in [
            Activation::Silu,
            Activation::Relu,
            Activation::Tanh,
            Activation::Gelu,
        ] {
            let exact = |x: f64| -> f64 {
                match act {
                    Activation::Silu => x / (1.0 + (-x).exp()),
                    Activation::Relu => x.max(0.0),
                    Activation::Tanh => x.tanh(),
                    Activation::Gelu => {
                        let c = (2.0 / std::f64::consts::PI).sqrt();
                        0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
                    }
                }
            };
            let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.2 + 0.05).collect();
            let mut v = xs.clone();
            let mut d = vec![0f32; xs.len()];
            act.apply_with_derivative(&mut v, &mut d);
            let mut plain = xs.clone();
            act.apply(&mut plain);
            for ((&x, (&v, &d)), &p) in xs.iter().zip(v.iter().zip(&d)).zip(&plain) {
                let x = f64::from(x);
                let want = exact(x);
                let slope = (exact(x + h) - exact(x - h)) / (2.0 * h);
                assert!(
                    (f64::from(v) - want).abs() < 1e-6 * (1.0 + want.abs()),
                    "{act:?}({x})"
                );
                assert!(
                    (f64::from(p) - want).abs() < 1e-6 * (1.0 + want.abs()),
                    "{act:?}({x})"
                );
                assert!(
                    (f64::from(d) - slope).abs() < 1e-4,
                    "{act:?}'({x}): {d} vs {slope}"
                );
            }
        }
    }
}
