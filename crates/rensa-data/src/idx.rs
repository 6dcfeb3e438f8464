//! IDX files, the format of MNIST and Fashion-MNIST, raw or gzipped, and labelled image sets
//! read from them.
//!
//! An IDX file is a header and an array of bytes: two zero bytes, a type code (`0x08`: unsigned
//! bytes, the only type these datasets use), the number of dimensions `d`, then `d` big-endian
//! `u32` sizes, then the product of the sizes in values, row-major. Images are `[n, rows, cols]`
//! (`idx3`), labels `[n]` (`idx1`).
//!
//! Reading checks everything a file can get wrong: the magic number, the type, a size product
//! that overflows or passes the [`Limits`], data shorter or longer than the header says (a
//! truncated download, a wrong file), images and labels of different counts, labels outside the
//! classes. A gzipped file (detected by its content, not its name) is inflated only up to the
//! size its header announces, so a crafted file cannot make the reader allocate more than the
//! limit.
//!
//! ```
//! use rensa_data::idx::{Images, Labelled};
//!
//! let images = Images::new(2, 2, 3, (0..12).collect()).unwrap();
//! let set = Labelled::new(images, vec![1, 0], 10).unwrap();
//! assert_eq!(set.len(), 2);
//! assert_eq!(set.images.image(1), &[6, 7, 8, 9, 10, 11]);
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::{DataError, Result};

/// The unsigned-byte type code of IDX.
const U8: u8 = 0x08;

/// The largest array a reader accepts. The default, 2^31 bytes (2 GiB), is 40 times
/// Fashion-MNIST's training images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of data (the product of the sizes) at most.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_bytes: 1 << 31 }
    }
}

/// An array of unsigned bytes read from an IDX file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// The sizes, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major; `dims.iter().product()` of them.
    pub data: Vec<u8>,
}

fn format_err(origin: &str, what: impl Into<String>) -> DataError {
    DataError::Format {
        origin: origin.to_string(),
        what: what.into(),
    }
}

/// Reads up to `n` bytes; fewer only at the end of the input. The buffer grows in steps that
/// double what was read (from 1 MiB), never past `n`: a header that announces more than the
/// input holds costs at most twice what the input holds, and a complete read allocates `n`
/// bytes, not the next power of two.
fn read_up_to(origin: &str, input: &mut impl Read, n: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    while (buf.len() as u64) < n {
        let step = (n - buf.len() as u64).min(buf.len().max(1 << 20) as u64) as usize;
        let start = buf.len();
        buf.reserve_exact(step);
        buf.resize(start + step, 0);
        let mut filled = 0;
        while filled < step {
            match input.read(&mut buf[start + filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format_err(origin, format!("cannot read the data: {e}"))),
            }
        }
        buf.truncate(start + filled);
        if filled < step {
            break;
        }
    }
    Ok(buf)
}

impl Idx {
    /// Reads an IDX file, raw or gzipped, with the default [`Limits`].
    ///
    /// # Errors
    /// The file cannot be read, or is not a valid unsigned-byte IDX file (the error says what
    /// is wrong and with which values).
    pub fn read(path: &Path) -> Result<Self> {
        Self::read_with(path, Limits::default())
    }

