//! Data sources for Schrödinger-bridge problems.
//!
//! A bridge problem joins two distributions, π0 and π1, each given here as a
//! [`Distribution`]: a Gaussian, a Gaussian mixture, one of the classic 2-D toys
//! (moons, S-curve, eight Gaussians, checkerboard, Swiss roll, circles), a point
//! cloud read from `.npy`, `.npz` or CSV, or one day of a labelled time course.
//!
//! Every random draw in the project goes through [`SbRng`], one seeded ChaCha
//! generator, so that a seed fixes a run exactly (candle's own CPU generator
//! cannot be seeded).
//!
//! ```
//! use sb_data::{Distribution, SbRng};
//!
//! let moons = Distribution::Moons { noise: 0.1 };
//! let mut rng = SbRng::new(7);
//! let x = moons.sample(500, &mut rng).unwrap();
//! assert_eq!(x.dim(), (500, 2));
//! ```
//!
//! Point clouds are `ndarray::Array2<f64>` of shape `(n, d)`: one row a point.

mod course;
mod distribution;
mod error;
mod io;
mod rng;
mod split;
mod timecourse;
mod toys;

pub use course::{differentiation, CourseSpec};
pub use distribution::{
    haar_rotation, Component, Distribution, GaussianParameters, MatrixSpec, Source, VectorSpec,
};
pub use error::DataError;
pub use io::{
    absolute, read_csv, read_csv_with, read_labels, read_points, read_points_with, write_points,
    CsvData, ReadOptions,
};
pub use rng::SbRng;
pub use split::{Split, SplitSpec};
pub use timecourse::TimeCourse;
