//! What the fixture-reading tests share.

use std::path::{Path, PathBuf};

use ndarray::Array2;

/// The folder of the reference fixtures (POT, SciPy).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A point cloud fixture, by file name.
pub fn load(name: &str) -> Array2<f64> {
    sb_data::read_points(&fixtures().join(name), None).expect("fixture")
}
