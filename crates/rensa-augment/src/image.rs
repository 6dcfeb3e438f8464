//! An 8-bit image in height x width x channels order, with decoding and encoding through the
//! `image` crate.

use crate::error::{AugmentError, Result};
use std::io::Cursor;
use std::path::Path;

/// An image of `u8` samples stored row by row, pixel by pixel, channel by channel (HWC), with
/// one (gray) or three (RGB) channels. Every kernel of this crate reads and writes this layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<u8>,
}

/// Width and height of an image, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Size {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

impl Size {
    /// A size.
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height }
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

impl Image {
    /// An image over `data` (HWC). Fails when a side is zero, `channels` is not 1 or 3, or the
    /// buffer length is not `width * height * channels`.
    pub fn new(width: usize, height: usize, channels: usize, data: Vec<u8>) -> Result<Self> {
        let expected = Self::buffer_len(width, height, channels)?;
        if data.len() != expected {
            return Err(AugmentError::InvalidImage(format!(
                "{} bytes for a {width}x{height}x{channels} image (expected {expected})",
                data.len(),
            )));
        }
        Ok(Self {
            width,
            height,
            channels,
            data,
        })
    }

    /// The buffer length of an image of this size, or why there is no such image.
    fn buffer_len(width: usize, height: usize, channels: usize) -> Result<usize> {
        if width == 0 || height == 0 {
            return Err(AugmentError::InvalidImage(format!(
                "{width}x{height} has no pixels"
            )));
        }
        if channels != 1 && channels != 3 {
            return Err(AugmentError::InvalidImage(format!(
                "{channels} channels (1 or 3 are supported)"
            )));
        }
        if let Some(why) = crate::transforms::size_problem(width, height) {
            return Err(AugmentError::InvalidImage(why));
        }
        // cannot overflow: at most `max_pixels` pixels of at most 3 channels
        Ok(width * height * channels)
    }

    /// An image of one value everywhere. The size is checked before anything is allocated.
    pub fn filled(width: usize, height: usize, channels: usize, value: u8) -> Result<Self> {
        let len = Self::buffer_len(width, height, channels)?;
        Self::new(width, height, channels, vec![value; len])
    }

    /// Internal constructor for buffers whose size is right by construction.
    pub(crate) fn from_parts(width: usize, height: usize, channels: usize, data: Vec<u8>) -> Self {
        debug_assert_eq!(data.len(), width * height * channels);
        Self {
            width,
            height,
            channels,
            data,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }
    /// Width and height.
    pub fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
    /// Channels per pixel (1 or 3).
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// The samples, HWC.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// The samples, HWC, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
    /// The buffer.
    pub fn into_raw(self) -> Vec<u8> {
        self.data
    }
    /// The samples of pixel `(x, y)`; `None` outside the image.
    pub fn pixel(&self, x: usize, y: usize) -> Option<&[u8]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y * self.width + x) * self.channels;
        Some(&self.data[i..i + self.channels])
    }

    /// Reads and decodes an image file (PNG, JPEG, BMP or GIF, recognised by content). Images
    /// with alpha lose it; gray images keep one channel, all others become RGB.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| AugmentError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::decode_named(&bytes, &path.display().to_string())
    }

    /// Decodes an image from memory; see [`Image::open`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::decode_named(bytes, "<memory>")
    }

    fn decode_named(bytes: &[u8], name: &str) -> Result<Self> {
        let reader = image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| AugmentError::Decode {
                name: name.into(),
                message: e.to_string(),
            })?;
        if reader.format().is_none() {
            return Err(AugmentError::UnsupportedFormat { name: name.into() });
        }
        let decoded = reader.decode().map_err(|e| match e {
            image::ImageError::Unsupported(_) => {
                AugmentError::UnsupportedFormat { name: name.into() }
            }
            other => AugmentError::Decode {
                name: name.into(),
                message: other.to_string(),
            },
        })?;
        Self::from_dynamic(decoded).map_err(|e| AugmentError::Decode {
            name: name.into(),
            message: e.to_string(),
        })
    }

    /// Converts an `image` crate image: gray stays one channel, everything else becomes RGB.
    pub fn from_dynamic(img: image::DynamicImage) -> Result<Self> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let gray = matches!(
            img.color(),
            image::ColorType::L8
                | image::ColorType::L16
                | image::ColorType::La8
                | image::ColorType::La16
        );
        if gray {
            Self::new(w, h, 1, img.into_luma8().into_raw())
        } else {
            Self::new(w, h, 3, img.into_rgb8().into_raw())
        }
    }

    /// This image as an `image` crate image (gray or RGB).
    pub fn to_dynamic(&self) -> image::DynamicImage {
        let (w, h) = (self.width as u32, self.height as u32);
        if self.channels == 1 {
            image::GrayImage::from_raw(w, h, self.data.clone())
                .map(image::DynamicImage::ImageLuma8)
                .expect("buffer length matches the size")
        } else {
            image::RgbImage::from_raw(w, h, self.data.clone())
                .map(image::DynamicImage::ImageRgb8)
                .expect("buffer length matches the size")
        }
    }

    /// Writes the image; the format follows the extension (`.png`, `.jpg`, `.bmp`). The file is
    /// written to a temporary name first and renamed, so a failed write leaves no partial file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let format = image::ImageFormat::from_path(path).map_err(|e| AugmentError::Encode {
            name: name.clone(),
            message: e.to_string(),
        })?;
        let mut bytes = Vec::new();
        self.to_dynamic()
            .write_to(&mut Cursor::new(&mut bytes), format)
            .map_err(|e| AugmentError::Encode {
                name: name.clone(),
                message: e.to_string(),
            })?;
        let tmp = path.with_extension("partial");
        let io = |source| AugmentError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// An RGB copy (gray is replicated to three channels).
    pub fn to_rgb(&self) -> Image {
        if self.channels == 3 {
            return self.clone();
        }
        let data = self.data.iter().flat_map(|&v| [v, v, v]).collect();
        Image::from_parts(self.width, self.height, 3, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_and_bad_bytes() {
        let img = Image::new(3, 2, 3, (0..18).collect()).unwrap();
        let dir = std::env::temp_dir().join(format!("rensa-augment-img-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.png");
        img.save(&path).unwrap();
        assert_eq!(Image::open(&path).unwrap(), img);
        let bytes = std::fs::read(&path).unwrap();
        assert!(matches!(
            Image::decode(&bytes[..bytes.len() / 2]),
            Err(AugmentError::Decode { .. })
        ));
        assert!(matches!(
            Image::decode(b"hello, not an image"),
            Err(AugmentError::UnsupportedFormat { .. })
        ));
        assert!(matches!(
            Image::open(dir.join("missing.png")),
            Err(AugmentError::Io { .. })
        ));
        assert!(Image::new(0, 4, 3, vec![]).is_err());
        assert!(Image::new(2, 2, 3, vec![0; 11]).is_err());
        assert!(Image::new(2, 2, 2, vec![0; 8]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
