//! Line charts (loss curves, predictions against targets), heat maps (attention alignments),
//! image grids (reconstructions, samples), scatter plots (a 2-D latent space) and bar charts
//! (codebook usage) as PNG files, written atomically, with the text drawn in an embedded font so
//! that no system font is needed.

use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

use crate::{Error, Result};

const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans font is valid"));
    });
}

/// A drawing area of a PNG being written.
type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// What a drawing step returns: plotters' errors, boxed.
type Drawn = std::result::Result<(), Box<dyn std::error::Error>>;

/// An [`Error::Format`] about the picture at `path`.
fn picture_error(path: &Path, message: String) -> Error {
    Error::Format {
        path: path.display().to_string(),
        message,
    }
}

/// Writes a `size` PNG to `path` atomically: `paint` draws on a white area backed by a temporary
/// file beside `path`, which is renamed over `path` once complete.
fn png(path: &Path, size: (u32, u32), paint: impl FnOnce(&Area<'_>) -> Drawn) -> Result<()> {
    register_font();
    let tmp = path.with_extension("tmp.png");
    let drawn = (|| -> Drawn {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE)?;
        paint(&root)?;
        root.present()?;
        Ok(())
    })();
    publish(
        &tmp,
        path,
        drawn.map_err(|e| picture_error(path, format!("drawing failed: {e}"))),
    )
}

/// Puts a finished picture in place: fsynced, renamed over `path`, the folder fsynced (the
/// previous picture stays whole until then); a failed drawing's temporary file is removed.
fn publish(tmp: &Path, path: &Path, drawn: Result<()>) -> Result<()> {
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    crate::history::publish(tmp, path)
}

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from a name and points.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
        }
    }
}

/// Writes a 900×540 line chart of `series` to `path` (a `.png`), atomically (drawn into a
/// temporary file, then renamed). `log_y` uses a logarithmic y axis (for losses; needs positive
/// values).
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<()> {
    register_font();
    let points = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_y || *y > 0.0))
    };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return Err(Error::Format {
            path: path.display().to_string(),
            message: "nothing to plot: no finite points".into(),
        });
    }
    if x0 == x1 {
        x1 = x0 + 1.0;
    }
    if y0 == y1 {
        y1 = if log_y { y0 * 10.0 } else { y0 + 1.0 };
    }
    let tmp = path.with_extension("tmp.png");
    let draw = |e: &dyn std::fmt::Display| Error::Format {
        path: path.display().to_string(),
        message: format!("drawing failed: {e}"),
    };
    let drawn = (|| -> Result<()> {
        let root = BitMapBackend::new(&tmp, (900, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let mut chart = ChartBuilder::on(&root);
        chart
            .caption(title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(72);
        macro_rules! body {
            ($chart:expr) => {{
                let mut c = $chart;
                c.configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    // Whole numbers without a trailing ".0" (epochs, steps).
                    .x_label_formatter(&|x| {
                        if x.fract() == 0.0 && x.abs() < 1e15 {
                            format!("{}", *x as i64)
                        } else {
                            format!("{x}")
                        }
                    })
                    .label_style(("sans-serif", 15))
                    .draw()
                    .map_err(|e| draw(&e))?;
                for (k, s) in series.iter().enumerate() {
                    let color = class_colour(k);
                    let pts =
                        s.points.iter().copied().filter(|(x, y)| {
                            x.is_finite() && y.is_finite() && (!log_y || *y > 0.0)
                        });
                    c.draw_series(LineSeries::new(pts, color.stroke_width(2)))
                        .map_err(|e| draw(&e))?
                        .label(s.name.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                        });
                }
                c.configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 15))
                    .draw()
                    .map_err(|e| draw(&e))?;
            }};
        }
        if log_y {
            body!(
                chart
                    .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                    .map_err(|e| draw(&e))?
            );
        } else {
            let pad = 0.05 * (y1 - y0);
            body!(
                chart
                    .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                    .map_err(|e| draw(&e))?
            );
        }
        root.present().map_err(|e| draw(&e))?;
        Ok(())
    })();
    publish(&tmp, path, drawn)
}

