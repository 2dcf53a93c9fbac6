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
//! - in the forward pass alone (sampling, and the op's forward), the rows are split into blocks
//!   that run the whole network on rayon's threads, one block per thread;
//! - the backward pass reuses the activations and derivatives saved by the forward pass; it runs
//!   on fixed blocks of rows, each adding its share of every weight gradient, and the blocks'
//!   shares are summed in a fixed order, so the gradients never depend on the number of threads;
//! - a training step ([`Mlp::mse_gradients`]) runs forward, loss and backward of a block in one
//!   task (blocks of a quarter of the batch, 64 to 256 rows, so a batch of 128 keeps two threads
//!   busy whatever their number): one parallel region for the blocks and one for summing their
//!   partial gradients, instead of two per layer.
//!
//! The parameters enter as one flat vector, `[W₀, b₀, W₁, b₁, …]` with `Wₗ` of shape
//! `(fan_out, fan_in)` row-major, as the network's variables concatenated.
//! [`crate::net::DriftNet::forward_reference`] is the same function built from candle's own
//! operations; the tests below and in `net.rs` check that both agree, values and gradients.

use std::cell::{Cell, RefCell};
use std::ops::Range;
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

/// Rows per block of the backward pass (and of the training step's fused forward and
/// backward): a quarter of the rows, within these bounds. A function of the rows only, so
/// that how the rows are cut, and so the gradients' rounding, never depends on the number of
/// threads.
const GRAD_BLOCK_ROWS: (usize, usize) = (64, 256);

/// See [`GRAD_BLOCK_ROWS`].
fn grad_block_rows(rows: usize) -> usize {
    (rows / 4).clamp(GRAD_BLOCK_ROWS.0, GRAD_BLOCK_ROWS.1)
}

/// Most partial gradients held at once (see [`Mlp::by_blocks`]).
const GRAD_PARTIALS: usize = 16;