    /// [`Idx::read`] with other [`Limits`].
    ///
    /// # Errors
    /// As [`Idx::read`].
    pub fn read_with(path: &Path, limits: Limits) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        Self::parse(
            &path.display().to_string(),
            std::io::BufReader::new(file),
            limits,
        )
    }

    /// Parses IDX bytes (raw, or gzipped: told apart by gzip's magic bytes `1f 8b`); `origin`
    /// names the source in errors.
    ///
    /// # Errors
    /// As [`Idx::read`].
    pub fn parse(origin: &str, mut input: impl Read, limits: Limits) -> Result<Self> {
        let mut magic = read_up_to(origin, &mut input, 4)?;
        if magic.len() >= 2 && magic[..2] == [0x1f, 0x8b] {
            // every member, so that anything after the first is read (and refused as data past
            // what the header announces, or as a bad gzip header) rather than ignored
            let inflated =
                flate2::read::MultiGzDecoder::new(std::io::Cursor::new(magic).chain(input));
            return Self::parse_raw(&format!("{origin} (gzip)"), inflated, limits);
        }
        let rest = std::io::Cursor::new(std::mem::take(&mut magic)).chain(input);
        Self::parse_raw(origin, rest, limits)
    }

    fn parse_raw(origin: &str, mut input: impl Read, limits: Limits) -> Result<Self> {
        let magic = read_up_to(origin, &mut input, 4)?;
        if magic.len() < 4 {
            return Err(format_err(
                origin,
                format!(
                    "{} bytes: too short for an IDX header (4 bytes of magic number)",
                    magic.len()
                ),
            ));
        }
        if magic[0] != 0 || magic[1] != 0 {
            return Err(format_err(
                origin,
                format!(
                    "not an IDX file: the magic number {:02x} {:02x} {:02x} {:02x} does not start with two zero bytes",
                    magic[0], magic[1], magic[2], magic[3]
                ),
            ));
        }
        if magic[2] != U8 {
            return Err(format_err(
                origin,
                format!(
                    "IDX type code 0x{:02x}: only unsigned bytes (0x08, as in MNIST and Fashion-MNIST) are read",
                    magic[2]
                ),
            ));
        }
        let ndim = magic[3] as usize;
        if ndim == 0 {
            return Err(format_err(origin, "an IDX array of 0 dimensions"));
        }
        let header = read_up_to(origin, &mut input, 4 * ndim as u64)?;
        if header.len() < 4 * ndim {
            return Err(format_err(
                origin,
                format!(
                    "truncated header: {ndim} dimensions need {} bytes of sizes, the file has {}",
                    4 * ndim,
                    header.len()
                ),
            ));
        }
        let dims: Vec<usize> = header
            .chunks_exact(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .collect();
        let shape = dims
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" x ");
        let bytes = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .filter(|&b| b <= limits.max_bytes)
            .ok_or_else(|| {
                format_err(
                    origin,
                    format!(
                        "an array of {shape} bytes passes the limit of {} bytes",
                        limits.max_bytes
                    ),
                )
            })?;
        let data = read_up_to(origin, &mut input, bytes)?;
        if (data.len() as u64) < bytes {
            return Err(format_err(
                origin,
                format!(
                    "truncated: the header announces {shape} = {bytes} bytes, the file holds {}",
                    data.len()
                ),
            ));
        }
        // one byte more than announced tells a file with trailing data
        if !read_up_to(origin, &mut input, 1)?.is_empty() {
            return Err(format_err(
                origin,
                format!(
                    "the file holds more than the {shape} = {bytes} bytes its header announces"
                ),
            ));
        }
        Ok(Self { dims, data })
    }

    /// The file's bytes: header and data, uncompressed.
    ///
    /// # Errors
    /// More than 255 dimensions, a size over `u32::MAX`, or `data` not of the shape's length.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let origin = "IDX array";
        if self.dims.is_empty() || self.dims.len() > 255 {
            return Err(format_err(
                origin,
                format!("{} dimensions (IDX holds 1 to 255)", self.dims.len()),
            ));
        }
        let count = self
            .dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&c| c == self.data.len());
        if count.is_none() || self.dims.iter().any(|&d| d > u32::MAX as usize) {
            return Err(format_err(
                origin,
                format!(
                    "sizes {:?} do not hold the {} values",
                    self.dims,
                    self.data.len()
                ),
            ));
        }
        let mut out = vec![0, 0, U8, self.dims.len() as u8];
        for &d in &self.dims {
            out.extend_from_slice(&(d as u32).to_be_bytes());
        }
        out.extend_from_slice(&self.data);
        Ok(out)
    }

    /// Writes the array as an IDX file, gzipped when `path` ends in `.gz`, atomically.
    ///
    /// # Errors
    /// As [`Idx::to_bytes`], or the file cannot be written.
    pub fn write(&self, path: &Path) -> Result<()> {
        let raw = self.to_bytes()?;
        let bytes = if path.extension().is_some_and(|e| e == "gz") {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&raw)
                .and_then(|()| gz.finish())
                .map_err(|e| DataError::io(path, e))?
        } else {
            raw
        };
        crate::error::write_atomic(path, &bytes)
    }
}

/// Grey images of one size, bytes 0-255.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Rows of every image.
    pub rows: usize,
    /// Columns of every image.
    pub cols: usize,
    /// `count * rows * cols` bytes, image after image, row-major.
    pub pixels: Vec<u8>,
}

impl Images {
    /// `count` images of `rows x cols` from their pixels.
    ///
    /// # Errors
    /// `pixels` is not `count * rows * cols` long, or an image has no pixel.
    pub fn new(count: usize, rows: usize, cols: usize, pixels: Vec<u8>) -> Result<Self> {
        let size = rows.checked_mul(cols).filter(|&s| s > 0);
        let total = size.and_then(|s| s.checked_mul(count));
        if total != Some(pixels.len()) {
            return Err(format_err(
                "images",
                format!(
                    "{count} images of {rows} x {cols} do not have {} pixels",
                    pixels.len()
                ),
            ));
        }
        Ok(Self {
            count,
            rows,
            cols,
            pixels,
        })
    }