/// Writes a heat map of `values` (one row per `rows` label, one column per `columns` label, in
/// `0..=1`: attention weights) to `path`, a `.png`, atomically; darker is larger.
///
/// # Errors
/// When `values` is not `rows × columns` or the file cannot be written.
pub fn heat_map(
    path: &Path,
    title: &str,
    rows: &[String],
    columns: &[String],
    values: &[Vec<f32>],
) -> Result<()> {
    let bad = |message: String| picture_error(path, message);
    if rows.is_empty() || columns.is_empty() || values.len() != rows.len() {
        return Err(bad(format!(
            "a heat map needs rows x columns values, got {} rows of labels, {} columns, {} rows of values",
            rows.len(),
            columns.len(),
            values.len()
        )));
    }
    if let Some(k) = values.iter().position(|r| r.len() != columns.len()) {
        return Err(bad(format!(
            "row {k} has {} values for {} columns",
            values[k].len(),
            columns.len()
        )));
    }
    let cell = 28u32;
    let (left, top) = (110u32, 60u32);
    let width = left + cell * columns.len() as u32 + 20;
    let height = top + cell * rows.len() as u32 + 20;
    png(path, (width, height), |root| {
        let text = |size| ("sans-serif", size).into_font().color(&BLACK);
        root.draw_text(title, &text(18), (10, 8))?;
        for (j, label) in columns.iter().enumerate() {
            let x = (left + cell * j as u32 + cell / 3) as i32;
            root.draw_text(label, &text(15), (x, (top - 22) as i32))?;
        }
        for (i, (label, row)) in rows.iter().zip(values).enumerate() {
            let y = (top + cell * i as u32) as i32;
            root.draw_text(label, &text(15), (10, y + cell as i32 / 4))?;
            for (j, &v) in row.iter().enumerate() {
                let shade = (255.0 * (1.0 - v.clamp(0.0, 1.0))) as u8;
                let x = (left + cell * j as u32) as i32;
                let rect = [(x, y), (x + cell as i32 - 1, y + cell as i32 - 1)];
                root.draw(&Rectangle::new(rect, RGBColor(shade, shade, 255).filled()))?;
            }
        }
        Ok(())
    })
}

/// Writes `images` (grey, `rows × cols` values in `0..=1` each, row-major) as a grid of `per_row`
/// images per line, each pixel drawn `scale × scale`, under a title, to `path` (a `.png`),
/// atomically.
///
/// # Errors
/// No image, an image of another size than `rows × cols`, or the file cannot be written.
pub fn image_grid(
    path: &Path,
    title: &str,
    images: &[Vec<f32>],
    (rows, cols): (usize, usize),
    per_row: usize,
    scale: u32,
) -> Result<()> {
    let bad = |message: String| picture_error(path, message);
    if images.is_empty() || rows == 0 || cols == 0 || per_row == 0 || scale == 0 {
        return Err(bad(format!(
            "an image grid needs images and sizes, got {} images of {rows} x {cols}, {per_row} per row, scale {scale}",
            images.len()
        )));
    }
    if let Some(k) = images.iter().position(|im| im.len() != rows * cols) {
        return Err(bad(format!(
            "image {k} has {} values, not {rows} x {cols}",
            images[k].len()
        )));
    }
    let (gap, top) = (2u32, 34u32);
    let lines = images.len().div_ceil(per_row) as u32;
    let (w, h) = (cols as u32 * scale + gap, rows as u32 * scale + gap);
    let width = (per_row as u32 * w + gap).max(240);
    let height = top + lines * h + gap;
    png(path, (width, height), |root| {
        root.draw_text(title, &("sans-serif", 16).into_font().color(&BLACK), (6, 8))?;
        for (k, image) in images.iter().enumerate() {
            let x0 = gap + (k % per_row) as u32 * w;
            let y0 = top + (k / per_row) as u32 * h;
            for (p, &v) in image.iter().enumerate() {
                let shade = (255.0 * v.clamp(0.0, 1.0)).round() as u8;
                let x = (x0 + (p % cols) as u32 * scale) as i32;
                let y = (y0 + (p / cols) as u32 * scale) as i32;
                for dy in 0..scale as i32 {
                    for dx in 0..scale as i32 {
                        root.draw_pixel((x + dx, y + dy), &RGBColor(shade, shade, shade))?;
                    }
                }
            }
        }
        Ok(())
    })
}

/// Ten distinct colours (a chart's lines, a scatter plot's classes), cycled beyond ten.
fn class_colour(class: usize) -> RGBColor {
    const COLOURS: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    COLOURS[class % COLOURS.len()]
}

