//! IDX files: a generated MNIST-style fixture read back raw and gzipped, and every way a file
//! can be wrong (bad magic, other type, truncated at every byte, trailing data, sizes that
//! overflow or pass the limit, mismatched counts, labels outside the classes) refused with an
//! error naming it, never a panic.

use rensa_data::idx::{Idx, ImageBatch, Images, Labelled, Limits, MNIST_FILES, read_mnist_dir};
use std::path::{Path, PathBuf};

type B = burn::backend::NdArray<f32>;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rensa-idx-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `count` images of 4 x 3 with pixels `(i * 12 + p) * 7 mod 256` and labels `i mod 10`.
fn fixture(count: usize) -> Labelled {
    let pixels = (0..count * 12).map(|k| (k * 7 % 256) as u8).collect();
    let images = Images::new(count, 4, 3, pixels).unwrap();
    Labelled::new(images, (0..count).map(|i| (i % 10) as u8).collect(), 10).unwrap()
}

fn write_set(dir: &Path, train: &Labelled, test: &Labelled, gz: bool) {
    let ext = if gz { ".gz" } else { "" };
    let labels = |l: &Labelled| Idx {
        dims: vec![l.len()],
        data: l.labels.clone(),
    };
    for (name, idx) in MNIST_FILES.iter().zip([
        train.images.to_idx(),
        labels(train),
        test.images.to_idx(),
        labels(test),
    ]) {
        idx.write(&dir.join(format!("{name}{ext}"))).unwrap();
    }
}

fn parse(bytes: &[u8]) -> Result<Idx, String> {
    Idx::parse("test", bytes, Limits::default()).map_err(|e| e.to_string())
}

