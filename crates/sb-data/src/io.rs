//! Readers and writers for point clouds and labels: `.npy`, `.npz` and CSV.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use ndarray::{Array1, Array2, ArrayView2, Axis, Ix1, Ix2};
use ndarray_npy::{NpzReader, ReadNpyError, ReadNpzError, ReadableElement};

use crate::DataError;

/// How to read a data file beyond its path: the `.npz` member, and for CSV the separator
/// and the columns to leave out. The defaults read a `.npy`, a one-array `.npz`, or a
/// comma-separated file (tab-separated for `.tsv`) using every column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadOptions {
    /// The array's name inside an `.npz` archive (required when it holds more than one).
    pub key: Option<String>,
    /// The CSV field separator; `None` is `,` (tab for `.tsv` files).
    pub delimiter: Option<char>,
    /// CSV columns to leave out, by header name (an index column, metadata).
    pub drop_columns: Vec<String>,
}

impl ReadOptions {
    /// Options naming only an `.npz` member.
    pub fn key(key: Option<&str>) -> Self {
        Self {
            key: key.map(str::to_string),
            ..Self::default()
        }
    }
}

/// Reads a point cloud of shape `(n, d)` from a `.npy`, `.npz` or `.csv` file.
///
/// `.npy` files may hold float32 or float64 arrays, 2-D or 1-D (read as `(n, 1)`).
/// For `.npz`, `key` names the array (required when the archive holds more than one).
/// A CSV file must have a header row and numeric columns; every column is read.
///
/// # Errors
/// A missing file, an unsupported dtype or shape, an empty array, or a NaN or
/// infinite value, each naming the file.
pub fn read_points(path: &Path, key: Option<&str>) -> Result<Array2<f64>, DataError> {
    read_points_with(path, &ReadOptions::key(key))
}

/// [`read_points`] with every reading option: CSV and TSV files honour `delimiter` and
/// `drop_columns`.
///
/// # Errors
/// As [`read_points`]; a CSV option given for a binary file.
pub fn read_points_with(path: &Path, options: &ReadOptions) -> Result<Array2<f64>, DataError> {
    let ext = extension(path);
    if !matches!(ext.as_str(), "csv" | "tsv" | "txt")
        && (options.delimiter.is_some() || !options.drop_columns.is_empty())
    {
        return Err(DataError::format(
            path,
            "`delimiter` and `drop_columns` apply to CSV/TSV files; this is not one",
        ));
    }
    let points = match ext.as_str() {
        "npy" => read_npy_f64(path)?,
        "npz" => read_npz_f64(path, options.key.as_deref())?,
        "csv" | "tsv" | "txt" => read_csv_with(path, None, options)?.points,
        other => {
            return Err(DataError::format(
                path,
                format!("unsupported file type `.{other}`; expected .npy, .npz, .csv or .tsv"),
            ))
        }
    };
    check_points(path, &points)?;
    Ok(points)
}

/// Reads one label per row from a `.npy` file of integers (any width, signed or not),
/// booleans or floats, of shape `(n,)` or `(n, 1)`.
///
/// # Errors
/// A missing file, an unsupported dtype, another shape, or a non-finite label.
pub fn read_labels(path: &Path) -> Result<Vec<f64>, DataError> {
    let labels = read_any_1d(path)?;
    for (row, v) in labels.iter().enumerate() {
        if !v.is_finite() {
            return Err(DataError::NonFinite {
                path: path.to_path_buf(),
                row,
                column: 0,
                value: *v,
            });
        }
    }
    Ok(labels)
}

/// A CSV table read as points, with an optional label column set apart.
#[derive(Clone, Debug)]
pub struct CsvData {
    /// The numeric columns other than the label, shape `(n, d)`.
    pub points: Array2<f64>,
    /// The names of the point columns, in order.
    pub columns: Vec<String>,
    /// The label column's values, if one was named.
    pub labels: Option<Vec<f64>>,
}