/// Writes a scatter plot of `points` (`(x, y, class)`), coloured by class and with a legend of
/// `class_names`, to `path` (a `.png`), atomically: a 2-D latent space with the classes its
/// codes came from.
///
/// # Errors
/// No finite point, or the file cannot be written.
pub fn scatter(
    path: &Path,
    title: &str,
    points: &[(f64, f64, usize)],
    class_names: &[&str],
) -> Result<()> {
    let bad = |message: String| picture_error(path, message);
    let finite: Vec<_> = points
        .iter()
        .filter(|(x, y, _)| x.is_finite() && y.is_finite())
        .collect();
    if finite.is_empty() {
        return Err(bad("a scatter plot needs finite points, got none".into()));
    }
    let (xs, ys) = padded_bounds(finite.iter().map(|p| (p.0, p.1)), 0.05);
    png(path, (900, 760), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(xs, ys)?;
        chart.configure_mesh().x_desc("z1").y_desc("z2").draw()?;
        let classes = finite.iter().map(|p| p.2).max().unwrap_or(0) + 1;
        for class in 0..classes {
            let colour = class_colour(class);
            let series = chart.draw_series(
                finite
                    .iter()
                    .filter(|p| p.2 == class)
                    .map(|&&(x, y, _)| Circle::new((x, y), 2, colour.filled())),
            )?;
            if let Some(name) = class_names.get(class) {
                series
                    .label(*name)
                    .legend(move |(x, y)| Circle::new((x + 6, y), 4, colour.filled()));
            }
        }
        if !class_names.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }
        Ok(())
    })
}

/// The ranges of `points`' x and y, each widened by `pad` of its extent on both sides.
fn padded_bounds(
    points: impl Iterator<Item = (f64, f64)>,
    pad: f64,
) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    let margin = |a: f64, b: f64| pad * (b - a).max(1e-9);
    let (px, py) = (margin(x0, x1), margin(y0, y1));
    ((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
}

/// Writes `points` (`(x, y, label)`) as dots with their labels beside them to `path` (a
/// `.png`), atomically, with axes named `axes`: a 2-D projection of word vectors.
///
/// # Errors
/// No finite point, or the file cannot be written.
pub fn labelled_points(
    path: &Path,
    title: &str,
    axes: (&str, &str),
    points: &[(f64, f64, String)],
) -> Result<()> {
    let finite: Vec<_> = points
        .iter()
        .filter(|(x, y, _)| x.is_finite() && y.is_finite())
        .collect();
    if finite.is_empty() {
        return Err(picture_error(
            path,
            "labelled points need finite points, got none".into(),
        ));
    }
    let (xs, ys) = padded_bounds(finite.iter().map(|p| (p.0, p.1)), 0.12);
    png(path, (1000, 800), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(xs, ys)?;
        chart
            .configure_mesh()
            .x_desc(axes.0)
            .y_desc(axes.1)
            .draw()?;
        chart.draw_series(finite.iter().map(|(x, y, label)| {
            EmptyElement::at((*x, *y))
                + Circle::new((0, 0), 3, class_colour(0).filled())
                + Text::new(label.clone(), (5, -7), ("sans-serif", 14))
        }))?;
        Ok(())
    })
}

/// Writes a bar chart of `values` (one bar per index: a codebook's usage per code) to `path` (a
/// `.png`), atomically.
///
/// # Errors
/// No value, a non-finite or negative one, or the file cannot be written.
pub fn bar_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    values: &[f64],
) -> Result<()> {
    let bad = |message: String| picture_error(path, message);
    if values.is_empty() || values.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(bad(format!(
            "a bar chart needs finite values >= 0, got {} values",
            values.len()
        )));
    }
    let top = values.iter().fold(0.0f64, |a, &v| a.max(v)).max(1e-9) * 1.05;
    png(path, (900, 480), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..values.len() as f64, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()?;
        chart.draw_series(values.iter().enumerate().map(|(i, &v)| {
            Rectangle::new(
                [(i as f64, 0.0), (i as f64 + 0.9, v)],
                RGBColor(31, 119, 180).filled(),
            )
        }))?;
        Ok(())
    })
}

