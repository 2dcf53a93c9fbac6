//! The `.npy`, `.npz` and CSV readers return errors, never panic, on arbitrary input.

use proptest::prelude::*;

fn npy_header(descr: &str, shape: &str) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_as_npy(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        std::fs::write(&p, &bytes).unwrap();
        let _ = sb_data::read_points(&p, None);
        let _ = sb_data::read_labels(&p);
    }

    /// A valid header with a shape and a body that need not agree, including shapes far larger
/// than the file (which must be refused before anything is allocated).
    #[test]
    fn valid_header_arbitrary_body(
        descr in prop::sample::select(vec!["<f8", "<f4", "<i8", "|u1", ">f8", "<c16"]),
        rows in prop_oneof![0u64..5, Just(1u64 << 40), Just(u64::MAX)],
        cols in prop_oneof![0u64..4, Just(1u64 << 33)], one_d in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let shape = if one_d { format!("({rows},)") } else { format!("({rows}, {cols})") };
        let mut bytes = npy_header(descr, &shape);
        bytes.extend(body);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        std::fs::write(&p, &bytes).unwrap();
        let _ = sb_data::read_points(&p, None);
        let _ = sb_data::read_labels(&p);
    }

    /// An `.npz` whose member declares a huge shape is refused with an error, never an abort
    /// (the reader would otherwise try to allocate what the header says), stored or deflated.
    #[test]
    fn valid_npz_huge_header(
        rows in prop_oneof![0u64..5, Just(1u64 << 40), Just(u64::MAX)],
        cols in prop_oneof![1u64..4, Just(1u64 << 33)],
        body in proptest::collection::vec(any::<u8>(), 0..200),
        deflate in any::<bool>(),
    ) {
        use std::io::Write;
        let mut npy = npy_header("<f8", &format!("({rows}, {cols})"));
        npy.extend(body);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npz");
        let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
        let mut w = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
        w.start_file("a.npy", zip::write::SimpleFileOptions::default().compression_method(method)).unwrap();
        w.write_all(&npy).unwrap();
        w.finish().unwrap();
        let r = sb_data::read_points(&p, None);
        if rows.saturating_mul(cols) > 1000 {
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_as_npz(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npz");
        std::fs::write(&p, &bytes).unwrap();
        let _ = sb_data::read_points(&p, None);
        let _ = sb_data::read_points(&p, Some("a"));
    }

    #[test]
    fn arbitrary_text_as_csv(text in "[0-9a-z,.\\-e\" \n\r]{0,200}", label in prop::option::of("[a-z]{1,3}")) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, &text).unwrap();
        let _ = sb_data::read_points(&p, None);
        let _ = sb_data::read_csv(&p, label.as_deref());
    }
}