thread_local! {
    /// A block's activations, derivatives and output in the fused training step, kept per
    /// thread across steps (every value is written before it is read).
    static ACTIVATIONS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The backward pass's two δ buffers, likewise.
    static DELTAS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// Partial gradients 1, 2, … of [`Mlp::by_blocks`] on the thread that calls it.
    static PARTIALS: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

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

    /// The lengths of `W₀, b₀, W₁, b₁, …` in a flat parameter vector.
    fn lengths(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.layers()).flat_map(|l| [self.fan_out(l) * self.fan_in(l), self.fan_out(l)])
    }

    /// Splits a flat parameter vector `[W₀, b₀, W₁, b₁, …]` into layers.
    fn split<'a>(&self, flat: &'a [f32]) -> Params<'a> {
        let mut rest = flat;
        Params(
            self.lengths()
                .map(|len| {
                    let (head, tail) = rest.split_at(len);
                    rest = tail;
                    head
                })
                .collect(),
        )
    }

    /// [`MlpShape::split`] for a mutable vector (a gradient).
    fn split_mut<'a>(&self, flat: &'a mut [f32]) -> Vec<&'a mut [f32]> {
        cut_mut(flat, self.lengths())
    }

    /// A buffer of `rows × Σ hidden widths` values cut into the hidden layers' `(rows, width)`
    /// arrays.
    fn hidden_rows_mut<'a>(&self, buf: &'a mut [f32], rows: usize) -> Vec<&'a mut [f32]> {
        cut_mut(buf, (0..self.layers() - 1).map(|l| rows * self.fan_out(l)))
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

    /// Mean squared error against `target` (`(rows, widths[L])`) and its gradient, flat in
    /// [`Params`] order. Each block of rows ([`grad_block_rows`]) runs forward, loss and
    /// backward in one task while its activations are still in cache: one parallel region for
    /// the blocks, and one to sum their partial gradients.
    pub(crate) fn mse_gradients(
        &self,
        input: &[f32],
        params: &Params<'_>,
        target: &[f32],
    ) -> (f64, Vec<f32>) {
        let shape = &self.shape;
        let (width_in, width_out) = (shape.input_width(), shape.output_width());
        let rows = input.len() / width_in;
        let scale = 2.0 / (rows * width_out) as f32;
        let (sum, grads) = self.by_blocks(rows, |range, grads, first| {
            let (x, target) = (
                rows_of(input, &range, width_in),
                rows_of(target, &range, width_out),
            );
            let r = range.len();
            ACTIVATIONS.with_borrow_mut(|scratch| {
                let hidden: usize = (0..shape.layers() - 1).map(|l| shape.fan_out(l)).sum();
                let need = r * (2 * hidden + width_out);
                if scratch.len() < need {
                    scratch.resize(need, 0.0);
                }
                let (h, rest) = scratch[..need].split_at_mut(r * hidden);
                let (d, out) = rest.split_at_mut(r * hidden);
                let mut saved = BlockSaved {
                    h: shape.hidden_rows_mut(h, r),
                    d: shape.hidden_rows_mut(d, r),
                };
                self.forward_block(x, params, out, Some(&mut saved));
                let mut sum = 0f64;
                for (o, t) in out.iter_mut().zip(target) {
                    let e = *o - t;
                    sum += f64::from(e * e);
                    *o = scale * e;
                }
                let h: Vec<&[f32]> = saved.h.iter().map(|h| &**h).collect();
                let d: Vec<&[f32]> = saved.d.iter().map(|d| &**d).collect();
                self.backward_block(x, &h, &d, out, params, grads, first, None);
                sum
            })
        });
        (sum / (rows * width_out) as f64, grads)
    }

    /// Runs `block(rows, partial, first)` on rayon's threads for every block of
    /// [`grad_block_rows`] rows, and returns the sum of its values and of its partial gradients.
    ///
    /// Block `b` adds its gradient into partial `b mod P` (`P` at most [`GRAD_PARTIALS`];
    /// `first` tells it to overwrite instead), the blocks of one partial run in order, and the
    /// partials and values are summed in a fixed order: the result never depends on the number
    /// of threads.
    fn by_blocks<F>(&self, rows: usize, block: F) -> (f64, Vec<f32>)
    where
        F: Fn(Range<usize>, &mut [f32], bool) -> f64 + Sync,
    {
        let n = self.shape.param_count();
        let size = grad_block_rows(rows);
        let blocks = rows.div_ceil(size);
        if blocks == 0 {
            return (0.0, vec![0f32; n]);
        }
        let partials = blocks.min(GRAD_PARTIALS);
        // Partial 0 becomes the result; the others live in a buffer kept across calls (taken,
        // not borrowed, so that a call nested through rayon's work stealing gets its own).
        let mut result = vec![0f32; n];
        let mut others = PARTIALS.take();
        if others.len() < (partials - 1) * n {
            others.resize((partials - 1) * n, 0.0);
        }
        let rest = &mut others[..(partials - 1) * n];
        let slices: Vec<&mut [f32]> = std::iter::once(&mut result[..])
            .chain(rest.chunks_mut(n.max(1)))
            .collect();
        let values: Vec<Vec<f64>> = slices
            .into_par_iter()
            .enumerate()
            .map(|(p, grads)| {
                (p..blocks)
                    .step_by(partials)
                    .map(|b| {
                        let range = b * size..((b + 1) * size).min(rows);
                        block(range, grads, b < partials)
                    })
                    .collect()
            })
            .collect();
        let total = (0..blocks)
            .map(|b| values[b % partials][b / partials])
            .sum();
        if partials > 1 {
            const CHUNK: usize = 1 << 14;
            result
                .par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(c, dst)| {
                    for p in 0..partials - 1 {
                        add_assign(dst, &rest[p * n + c * CHUNK..][..dst.len()]);
                    }
                });
        }
        PARTIALS.set(others);
        (total, result)
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
            .for_each(|((out, x), mut share)| self.forward_block(x, params, out, Some(&mut share)));
        (out, Some(saved))
    }

    /// The whole network on one block of rows. Without `saved`, two scratch buffers take
    /// turns holding the hidden layers.
    fn forward_block(
        &self,
        x: &[f32],
        params: &Params<'_>,
        out: &mut [f32],
        saved: Option<&mut BlockSaved<'_>>,
    ) {
        let shape = &self.shape;
        let rows = x.len() / shape.input_width();
        let last = shape.layers() - 1;
        match saved {
            Some(BlockSaved { h, d }) => {
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

    /// The backward pass on host slices: the parameters' gradient (flat, in [`Params`]
    /// order), and the input's when `want_input` is set.
    fn run_backward(
        &self,
        input: &[f32],
        params: &Params<'_>,
        saved: &Saved,
        grad_out: &[f32],
        want_input: bool,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        let shape = &self.shape;
        let (width_in, width_out) = (shape.input_width(), shape.output_width());
        let rows = input.len() / width_in;
        let mut grad_input = want_input.then(|| vec![0f32; rows * width_in]);
        // Each block writes its own rows of the input gradient.
        let shares: Vec<Mutex<&mut [f32]>> = match grad_input.as_mut() {
            Some(g) => g
                .chunks_mut(grad_block_rows(rows) * width_in)
                .map(Mutex::new)
                .collect(),
            None => Vec::new(),
        };
        let (_, grads) = self.by_blocks(rows, |range, grads, first| {
            let h: Vec<&[f32]> = (0..saved.h.len())
                .map(|l| rows_of(&saved.h[l], &range, shape.fan_out(l)))
                .collect();
            let d: Vec<&[f32]> = (0..saved.d.len())
                .map(|l| rows_of(&saved.d[l], &range, shape.fan_out(l)))
                .collect();
            let delta = rows_of(grad_out, &range, width_out);
            let mut share = shares.get(range.start / grad_block_rows(rows)).map(|m| {
                m.lock()
                    .expect("an input-gradient block's lock is never poisoned")
            });
            let grad_input = share.as_mut().map(|g| &mut ***g);
            self.backward_block(
                rows_of(input, &range, width_in),
                &h,
                &d,
                delta,
                params,
                grads,
                first,
                grad_input,
            );
            0.0
        });
        (grads, grad_input)
    }

    /// The backward pass over one block of rows: `x` its input, `h` and `d` its saved
    /// activations and derivatives, `delta` the loss's gradient at the output. Writes (with
    /// `first`) or adds the block's share of every parameter's gradient into `grads` (flat, in
    /// [`Params`] order), and the input's gradient into `grad_input` when given.
    #[allow(clippy::too_many_arguments)]
    fn backward_block(
        &self,
        x: &[f32],
        h: &[&[f32]],
        d: &[&[f32]],
        delta: &[f32],
        params: &Params<'_>,
        grads: &mut [f32],
        first: bool,
        mut grad_input: Option<&mut [f32]>,
    ) {
        let shape = &self.shape;
        let rows = x.len() / shape.input_width();
        let accum = if first { Accum::Replace } else { Accum::Add };
        let mut grads = shape.split_mut(grads);
        let widest = shape.widths.iter().copied().max().unwrap_or(0);
        DELTAS.with_borrow_mut(|scratch| {
            if scratch.len() < 2 * rows * widest {
                scratch.resize(2 * rows * widest, 0.0);
            }
            // δ of the current layer and of the layer below take turns in two halves.
            let (mut current, mut below) = scratch[..2 * rows * widest].split_at_mut(rows * widest);
            current[..delta.len()].copy_from_slice(delta);
            for l in (0..shape.layers()).rev() {
                let (fan_in, fan_out) = (shape.fan_in(l), shape.fan_out(l));
                let delta = &current[..rows * fan_out];
                let layer_input: &[f32] = if l == 0 { x } else { h[l - 1] };
                let (gw, gb) = grads[2 * l..2 * l + 2].split_at_mut(1);
                // ∂W += δᵀ · input over the block's rows; ∂b += the column sums of δ.
                matmul(
                    MatMut::from_row_major_slice_mut(gw[0], fan_out, fan_in),
                    accum,
                    MatRef::from_row_major_slice(delta, rows, fan_out).transpose(),
                    MatRef::from_row_major_slice(layer_input, rows, fan_in),
                    1.0f32,
                    Par::Seq,
                );
                column_sums(delta, fan_out, gb[0], first);
                let dst = if l == 0 {
                    match grad_input {
                        Some(ref mut g) => &mut **g,
                        None => break,
                    }
                } else {
                    &mut below[..rows * fan_in]
                };
                // δ ← (δ · W) ⊙ act'(z) of the layer below.
                matmul(
                    MatMut::from_row_major_slice_mut(dst, rows, fan_in),
                    Accum::Replace,
                    MatRef::from_row_major_slice(delta, rows, fan_out),
                    MatRef::from_row_major_slice(params.weight(l), fan_out, fan_in),
                    1.0f32,
                    Par::Seq,
                );
                if l == 0 {
                    break;
                }
                mul_assign(dst, d[l - 1]);
                std::mem::swap(&mut current, &mut below);
            }
        });
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

/// Consecutive pieces of `buf` of the given lengths.
fn cut_mut(buf: &mut [f32], lengths: impl IntoIterator<Item = usize>) -> Vec<&mut [f32]> {
    let mut rest = buf;
    lengths
        .into_iter()
        .map(|len| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
            rest = tail;
            head
        })
        .collect()
}

/// The rows `range` of a row-major array with `width` columns.
fn rows_of<'a>(a: &'a [f32], range: &Range<usize>, width: usize) -> &'a [f32] {
    &a[range.start * width..range.end * width]
}

/// `sums[j] = Σᵢ m[i, j]` for a row-major matrix with `width` columns (added to `sums`
/// unless `first`).
fn column_sums(m: &[f32], width: usize, sums: &mut [f32], first: bool) {
    if first {
        sums.fill(0.0);
    }
    pulp::Arch::new().dispatch(
        #[inline(always)]
        || {
            for row in m.chunks_exact(width) {
                for (s, v) in sums.iter_mut().zip(row) {
                    *s += v;
                }
            }
        },
    );
}

/// `dst[i] += src[i]`, compiled for the widest vector instructions the CPU has (as every
/// element-wise loop of this module, through `pulp`'s dispatch).
fn add_assign(dst: &mut [f32], src: &[f32]) {
    pulp::Arch::new().dispatch(
        #[inline(always)]
        || dst.iter_mut().zip(src).for_each(|(d, s)| *d += s),
    );
}

/// `dst[i] *= by[i]`, as [`add_assign`].
fn mul_assign(dst: &mut [f32], by: &[f32]) {
    pulp::Arch::new().dispatch(
        #[inline(always)]
        || dst.iter_mut().zip(by).for_each(|(d, b)| *d *= b),
    );
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
        let grad_params = Tensor::from_vec(grads, params.shape(), device)?;
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
