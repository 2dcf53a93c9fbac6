//! Pictures of a trained bridge, as PNG and SVG, drawn with an embedded font (DejaVu Sans)
//! so that no system font library is needed.
//!
//! `samples.png` / `samples.svg` in a model directory: two panels, forward (π0 → π1) and
//! backward (π1 → π0), each with true samples of the target (grey), generated samples (blue)
//! and a few whole trajectories (red). Above two dimensions, points are projected on the
//! first two principal components of the true target samples. Leave-one-out models also get
//! `prediction.png` / `prediction.svg`: the predicted cells of the held-out time against the
//! cells observed then.

use std::path::Path;
use std::sync::Once;

use ndarray::{Array2, ArrayView2};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{Result, RunnerError};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is valid; a failure here would only lose the labels.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// What one panel shows.
pub struct Panel<'a> {
    /// The panel's title.
    pub title: String,
    /// True samples of the target distribution.
    pub truth: ArrayView2<'a, f64>,
    /// Generated samples.
    pub generated: ArrayView2<'a, f64>,
    /// Trajectories: one row per particle, steps × d values.
    pub trajectories: ArrayView2<'a, f64>,
}

/// Projects points on the first two principal components of `reference` (identity in 2-D).
fn projector(
    reference: ArrayView2<'_, f64>,
) -> Result<impl Fn(ArrayView2<'_, f64>) -> Array2<f64>> {
    let d = reference.ncols();
    let mean = reference
        .mean_axis(ndarray::Axis(0))
        .unwrap_or_else(|| ndarray::Array1::zeros(d));
    let basis: Array2<f64> = if d <= 2 {
        Array2::eye(d)
    } else {
        let cov = sb_eval::summary::covariance(reference)?;
        let (_, vectors) = sb_eval::linalg::sym_eigen(&cov)?;
        // Eigenvalues ascend: the last two columns are the leading components.
        let mut b = Array2::zeros((d, 2));
        b.column_mut(0).assign(&vectors.column(d - 1));
        b.column_mut(1).assign(&vectors.column(d - 2));
        b
    };
    Ok(move |x: ArrayView2<'_, f64>| {
        if d <= 2 {
            let mut out = x.to_owned();
            if d == 1 {
                out = ndarray::concatenate![ndarray::Axis(1), out, Array2::zeros((x.nrows(), 1))];
            }
            out
        } else {
            (&x - &mean).dot(&basis)
        }
    })
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel<'_>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err =
        |e: DrawingAreaErrorKind<DB::ErrorType>| RunnerError::Input(format!("drawing a plot: {e}"));
    let project = projector(panel.truth)?;
    let truth = project(panel.truth);
    let generated = project(panel.generated);
    let d = panel.truth.ncols();
    let steps = panel.trajectories.ncols().checked_div(d).unwrap_or(0);
    let paths: Vec<Array2<f64>> = panel
        .trajectories
        .rows()
        .into_iter()
        .map(|row| {
            let states = row
                .to_owned()
                .into_shape_with_order((steps, d))
                .expect("steps × d values");
            project(states.view())
        })
        .collect();
    let all = || truth.rows().into_iter().chain(generated.rows());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for r in all() {
        x0 = x0.min(r[0]);
        x1 = x1.max(r[0]);
        y0 = y0.min(r[1]);
        y1 = y1.max(r[1]);
    }
    let pad = |a: f64, b: f64| 0.05 * (b - a).max(1e-6);
    let (px, py) = (pad(x0, x1), pad(y0, y1));
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
        .map_err(err)?;
    let (xl, yl) = if d > 2 {
        ("PC 1", "PC 2")
    } else {
        ("x1", "x2")
    };
    chart
        .configure_mesh()
        .x_desc(xl)
        .y_desc(yl)
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    let grey = RGBColor(150, 150, 150).mix(0.5);
    chart
        .draw_series(
            truth
                .rows()
                .into_iter()
                .map(|r| Circle::new((r[0], r[1]), 2, grey.filled())),
        )
        .map_err(err)?
        .label("true")
        .legend(move |(x, y)| Circle::new((x, y), 3, grey.filled()));
    let blue = RGBColor(31, 119, 180).mix(0.6);
    chart
        .draw_series(
            generated
                .rows()
                .into_iter()
                .map(|r| Circle::new((r[0], r[1]), 1, blue.filled())),
        )
        .map_err(err)?
        .label("generated")
        .legend(move |(x, y)| Circle::new((x, y), 3, blue.filled()));
    let red = RGBColor(214, 39, 40);
    for (k, path) in paths.iter().enumerate() {
        let series = chart
            .draw_series(LineSeries::new(
                path.rows().into_iter().map(|r| (r[0], r[1])),
                red.stroke_width(1),
            ))
            .map_err(err)?;
        if k == 0 {
            series
                .label("trajectories")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], red));
        }
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 12))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, panels: &[Panel<'_>]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err =
        |e: DrawingAreaErrorKind<DB::ErrorType>| RunnerError::Input(format!("drawing a plot: {e}"));
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel)?;
    }
    root.present().map_err(err)
}