    /// Reads an `idx3` images file (`[n, rows, cols]`), raw or gzipped.
    ///
    /// # Errors
    /// As [`Idx::read`]; or the array is not three-dimensional.
    pub fn read(path: &Path) -> Result<Self> {
        let idx = Idx::read(path)?;
        match idx.dims[..] {
            [count, rows, cols] => Self::new(count, rows, cols, idx.data)
                .map_err(|e| format_err(&path.display().to_string(), e.to_string())),
            _ => Err(format_err(
                &path.display().to_string(),
                format!(
                    "an images file holds [count, rows, cols], this one has sizes {:?}",
                    idx.dims
                ),
            )),
        }
    }

    /// Pixels of one image (`rows * cols`).
    pub fn image(&self, i: usize) -> &[u8] {
        let size = self.rows * self.cols;
        &self.pixels[i * size..(i + 1) * size]
    }

    /// The images as an IDX array.
    pub fn to_idx(&self) -> Idx {
        Idx {
            dims: vec![self.count, self.rows, self.cols],
            data: self.pixels.clone(),
        }
    }
}

/// Images with a class label each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labelled {
    /// The images.
    pub images: Images,
    /// One label per image, each below `classes`.
    pub labels: Vec<u8>,
    /// Number of classes (10 for MNIST and Fashion-MNIST).
    pub classes: usize,
}

impl Labelled {
    /// Pairs images with labels.
    ///
    /// # Errors
    /// The counts differ, or a label is not below `classes`.
    pub fn new(images: Images, labels: Vec<u8>, classes: usize) -> Result<Self> {
        if images.count != labels.len() {
            return Err(format_err(
                "labelled images",
                format!("{} images but {} labels", images.count, labels.len()),
            ));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= classes)
        {
            return Err(format_err(
                "labelled images",
                format!("label {l} of image {i} is not below the {classes} classes"),
            ));
        }
        Ok(Self {
            images,
            labels,
            classes,
        })
    }

    /// Reads an images file and a labels file (`idx1`, `[n]`) of the same count.
    ///
    /// # Errors
    /// As [`Images::read`] and [`Idx::read`]; the counts differ; a label is not below `classes`.
    pub fn read(images: &Path, labels: &Path, classes: usize) -> Result<Self> {
        let im = Images::read(images)?;
        let lab = Idx::read(labels)?;
        let origin = labels.display().to_string();
        let [n] = lab.dims[..] else {
            return Err(format_err(
                &origin,
                format!(
                    "a labels file holds [count], this one has sizes {:?}",
                    lab.dims
                ),
            ));
        };
        if n != im.count {
            return Err(format_err(
                &origin,
                format!(
                    "{n} labels for the {} images of {}",
                    im.count,
                    images.display()
                ),
            ));
        }
        Self::new(im, lab.data, classes).map_err(|e| format_err(&origin, e.to_string()))
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// No image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The items, for batching one slice of them at a time (rensa-train's `Items`).
    pub fn items(&self) -> Vec<Item<'_>> {
        (0..self.len())
            .map(|i| Item {
                pixels: self.images.image(i),
                rows: self.images.rows,
                cols: self.images.cols,
                label: self.labels[i],
            })
            .collect()
    }

    /// A small synthetic set for tests and quick runs: `count` images of `side x side` whose
    /// class `c = i mod classes` sets the period of their vertical stripes (columns `x` with
    /// `x mod (c + 2) = 0` are bright), so that a model can learn it in seconds.
    ///
    /// # Panics
    /// If `classes` is 0 or over 254, or `side` is 0.
    pub fn stripes(count: usize, side: usize, classes: usize) -> Self {
        assert!(
            (1..=254).contains(&classes) && side > 0,
            "1-254 classes, a side"
        );
        let labels: Vec<u8> = (0..count).map(|i| (i % classes) as u8).collect();
        let pixels = (0..count * side * side)
            .map(|k| {
                let (i, x) = (k / (side * side), k % side);
                if x % (labels[i] as usize + 2) == 0 {
                    230
                } else {
                    10
                }
            })
            .collect();
        let images = Images::new(count, side, side, pixels).expect("sizes that match");
        Self::new(images, labels, classes).expect("labels below the classes")
    }

    /// The first `n` images (all when fewer), e.g. for a quick run.
    pub fn take(&self, n: usize) -> Self {
        let n = n.min(self.len());
        let size = self.images.rows * self.images.cols;
        Self {
            images: Images {
                count: n,
                rows: self.images.rows,
                cols: self.images.cols,
                pixels: self.images.pixels[..n * size].to_vec(),
            },
            labels: self.labels[..n].to_vec(),
            classes: self.classes,
        }
    }
}