/// Draws a run's [`History`](crate::History) to `path`: the loss and validation loss per epoch
/// and, beside them, every named part and metric (`kl`, `val_kl`, ...), on a logarithmic y axis
/// (values that are not positive are left out).
///
/// # Errors
/// When the file cannot be written.
pub fn history(path: &Path, title: &str, history: &crate::History) -> Result<()> {
    let column = |value: &dyn Fn(&crate::EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .epochs
            .iter()
            .filter_map(|e| value(e).map(|v| (e.epoch as f64, v)))
            .filter(|&(_, v)| v > 0.0)
            .collect()
    };
    let mut lines = vec![Series::new("loss", column(&|e| Some(e.loss)))];
    let val = column(&|e| e.val_loss);
    if !val.is_empty() {
        lines.push(Series::new("val_loss", val));
    }
    let names: std::collections::BTreeSet<&String> = history
        .epochs
        .iter()
        .flat_map(|e| e.metrics.keys())
        .collect();
    for name in names {
        let points = column(&|e| e.metrics.get(name).copied());
        if !points.is_empty() {
            lines.push(Series::new(name.clone(), points));
        }
    }
    line_chart(path, title, "epoch", "value (log scale)", &lines, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_and_rejects_empty_data() {
        let dir = std::env::temp_dir().join(format!("rensa-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("loss.png");
        let loss = Series::new(
            "loss",
            (1..=20).map(|e| (e as f64, 1.0 / e as f64)).collect(),
        );
        let val = Series::new(
            "val_loss",
            (1..=20).map(|e| (e as f64, 1.2 / e as f64)).collect(),
        );
        line_chart(&path, "loss", "epoch", "MSE", &[loss, val], true).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 5_000, "a real picture, {} bytes", bytes.len());
        assert!(!dir.join("loss.tmp.png").exists());
        let err = line_chart(
            &dir.join("empty.png"),
            "t",
            "x",
            "y",
            &[Series::new("nan", vec![(1.0, f64::NAN)])],
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no finite points"), "{err}");
        let labels = |n: usize| (0..n).map(|k| k.to_string()).collect::<Vec<_>>();
        let map = dir.join("map.png");
        heat_map(
            &map,
            "a",
            &labels(2),
            &labels(3),
            &[vec![0.1, 0.8, 0.1], vec![1.0, 0.0, 0.0]],
        )
        .unwrap();
        assert_eq!(&std::fs::read(&map).unwrap()[1..4], b"PNG");
        let err = heat_map(
            &map,
            "a",
            &labels(2),
            &labels(3),
            &[vec![0.5; 3], vec![0.5; 2]],
        );
        assert!(err.unwrap_err().to_string().contains("row 1 has 2 values"));

        let grid = dir.join("grid.png");
        let images: Vec<Vec<f32>> = (0..5).map(|k| vec![k as f32 / 4.0; 12]).collect();
        image_grid(&grid, "five", &images, (4, 3), 3, 4).unwrap();
        assert_eq!(&std::fs::read(&grid).unwrap()[1..4], b"PNG");
        let err = image_grid(&grid, "bad", &[vec![0.0; 11]], (4, 3), 3, 4).unwrap_err();
        assert!(err.to_string().contains("image 0 has 11 values"), "{err}");
        let points: Vec<_> = (0..30).map(|k| (k as f64, (k * k) as f64, k % 3)).collect();
        scatter(&dir.join("scatter.png"), "z", &points, &["a", "b", "c"]).unwrap();
        let err = scatter(&dir.join("s.png"), "z", &[(f64::NAN, 0.0, 0)], &[]).unwrap_err();
        assert!(err.to_string().contains("finite points"), "{err}");
        let words = vec![(0.1, 0.2, "king".to_string()), (-0.3, 0.4, "queen".into())];
        labelled_points(&dir.join("words.png"), "pca", ("pc1", "pc2"), &words).unwrap();
        assert_eq!(&std::fs::read(dir.join("words.png")).unwrap()[1..4], b"PNG");
        let none = labelled_points(
            &dir.join("w.png"),
            "p",
            ("a", "b"),
            &[(f64::NAN, 0.0, "x".into())],
        );
        assert!(none.unwrap_err().to_string().contains("finite points"));
        bar_chart(
            &dir.join("bars.png"),
            "usage",
            "code",
            "n",
            &[3.0, 0.0, 1.5],
        )
        .unwrap();
        assert!(bar_chart(&dir.join("b.png"), "u", "c", "n", &[-1.0]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
