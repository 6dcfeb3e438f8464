//! Runs one operation over a 256x256 image many times, for profiling:
//! `cargo run --release -p rensa-augment --example augment_profile -- "rotate(limit=30)" 2000`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let spec = args.get(1).map_or("rotate(limit=30)", String::as_str);
    let n: u64 = args.get(2).map_or(Ok(2000), |s| s.parse())?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/coffee.png");
    let src = rensa_augment::Image::open(root)?;
    let img =
        rensa_augment::Pipeline::parse("resize(width=256, height=256)", 0)?.apply(&src, 0, 0)?;
    let p = rensa_augment::Pipeline::parse(spec, 1)?;
    let start = std::time::Instant::now();
    let floats = spec.contains("normalize");
    for i in 0..n {
        if floats {
            std::hint::black_box(p.apply_f32(&img, 0, i)?);
        } else {
            std::hint::black_box(p.apply(&img, 0, i)?);
        }
    }
    let s = start.elapsed().as_secs_f64();
    println!("{spec}: {:.0} img/s", n as f64 / s);
    Ok(())
}