/// Writes `<stem>.png` and `<stem>.svg` with one panel per entry of `panels`.
///
/// # Errors
/// A file cannot be written, or the points are unusable (fewer than two true samples).
pub fn samples_figure(dir: &Path, stem: &str, panels: &[Panel<'_>]) -> Result<()> {
    register_font();
    let size = (560 * panels.len().max(1) as u32, 520);
    let png = dir.join(format!("{stem}.png"));
    writable(&png)?;
    draw(BitMapBackend::new(&png, size).into_drawing_area(), panels)
        .map_err(|e| with_path(&png, e))?;
    let svg = dir.join(format!("{stem}.svg"));
    writable(&svg)?;
    draw(SVGBackend::new(&svg, size).into_drawing_area(), panels).map_err(|e| with_path(&svg, e))
}

/// Number of whole trajectories saved and drawn per direction.
pub const TRAJECTORIES: usize = 16;

/// Flattens a simulation's states into one row per particle (steps × d values).
pub fn trajectory_rows(states: &[Array2<f32>]) -> Array2<f32> {
    let (k, d) = states.first().map_or((0, 0), |s| s.dim());
    Array2::from_shape_fn((k, states.len() * d), |(i, j)| states[j / d][[i, j % d]])
}

/// Draws `samples.png` and `samples.svg` in a model directory from the files `sb run` saved
/// there (`forward.npy`, `backward.npy`, `truth_*.npy`, `trajectories_*.npy`).
///
/// # Errors
/// A missing or unreadable file, or a drawing error.
pub fn plot_model(dir: &Path) -> Result<()> {
    let read = |name: &str| sb_data::read_points(&dir.join(name), None).map_err(RunnerError::from);
    let (fwd, bwd) = (read("forward.npy")?, read("backward.npy")?);
    let (tf, tb) = (read("truth_forward.npy")?, read("truth_backward.npy")?);
    let (jf, jb) = (
        read("trajectories_forward.npy")?,
        read("trajectories_backward.npy")?,
    );
    let panels = [
        Panel {
            title: "forward: π0 → π1".into(),
            truth: tf.view(),
            generated: fwd.view(),
            trajectories: jf.view(),
        },
        Panel {
            title: "backward: π1 → π0".into(),
            truth: tb.view(),
            generated: bwd.view(),
            trajectories: jb.view(),
        },
    ];
    samples_figure(dir, "samples", &panels)?;
    if image_side(tb.ncols()).is_some() {
        images_figure(&dir.join("images.png"), bwd.view(), tb.view(), jb.view())?;
    }
    // Inverse problems on image rows: completions of the first observations (one row of
    // draws each) above their true images.
    let (generated, truth) = (
        dir.join("inpaint_generated.npy"),
        dir.join("inpaint_truth.npy"),
    );
    if generated.is_file() && truth.is_file() {
        let (g, t) = (read("inpaint_generated.npy")?, read("inpaint_truth.npy")?);
        let none = Array2::<f64>::zeros((0, t.ncols()));
        images_figure(&dir.join("inpaint.png"), g.view(), t.view(), none.view())?;
    }
    // Leave-one-out models: the prediction of the held-out time against the cells observed
    // then (`prediction.png` / `.svg`).
    let (predicted, held_out) = (dir.join("predicted.npy"), dir.join("held_out.npy"));
    if predicted.is_file() && held_out.is_file() {
        let (p, h) = (read("predicted.npy")?, read("held_out.npy")?);
        let none = Array2::<f64>::zeros((0, h.ncols()));
        let panel = Panel {
            title: "held-out time: predicted (blue) against observed (grey)".into(),
            truth: h.view(),
            generated: p.view(),
            trajectories: none.view(),
        };
        samples_figure(dir, "prediction", std::slice::from_ref(&panel))?;
    }
    Ok(())
}

/// The side `k` of square images of `d = k²` pixels (k ≥ 8), if the points are such images.
fn image_side(d: usize) -> Option<usize> {
    let k = (d as f64).sqrt().round() as usize;
    (k >= 8 && k * k == d).then_some(k)
}

/// Cells of the image figure: images per row, rows of generated and of true images, states
/// shown per trajectory.
const GRID: (usize, usize, usize) = (8, 4, 8);

/// The inpainting picture: observations shown, and completions of each (one row of the image
/// figure per observation).
pub const INPAINT_GRID: (usize, usize) = (GRID.1, GRID.0);

/// `images.png` for points that are square images (d = k², k ≥ 8): generated π0 images (top
/// rows), true test images (middle rows) and backward trajectories, one per row, from the π1
/// start (left) to the generated image (right). Grey levels span the true images' range.
///
/// # Errors
/// A file cannot be written.
pub fn images_figure(
    path: &Path,
    generated: ArrayView2<'_, f64>,
    truth: ArrayView2<'_, f64>,
    trajectories: ArrayView2<'_, f64>,
) -> Result<()> {
    let d = truth.ncols();
    let Some(k) = image_side(d) else {
        return Ok(());
    };
    let (per_row, rows, states) = GRID;
    let lo = truth.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = truth.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(1e-12);
    let steps = trajectories.ncols().checked_div(d).unwrap_or(0);
    let n_traj = trajectories.nrows().min(per_row);
    let cell = 4 * k + 4;
    let total_rows = 2 * rows + n_traj + 1;
    let size = (
        (per_row.max(states) * cell) as u32,
        (total_rows * cell) as u32,
    );
    writable(path)?;
    let root = BitMapBackend::new(path, size).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| {
        with_path(path, RunnerError::Input(format!("drawing images: {e}")))
    };
    root.fill(&WHITE).map_err(err)?;
    let draw_image = |row: usize, col: usize, pixels: &[f64]| -> Result<()> {
        let (x0, y0) = ((col * cell + 2) as i32, (row * cell + 2) as i32);
        for (j, &v) in pixels.iter().enumerate() {
            let g = (255.0 * (1.0 - ((v - lo) / span).clamp(0.0, 1.0))) as u8;
            let (px, py) = (x0 + 4 * (j % k) as i32, y0 + 4 * (j / k) as i32);
            root.draw(&Rectangle::new(
                [(px, py), (px + 4, py + 4)],
                RGBColor(g, g, g).filled(),
            ))
            .map_err(err)?;
        }
        Ok(())
    };
    for (block, points) in [(0, generated), (rows, truth)] {
        for i in 0..(rows * per_row).min(points.nrows()) {
            let image: Vec<f64> = points.row(i).to_vec();
            draw_image(block + i / per_row, i % per_row, &image)?;
        }
    }
    for t in 0..n_traj {
        for c in 0..states.min(steps) {
            // Evenly spaced states from the start to the end.
            let s = if states > 1 {
                c * (steps - 1) / (states - 1)
            } else {
                0
            };
            let image: Vec<f64> = trajectories
                .row(t)
                .slice(ndarray::s![s * d..(s + 1) * d])
                .to_vec();
            draw_image(2 * rows + 1 + t, c, &image)?;
        }
    }
    root.present().map_err(err)
}

/// One method's curve: its name and `(pass, W2 forward, W2 backward)` points.
type Curve = (String, Vec<(f64, f64, f64)>);

/// Per-pass W2 of every method of a benchmark, averaged over seeds.
fn pass_metrics(run_dir: &Path, benchmark: &str) -> Vec<Curve> {
    use std::collections::BTreeMap;
    let mut by_method: BTreeMap<String, BTreeMap<u64, Vec<(f64, f64)>>> = BTreeMap::new();
    for dir in crate::layout::find_models(run_dir) {
        let Ok(text) = std::fs::read_to_string(dir.join("model.yaml")) else {
            continue;
        };
        let Ok(spec) = serde_yaml::from_str::<crate::layout::ModelSpec>(&text) else {
            continue;
        };
        if spec.benchmark != benchmark {
            continue;
        }
        let Ok(log) = std::fs::read_to_string(dir.join("metrics_log.jsonl")) else {
            continue;
        };
        for line in log.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let (Some(p), Some(f), Some(b)) = (
                v["pass"].as_u64(),
                v["w2_forward"].as_f64(),
                v["w2_backward"].as_f64(),
            ) {
                by_method
                    .entry(spec.method.clone())
                    .or_default()
                    .entry(p)
                    .or_default()
                    .push((f, b));
            }
        }
    }
    by_method
        .into_iter()
        .map(|(m, passes)| {
            let points = passes
                .into_iter()
                .map(|(p, v)| {
                    let n = v.len() as f64;
                    (
                        p as f64,
                        v.iter().map(|x| x.0).sum::<f64>() / n,
                        v.iter().map(|x| x.1).sum::<f64>() / n,
                    )
                })
                .collect();
            (m, points)
        })
        .collect()
}