/// Reads a CSV file with a header row; `label_column`, if given, is split off as labels.
///
/// # Errors
/// A missing file or column, a non-numeric cell (named by row and column), ragged rows,
/// no data rows, or a non-finite value.
pub fn read_csv(path: &Path, label_column: Option<&str>) -> Result<CsvData, DataError> {
    read_csv_with(path, label_column, &ReadOptions::default())
}

/// [`read_csv`] with a separator and columns to leave out.
///
/// A first column without a name (how pandas writes its index) is refused unless
/// `drop_columns` names it (`""`), and every non-numeric column is named in one error.
/// Rows are counted from 1, the header not counted.
///
/// # Errors
/// As [`read_csv`]; a dropped column that does not exist.
pub fn read_csv_with(
    path: &Path,
    label_column: Option<&str>,
    options: &ReadOptions,
) -> Result<CsvData, DataError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let delimiter = match options.delimiter {
        Some(c) if c.is_ascii() => c as u8,
        Some(c) => {
            return Err(DataError::format(
                path,
                format!("delimiter `{c}` is not a single ASCII character"),
            ))
        }
        None if extension(path) == "tsv" => b'\t',
        None => b',',
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .delimiter(delimiter)
        .from_reader(file);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| DataError::format(path, format!("cannot read the header row: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    for name in &options.drop_columns {
        if !header.contains(name) {
            return Err(DataError::format(
                path,
                format!("drop_columns: no column named `{name}`; the columns are {header:?}"),
            ));
        }
    }
    let dropped = |h: &String| options.drop_columns.contains(h);
    if let Some(first) = header.first() {
        if (first.is_empty() || first == "Unnamed: 0") && !dropped(first) {
            return Err(DataError::format(
                path,
                format!(
                    "the first column has no name{}, as pandas writes its row index; leave it out with `drop_columns: [\"{first}\"]` (or write the file with `index=False`)",
                    if first.is_empty() { String::new() } else { format!(" (`{first}`)") }
                ),
            ));
        }
    }
    if header.len() == 1 && delimiter == b',' && header[0].contains(['\t', ';']) {
        return Err(DataError::format(
            path,
            format!(
                "one column named `{}`: the file looks separated by tabs or semicolons; set `delimiter`",
                header[0]
            ),
        ));
    }
    let label_index = match label_column {
        Some(name) => Some(header.iter().position(|h| h == name).ok_or_else(|| {
            DataError::format(
                path,
                format!("no column named `{name}`; the columns are {header:?}"),
            )
        })?),
        None => None,
    };
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| Some(i) != label_index && !dropped(&header[i]))
        .collect();
    let columns: Vec<String> = keep.iter().map(|&i| header[i].clone()).collect();
    if columns.is_empty() {
        return Err(DataError::format(
            path,
            "no data columns left besides the label and the dropped ones",
        ));
    }
    let mut values = Vec::new();
    let mut labels = Vec::new();
    let mut rows = 0usize;
    // The first non-numeric cell of each column, so that one error names them all.
    let mut text: BTreeMap<usize, (usize, String)> = BTreeMap::new();
    for (row, record) in reader.records().enumerate() {
        let record =
            record.map_err(|e| DataError::format(path, format!("row {}: {e}", row + 1)))?;
        for (col, cell) in record.iter().enumerate() {
            if dropped(&header[col]) {
                continue;
            }
            let Ok(v) = cell.parse::<f64>() else {
                text.entry(col).or_insert((row + 1, cell.to_string()));
                continue;
            };
            if !v.is_finite() {
                return Err(DataError::NonFinite {
                    path: path.to_path_buf(),
                    row,
                    column: col,
                    value: v,
                });
            }
            if Some(col) == label_index {
                labels.push(v);
            } else {
                values.push(v);
            }
        }
        rows += 1;
    }
    if !text.is_empty() {
        let found: Vec<String> = text
            .iter()
            .map(|(col, (row, cell))| format!("`{}` (row {row}: `{cell}`)", header[*col]))
            .collect();
        let names: Vec<&str> = text.keys().map(|c| header[*c].as_str()).collect();
        let hint = if text.contains_key(&label_index.unwrap_or(usize::MAX)) {
            "; the time column must hold numbers".to_string()
        } else {
            format!(
                "; leave {} out with `drop_columns: [{}]`",
                if names.len() == 1 { "it" } else { "them" },
                names.join(", ")
            )
        };
        return Err(DataError::format(
            path,
            format!(
                "{} not numeric: {}{hint}",
                if text.len() == 1 {
                    "one column is"
                } else {
                    "columns are"
                },
                found.join(", ")
            ),
        ));
    }
    if rows == 0 {
        return Err(DataError::Empty {
            what: path.display().to_string(),
        });
    }
    let points = Array2::from_shape_vec((rows, columns.len()), values)
        .map_err(|e| DataError::format(path, e.to_string()))?;
    Ok(CsvData {
        points,
        columns,
        labels: label_index.map(|_| labels),
    })
}