#[test]
fn a_written_set_reads_back_raw_and_gzipped() {
    let (train, test) = (fixture(23), fixture(7));
    for gz in [false, true] {
        let dir = temp_dir(if gz { "gz" } else { "raw" });
        write_set(&dir, &train, &test, gz);
        let split = read_mnist_dir(&dir).unwrap();
        assert_eq!(split.train, train);
        assert_eq!(split.test, test);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // the layout as the original MNIST files have it
    let bytes = test.images.to_idx().to_bytes().unwrap();
    assert_eq!(
        &bytes[..16],
        &[0, 0, 8, 3, 0, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0, 3]
    );
    assert_eq!(bytes.len(), 16 + 7 * 12);
}

#[test]
fn batches_scale_pixels_to_unit_range() {
    let set = fixture(3);
    let items = set.items();
    let refs: Vec<_> = items.iter().collect();
    let batch = ImageBatch::of(&refs);
    let device = Default::default();
    assert_eq!(batch.grid::<B>(&device).dims(), [3, 1, 4, 3]);
    let pixels: Vec<f32> = batch.flat::<B>(&device).into_data().to_vec().unwrap();
    for (k, p) in pixels.iter().enumerate() {
        assert_eq!(*p, ((k * 7 % 256) as f32) / 255.0);
    }
    let labels: Vec<i64> = batch.labels::<B>(&device).into_data().to_vec().unwrap();
    assert_eq!(labels, [0, 1, 2]);
    assert_eq!(set.take(2).len(), 2);
    assert_eq!(set.take(2).images.image(1), set.images.image(1));
}

#[test]
fn every_truncation_of_a_file_is_an_error() {
    let bytes = fixture(5).images.to_idx().to_bytes().unwrap();
    for cut in 0..bytes.len() {
        let e = parse(&bytes[..cut]).unwrap_err();
        assert!(
            e.contains("too short") || e.contains("truncated"),
            "cut at {cut}: {e}"
        );
    }
    // and of its gzipped form
    let dir = temp_dir("gzcut");
    let path = dir.join("images.gz");
    fixture(5).images.to_idx().write(&path).unwrap();
    let gz = std::fs::read(&path).unwrap();
    for cut in 2..gz.len() {
        assert!(parse(&gz[..cut]).is_err(), "gzip cut at {cut}");
    }
    // and bytes after the gzip stream: junk, or a second member (which gunzip would append)
    assert!(parse(&gz).is_ok());
    let mut junk = gz.clone();
    junk.extend_from_slice(b"junk");
    assert!(
        parse(&junk).is_err(),
        "junk after the gzip stream was ignored"
    );
    let mut two = gz.clone();
    two.extend_from_slice(&gz);
    let e = parse(&two).unwrap_err();
    assert!(e.contains("more than"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn crafted_headers_are_refused_naming_what_is_wrong() {
    let good = fixture(2).images.to_idx().to_bytes().unwrap();
    let with = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        parse(&b).unwrap_err()
    };
    assert!(with(0, &[1]).contains("magic number 01 00 08 03"));
    assert!(with(2, &[0x0d]).contains("type code 0x0d"));
    assert!(with(3, &[0]).contains("0 dimensions"));
    // sizes whose product overflows, or passes the limit: refused before any allocation
    let e = with(4, &[0xff; 12]);
    assert!(e.contains("passes the limit"), "{e}");
    let e = with(4, &[0, 1, 0, 0]);
    assert!(e.contains("truncated"), "{e}");
    let e = Idx::parse("test", &good[..], Limits { max_bytes: 10 }).unwrap_err();
    assert!(
        e.to_string()
            .contains("2 x 4 x 3 bytes passes the limit of 10"),
        "{e}"
    );
    // a complete read allocates what the header announces, not the next power of two (the
    // limit is a bound on memory); a header announcing more than the input holds is truncated
    let big = Idx {
        dims: vec![3 << 20],
        data: vec![7; 3 << 20],
    }
    .to_bytes()
    .unwrap();
    let read = Idx::parse("test", &big[..], Limits { max_bytes: 3 << 20 }).unwrap();
    assert_eq!(read.data.len(), 3 << 20);
    assert_eq!(read.data.capacity(), 3 << 20);
    let mut claims = big[..8 + (5 << 20) / 2].to_vec();
    claims[4..8].copy_from_slice(&(1u32 << 30).to_be_bytes());
    let e = Idx::parse("test", &claims[..], Limits::default()).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    // trailing data: the header and the file disagree
    let mut longer = good.clone();
    longer.push(0);
    assert!(parse(&longer).unwrap_err().contains("more than"));
    // every single-byte change of the header is an error or a valid array, never a panic
    for at in 0..16 {
        for v in [0u8, 1, 2, 0x7f, 0x80, 0xff] {
            let mut b = good.clone();
            b[at] = v;
            let _ = parse(&b);
        }
    }
}

#[test]
fn mismatched_files_are_refused() {
    let (train, test) = (fixture(6), fixture(4));
    let dir = temp_dir("mismatch");
    write_set(&dir, &train, &test, false);
    let labels = dir.join(MNIST_FILES[1]);

    // labels of another count
    Idx {
        dims: vec![5],
        data: vec![0; 5],
    }
    .write(&labels)
    .unwrap();
    let e = read_mnist_dir(&dir).unwrap_err().to_string();
    assert!(e.contains("5 labels for the 6 images"), "{e}");

    // a label outside the ten classes
    Idx {
        dims: vec![6],
        data: vec![0, 1, 2, 10, 4, 5],
    }
    .write(&labels)
    .unwrap();
    let e = read_mnist_dir(&dir).unwrap_err().to_string();
    assert!(e.contains("label 10 of image 3"), "{e}");

    // an images file in the labels' place, and the other way round
    train.images.to_idx().write(&labels).unwrap();
    let e = read_mnist_dir(&dir).unwrap_err().to_string();
    assert!(e.contains("a labels file holds [count]"), "{e}");
    Idx {
        dims: vec![6],
        data: vec![0; 6],
    }
    .write(&dir.join(MNIST_FILES[0]))
    .unwrap();
    let e = read_mnist_dir(&dir).unwrap_err().to_string();
    assert!(
        e.contains("an images file holds [count, rows, cols]"),
        "{e}"
    );

    // test images of another size than the training images
    write_set(&dir, &train, &test, false);
    let wide = Images::new(4, 4, 4, vec![0; 64]).unwrap();
    wide.to_idx().write(&dir.join(MNIST_FILES[2])).unwrap();
    let e = read_mnist_dir(&dir).unwrap_err().to_string();
    assert!(
        e.contains("training images are 4 x 3, test images 4 x 4"),
        "{e}"
    );

    // a missing file names itself
    std::fs::remove_file(dir.join(MNIST_FILES[3])).unwrap();
    let e = read_mnist_dir(&dir).unwrap_err().to_string();
    assert!(
        e.contains("no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn arrays_that_idx_cannot_hold_are_not_written() {
    let e = Idx {
        dims: vec![2, 2],
        data: vec![0; 3],
    }
    .to_bytes()
    .unwrap_err();
    assert!(e.to_string().contains("do not hold the 3 values"), "{e}");
    assert!(
        Idx {
            dims: vec![],
            data: vec![],
        }
        .to_bytes()
        .is_err()
    );
    assert!(Images::new(2, 0, 3, vec![]).is_err());
}