fn draw_progress<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    benchmark: &str,
    series: &[Curve],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err =
        |e: DrawingAreaErrorKind<DB::ErrorType>| RunnerError::Input(format!("drawing a plot: {e}"));
    root.fill(&WHITE).map_err(err)?;
    let areas = root.split_evenly((1, 2));
    let max_pass = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .fold(1.0, f64::max);
    for (k, (area, title)) in areas
        .iter()
        .zip(["W2 forward (generated π1)", "W2 backward (generated π0)"])
        .enumerate()
    {
        let value = |x: &(f64, f64, f64)| if k == 0 { x.1 } else { x.2 };
        let top = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(value))
            .fold(0.0, f64::max)
            * 1.1
            + 1e-9;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{benchmark}: {title}"), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.5..(max_pass + 0.5), 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("pass (iteration = ⌈pass / 2⌉)")
            .y_desc("W2")
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        for (i, (method, points)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|x| (x.0, value(x))),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(method.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|x| Circle::new((x.0, value(x)), 3, color.filled())),
                )
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 12))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// Draws `progress_<benchmark>.png` and `.svg` in the run directory: exact W2 after each pass
/// for every method of the benchmark (averaged over seeds), IPF and IMF methods on one chart.
///
/// # Errors
/// A drawing or file error. A benchmark without per-pass logs draws nothing.
pub fn progress_chart(run_dir: &Path, benchmark: &str) -> Result<()> {
    let series = pass_metrics(run_dir, benchmark);
    if series.is_empty() {
        return Ok(());
    }
    register_font();
    let stem = format!("progress_{}", crate::layout::slug(benchmark));
    let size = (1120, 480);
    let png = run_dir.join(format!("{stem}.png"));
    writable(&png)?;
    draw_progress(
        BitMapBackend::new(&png, size).into_drawing_area(),
        benchmark,
        &series,
    )
    .map_err(|e| with_path(&png, e))?;
    let svg = run_dir.join(format!("{stem}.svg"));
    writable(&svg)?;
    draw_progress(
        SVGBackend::new(&svg, size).into_drawing_area(),
        benchmark,
        &series,
    )
    .map_err(|e| with_path(&svg, e))
}