/// Writes a point cloud as a float32 `.npy` file, atomically (temporary file, then rename).
///
/// # Errors
/// The file cannot be written.
pub fn write_points(path: &Path, points: ArrayView2<'_, f32>) -> Result<(), DataError> {
    let tmp = path.with_extension("npy.tmp");
    ndarray_npy::write_npy(&tmp, &points.to_owned()).map_err(|e| io_error(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

/// `path` read relative to `base` (an absolute path stays as it is), without `.` and `..`
/// where the file exists.
pub fn absolute(base: &Path, path: &Path) -> std::path::PathBuf {
    let joined = base.join(path);
    joined.canonicalize().unwrap_or(joined)
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn check_points(path: &Path, points: &Array2<f64>) -> Result<(), DataError> {
    if points.nrows() == 0 || points.ncols() == 0 {
        return Err(DataError::Empty {
            what: path.display().to_string(),
        });
    }
    for ((row, column), v) in points.indexed_iter() {
        if !v.is_finite() {
            return Err(DataError::NonFinite {
                path: path.to_path_buf(),
                row,
                column,
                value: *v,
            });
        }
    }
    Ok(())
}

fn column(a: Array1<f64>) -> Array2<f64> {
    a.insert_axis(Axis(1))
}

/// Refuses an `.npy` file whose header declares more data than the file holds, before any
/// reader allocates memory for it (a corrupt shape would otherwise abort the process).
/// Headers it cannot parse are left to the reader, which reports them.
fn check_npy_size(path: &Path) -> Result<(), DataError> {
    let mut f = File::open(path).map_err(|e| io_error(path, e))?;
    let file_len = f.metadata().map_err(|e| io_error(path, e))?.len();
    check_npy_stream(path, &mut f, file_len, "the file")
}

/// The check of [`check_npy_size`] on an `.npy` stream of `len` bytes (a file, or a member
/// of an `.npz` archive); `what` names the container in the message.
fn check_npy_stream(
    path: &Path,
    r: &mut impl std::io::Read,
    len: u64,
    what: &str,
) -> Result<(), DataError> {
    let mut prefix = [0u8; 12];
    if r.read_exact(&mut prefix).is_err() || &prefix[..6] != b"\x93NUMPY" {
        return Ok(());
    }
    let (header_len, start) = match prefix[6] {
        1 => (u64::from(u16::from_le_bytes([prefix[8], prefix[9]])), 10u64),
        2 | 3 => (
            u64::from(u32::from_le_bytes([
                prefix[8], prefix[9], prefix[10], prefix[11],
            ])),
            12u64,
        ),
        _ => return Ok(()),
    };
    if header_len > 1 << 20 || start + header_len > len {
        return Err(DataError::format(
            path,
            format!("the .npy header is longer than {what}"),
        ));
    }
    // The 12 bytes read hold the first 2 header bytes of a version-1 file.
    let mut header = prefix[start as usize..].to_vec();
    header.resize(header_len as usize, 0);
    let already = 12 - start as usize;
    if header.len() > already && r.read_exact(&mut header[already..]).is_err() {
        return Ok(());
    }
    let header = String::from_utf8_lossy(&header);
    let Some(item) = npy_item_size(&header) else {
        return Ok(());
    };
    let Some(count) = npy_shape(&header)
        .and_then(|dims| dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)))
    else {
        return Ok(());
    };
    let needed = count.saturating_mul(item);
    let available = len - start - header_len;
    if needed > available {
        return Err(DataError::format(
            path,
            format!("the header declares {count} values ({needed} bytes) but {what} holds {available} bytes of data"),
        ));
    }
    Ok(())
}

/// Deflate expands at most ~1032:1; a member declaring more is corrupt.
const MAX_DEFLATE_RATIO: u64 = 1100;

/// [`check_npy_size`] for the member `name` of an `.npz` archive: its header must not
/// declare more data than the member's uncompressed size, which must itself be one its
/// compressed bytes can hold.
fn check_npz_member(path: &Path, name: &str) -> Result<(), DataError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let Ok(mut zip) = zip::ZipArchive::new(file) else {
        return Ok(());
    };
    // NpzReader lists members without their `.npy` suffix.
    let full = if zip.index_for_name(name).is_some() {
        name.to_string()
    } else {
        format!("{name}.npy")
    };
    let Ok(mut member) = zip.by_name(&full) else {
        return Ok(());
    };
    let (size, packed) = (member.size(), member.compressed_size());
    if size
        > packed
            .saturating_mul(MAX_DEFLATE_RATIO)
            .saturating_add(1 << 16)
    {
        return Err(DataError::format(
            path,
            format!("member `{name}` declares {size} bytes, more than its {packed} compressed bytes can hold"),
        ));
    }
    check_npy_stream(path, &mut member, size, &format!("member `{name}`"))
}

/// The item size in bytes from the header's `'descr': '<f8'` (the trailing digits).
fn npy_item_size(header: &str) -> Option<u64> {
    let rest = &header[header.find("'descr'")? + 7..];
    let open = rest.find('\'')? + 1;
    let close = open + rest[open..].find('\'')?;
    let descr = &rest[open..close];
    let digits: String = descr.chars().skip_while(|c| !c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// The dimensions from the header's `'shape': (n, d)`.
fn npy_shape(header: &str) -> Option<Vec<u64>> {
    let rest = &header[header.find("'shape'")? + 7..];
    let open = rest.find('(')? + 1;
    let close = open + rest[open..].find(')')?;
    rest[open..close]
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().ok())
        .collect()
}

/// Reads a float array, trying float64 then float32, 2-D then 1-D.
fn read_npy_f64(path: &Path) -> Result<Array2<f64>, DataError> {
    if !path.exists() {
        return Err(io_error(path, "no such file"));
    }
    check_npy_size(path)?;
    if let Some(a) = try_npy::<f64, Ix2>(path)? {
        return Ok(a);
    }
    if let Some(a) = try_npy::<f32, Ix2>(path)? {
        return Ok(a.mapv(f64::from));
    }
    if let Some(a) = try_npy::<f64, Ix1>(path)? {
        return Ok(column(a));
    }
    if let Some(a) = try_npy::<f32, Ix1>(path)? {
        return Ok(column(a.mapv(f64::from)));
    }
    Err(DataError::format(
        path,
        "expected a float32 or float64 array of shape (n, d) or (n,)",
    ))
}

fn try_npy<T: ReadableElement, D: ndarray::Dimension>(
    path: &Path,
) -> Result<Option<ndarray::Array<T, D>>, DataError> {
    match ndarray_npy::read_npy::<_, ndarray::Array<T, D>>(path) {
        Ok(a) => Ok(Some(a)),
        Err(ReadNpyError::WrongDescriptor(_) | ReadNpyError::WrongNdim(_, _)) => Ok(None),
        Err(ReadNpyError::Io(e)) => Err(io_error(path, e)),
        Err(e) => Err(DataError::format(
            path,
            format!("not a valid .npy file: {e}"),
        )),
    }
}

fn read_any_1d(path: &Path) -> Result<Vec<f64>, DataError> {
    if !path.exists() {
        return Err(io_error(path, "no such file"));
    }
    check_npy_size(path)?;
    macro_rules! attempt {
        ($($t:ty => $conv:expr),* $(,)?) => {$(
            if let Some(a) = try_npy::<$t, Ix1>(path)? {
                return Ok(a.iter().map($conv).collect());
            }
            if let Some(a) = try_npy::<$t, Ix2>(path)? {
                if a.ncols() == 1 {
                    return Ok(a.iter().map($conv).collect());
                }
                return Err(DataError::format(
                    path,
                    format!("labels must be one per row, of shape (n,) or (n, 1); got shape ({}, {})", a.nrows(), a.ncols()),
                ));
            }
        )*};
    }
    attempt!(
        i64 => |&v| v as f64,
        i32 => |&v| f64::from(v),
        i16 => |&v| f64::from(v),
        i8 => |&v| f64::from(v),
        u64 => |&v| v as f64,
        u32 => |&v| f64::from(v),
        u16 => |&v| f64::from(v),
        u8 => |&v| f64::from(v),
        bool => |&v| f64::from(u8::from(v)),
        f64 => |&v| v,
        f32 => |&v| f64::from(v),
    );
    Err(DataError::format(
        path,
        "expected labels of an integer, boolean or float dtype, shape (n,) or (n, 1)",
    ))
}

fn read_npz_f64(path: &Path, key: Option<&str>) -> Result<Array2<f64>, DataError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let bad = |e: ReadNpzError| DataError::format(path, format!("not a valid .npz file: {e}"));
    let mut npz = NpzReader::new(file).map_err(bad)?;
    let names = npz.names().map_err(bad)?;
    let name = match key {
        Some(k) => {
            let k_npy = format!("{k}.npy");
            names
                .iter()
                .find(|n| *n == k || **n == k_npy)
                .cloned()
                .ok_or_else(|| {
                    DataError::format(path, format!("no array `{k}`; the archive holds {names:?}"))
                })?
        }
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(DataError::format(
                path,
                format!("the archive holds {names:?}; name one with `key`"),
            ))
        }
    };
    check_npz_member(path, &name)?;
    macro_rules! attempt {
        ($t:ty, $d:ty, $conv:expr) => {
            match npz.by_name::<ndarray::OwnedRepr<$t>, $d>(&name) {
                Ok(a) => return Ok($conv(a)),
                Err(ReadNpzError::Npy(
                    ReadNpyError::WrongDescriptor(_) | ReadNpyError::WrongNdim(_, _),
                )) => {}
                Err(e) => return Err(bad(e)),
            }
        };
    }
    attempt!(f64, Ix2, |a: Array2<f64>| a);
    attempt!(f32, Ix2, |a: Array2<f32>| a.mapv(f64::from));
    attempt!(f64, Ix1, column);
    attempt!(f32, Ix1, |a: Array1<f32>| column(a.mapv(f64::from)));
    Err(DataError::format(
        path,
        format!("array `{name}` is not a float32 or float64 array of shape (n, d) or (n,)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn npy_roundtrip_f32_and_f64() {
        let dir = tempfile::tempdir().unwrap();
        let p64 = dir.path().join("a.npy");
        ndarray_npy::write_npy(&p64, &array![[1.0f64, 2.0], [3.0, 4.0]]).unwrap();
        assert_eq!(
            read_points(&p64, None).unwrap(),
            array![[1.0, 2.0], [3.0, 4.0]]
        );
        let p32 = dir.path().join("b.npy");
        write_points(&p32, array![[1.5f32], [2.5]].view()).unwrap();
        assert_eq!(read_points(&p32, None).unwrap(), array![[1.5], [2.5]]);
    }

    #[test]
    fn nan_is_refused_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nan.npy");
        ndarray_npy::write_npy(&p, &array![[1.0f64, 2.0], [f64::NAN, 4.0]]).unwrap();
        let e = read_points(&p, None).unwrap_err().to_string();
        assert!(
            e.contains("row 2, column 1 is NaN (counting from 1)"),
            "{e}"
        );
    }

    #[test]
    fn csv_with_label_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "x,day,y\n1,0,2\n3,1,4\n").unwrap();
        let d = read_csv(&p, Some("day")).unwrap();
        assert_eq!(d.points, array![[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(d.labels, Some(vec![0.0, 1.0]));
        assert_eq!(d.columns, vec!["x", "y"]);
        let e = read_csv(&p, Some("time")).unwrap_err().to_string();
        assert!(e.contains("no column named `time`"), "{e}");
    }

    #[test]
    fn csv_bad_cell_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "x,y\n1,2\n3,abc\n").unwrap();
        let e = read_csv(&p, None).unwrap_err().to_string();
        assert!(
            e.contains("one column is not numeric: `y` (row 2: `abc`)"),
            "{e}"
        );
    }

    #[test]
    fn csv_options_tsv_dropped_columns_and_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.tsv");
        std::fs::write(&p, "id\tx\ty\n7\t1\t2\n8\t3\t4\n").unwrap();
        let opts = ReadOptions {
            drop_columns: vec!["id".into()],
            ..ReadOptions::default()
        };
        assert_eq!(
            read_points_with(&p, &opts).unwrap(),
            array![[1.0, 2.0], [3.0, 4.0]]
        );
        // pandas' index column: refused with the way out, then dropped when named.
        let q = dir.path().join("pandas.csv");
        std::fs::write(&q, ",x\n0,1.5\n1,2.5\n").unwrap();
        let e = read_points(&q, None).unwrap_err().to_string();
        assert!(e.contains("drop_columns: [\"\"]"), "{e}");
        let opts = ReadOptions {
            drop_columns: vec![String::new()],
            ..ReadOptions::default()
        };
        assert_eq!(read_points_with(&q, &opts).unwrap(), array![[1.5], [2.5]]);
        // A semicolon file read with commas says so.
        let r = dir.path().join("semi.csv");
        std::fs::write(&r, "x;y\n1;2\n").unwrap();
        let e = read_points(&r, None).unwrap_err().to_string();
        assert!(e.contains("set `delimiter`"), "{e}");
        let opts = ReadOptions {
            delimiter: Some(';'),
            ..ReadOptions::default()
        };
        assert_eq!(read_points_with(&r, &opts).unwrap(), array![[1.0, 2.0]]);
    }

    #[test]
    fn every_non_numeric_column_is_named_in_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "x,kind,y,batch\n1,a,2,b1\n3,b,4,b2\n").unwrap();
        let e = read_points(&p, None).unwrap_err().to_string();
        assert!(
            e.contains("columns are not numeric: `kind` (row 1: `a`), `batch` (row 1: `b1`); leave them out with `drop_columns: [kind, batch]`"),
            "{e}"
        );
    }

    #[test]
    fn labels_of_any_integer_bool_or_float_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.npy");
        ndarray_npy::write_npy(&p, &array![0u8, 2, 4]).unwrap();
        assert_eq!(read_labels(&p).unwrap(), vec![0.0, 2.0, 4.0]);
        ndarray_npy::write_npy(&p, &array![true, false]).unwrap();
        assert_eq!(read_labels(&p).unwrap(), vec![1.0, 0.0]);
        ndarray_npy::write_npy(&p, &array![[1i16], [3]]).unwrap();
        assert_eq!(read_labels(&p).unwrap(), vec![1.0, 3.0]);
        ndarray_npy::write_npy(&p, &array![[1u32, 2], [3, 4]]).unwrap();
        let e = read_labels(&p).unwrap_err().to_string();
        assert!(e.contains("shape (2, 2)"), "{e}");
    }

    #[test]
    fn missing_file_is_named() {
        let e = read_points(Path::new("/no/such.npy"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/such.npy"), "{e}");
    }
}