/// One labelled image, borrowed from a [`Labelled`] set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item<'a> {
    /// `rows * cols` bytes.
    pub pixels: &'a [u8],
    /// Rows of the image.
    pub rows: usize,
    /// Columns of the image.
    pub cols: usize,
    /// The class.
    pub label: u8,
}

/// A batch of images on the host, turned into tensors on any backend (so that one batch serves
/// the training step on the autodiff backend and the validation step on the inner one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageBatch {
    /// Images in the batch.
    pub count: usize,
    /// Rows of every image.
    pub rows: usize,
    /// Columns of every image.
    pub cols: usize,
    /// `count * rows * cols` bytes.
    pub pixels: Vec<u8>,
    /// One class per image.
    pub labels: Vec<u8>,
}

impl ImageBatch {
    /// Stacks items of one size.
    ///
    /// # Panics
    /// If `items` is empty or the images differ in size (a [`Labelled`] set never does).
    pub fn of(items: &[&Item<'_>]) -> Self {
        let first = items.first().expect("a batch of at least one image");
        let (rows, cols) = (first.rows, first.cols);
        assert!(
            items
                .iter()
                .all(|i| (i.rows, i.cols) == (rows, cols) && i.pixels.len() == rows * cols),
            "a batch of images of one size"
        );
        Self {
            count: items.len(),
            rows,
            cols,
            pixels: items
                .iter()
                .flat_map(|i| i.pixels.iter().copied())
                .collect(),
            labels: items.iter().map(|i| i.label).collect(),
        }
    }

    /// The images flattened, `[count, rows * cols]`, pixels scaled to `[0, 1]`.
    pub fn flat<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        let pixels: Vec<f32> = self.pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
        Tensor::from_data(
            TensorData::new(pixels, [self.count, self.rows * self.cols]),
            device,
        )
    }

    /// The images as one-channel pictures, `[count, 1, rows, cols]`, pixels in `[0, 1]`.
    pub fn grid<B: Backend>(&self, device: &B::Device) -> Tensor<B, 4> {
        self.flat(device)
            .reshape([self.count, 1, self.rows, self.cols])
    }

    /// The classes, `[count]`.
    pub fn labels<B: Backend>(&self, device: &B::Device) -> Tensor<B, 1, Int> {
        let labels: Vec<i64> = self.labels.iter().map(|&l| i64::from(l)).collect();
        Tensor::from_data(TensorData::new(labels, [self.count]), device)
    }
}

/// A dataset's training and test sets.
#[derive(Clone, Debug)]
pub struct Split {
    /// The training set.
    pub train: Labelled,
    /// The test set.
    pub test: Labelled,
}

/// The file names of MNIST-style datasets: training images and labels, test images and labels.
pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Finds `name` or `name.gz` in `dir`.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    [name.to_string(), format!("{name}.gz")]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format_err(
                &dir.display().to_string(),
                format!("no {name} or {name}.gz in this folder (expected the four MNIST-style IDX files)"),
            )
        })
}

/// Reads a folder of MNIST-style IDX files ([`MNIST_FILES`], each raw or gzipped): MNIST,
/// Fashion-MNIST, or any set of 10 classes in that layout.
///
/// # Errors
/// A file is missing or invalid (see [`Labelled::read`]), or the training and test images differ
/// in size.
pub fn read_mnist_dir(dir: &Path) -> Result<Split> {
    let [ti, tl, vi, vl] = MNIST_FILES;
    let train = Labelled::read(&find(dir, ti)?, &find(dir, tl)?, 10)?;
    let test = Labelled::read(&find(dir, vi)?, &find(dir, vl)?, 10)?;
    let (a, b) = (&train.images, &test.images);
    if (a.rows, a.cols) != (b.rows, b.cols) {
        return Err(format_err(
            &dir.display().to_string(),
            format!(
                "training images are {} x {}, test images {} x {}",
                a.rows, a.cols, b.rows, b.cols
            ),
        ));
    }
    Ok(Split { train, test })
}

/// Writes a split as the four gzipped MNIST-style IDX files ([`MNIST_FILES`] + `.gz`) in `dir`
/// (created if missing), each atomically: a data set of one's own for any example that reads an
/// IDX folder, or a test fixture.
///
/// # Errors
/// The folder or a file cannot be written.
pub fn write_mnist_dir(dir: &Path, split: &Split) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let [ti, tl, vi, vl] = MNIST_FILES;
    for (set, images, labels) in [(&split.train, ti, tl), (&split.test, vi, vl)] {
        set.images
            .to_idx()
            .write(&dir.join(format!("{images}.gz")))?;
        Idx {
            dims: vec![set.labels.len()],
            data: set.labels.clone(),
        }
        .write(&dir.join(format!("{labels}.gz")))?;
    }
    Ok(())
}