/// Creates (or truncates) `path` first, so that a folder that cannot be written is reported
/// as a plain I/O error naming the file, not as the plotting library's nested error.
fn writable(path: &Path) -> Result<()> {
    std::fs::File::create(path)
        .map(drop)
        .map_err(|e| RunnerError::io(path, e))
}

/// A drawing error with the file it was drawing.
fn with_path(path: &Path, e: RunnerError) -> RunnerError {
    match e {
        RunnerError::Input(message) => RunnerError::io(path, message),
        other => other,
    }
}

#[cfg(test)]
mod write_errors {
    use super::*;

    /// A figure that cannot be written is one I/O error naming the file, not the plotting
    /// library's nested Debug text.
    #[test]
    fn an_unwritable_figure_names_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("no/such/folder");
        let points = ndarray::Array2::<f64>::zeros((4, 2));
        let panel = Panel {
            title: "t".into(),
            truth: points.view(),
            generated: points.view(),
            trajectories: points.view(),
        };
        let err = samples_figure(&missing, "samples", &[panel])
            .unwrap_err()
            .to_string();
        let want = missing.join("samples.png").display().to_string();
        assert!(err.contains(&want), "{err}");
        assert!(
            !err.contains("IoError") && !err.contains("Custom {"),
            "{err}"
        );
    }
}
