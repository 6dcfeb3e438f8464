//! `cargo xtask bench recurrent`: forward + backward of rensa's RNN, LSTM and GRU layers against
//! burn-nn's on the same backend, and with `--peers` Keras/TensorFlow on the CPU (beside ndarray) or
//! PyTorch, cuDNN on a CUDA GPU (beside wgpu).
//!
//! Each measurement is one training step's worth of work: the layer over a `[B, T, I]` batch,
//! `sum` of all outputs, and the backward pass, with the device synced before the clock stops.
//! rensa and burn-nn runs alternate so that noise from the shared machine hits both alike.

use anyhow::{Context, Result};
use burn::backend::{Autodiff, NdArray, Wgpu};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Tensor};
use rensa_nn::recurrent::{
    Differentiation, GruConfig, LstmConfig, RecurrentBackend, RecurrentConfig, RnnConfig,
    SequenceInput,
};
use std::collections::HashMap;
use std::fmt::Write as _;

use super::{BackendKind, BenchArgs, cpu_description, median, record_run, time_ms, wgpu_adapter};

/// (batch, time, input, hidden).
type Dims = (usize, usize, usize, usize);

/// The course's size, a mid-size model, and a large one (GPU only unless `--large`).
const SHAPES: [Dims; 3] = [(16, 24, 1, 10), (64, 64, 128, 256), (128, 100, 512, 1024)];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Cell {
    Lstm,
    Gru,
    Rnn,
}

impl Cell {
    const ALL: [Cell; 3] = [Cell::Lstm, Cell::Gru, Cell::Rnn];

    fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "LSTM",
            Cell::Gru => "GRU",
            Cell::Rnn => "SimpleRNN",
        }
    }
}

struct Row {
    cell: Cell,
    dims: Dims,
    runs: usize,
    rensa_ms: f64,
    /// rensa with `Differentiation::Plain`: every step's ops recorded by autodiff.
    plain_ms: f64,
    burn_nn_ms: f64,
    /// The peer of `--peers` (Keras/TF on ndarray, PyTorch on wgpu).
    peer_ms: Option<f64>,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let (machine, on_gpu) = match args.backend {
        BackendKind::Ndarray => (
            format!(
                "{} (burn-ndarray with simd and multi-threads)",
                cpu_description()
            ),
            false,
        ),
        BackendKind::Wgpu => {
            let (adapter, on_gpu) = wgpu_adapter();
            eprintln!("recurrent bench on {adapter}");
            (cpu_description(), on_gpu)
        }
    };
    let shapes: Vec<Dims> = SHAPES
        .iter()
        .copied()
        .filter(|d| *d != SHAPES[2] || on_gpu || args.large)
        .collect();

    let mut rows = Vec::new();
    for &dims in &shapes {
        for cell in Cell::ALL {
            let runs = args.runs.unwrap_or(match dims.0 * dims.1 * dims.3 {
                n if n < 10_000 => 41,
                n if n < 2_000_000 => 9,
                _ => 5,
            });
            let [rensa_ms, plain_ms, burn_nn_ms] = match args.backend {
                BackendKind::Ndarray => {
                    measure::<Autodiff<NdArray>>(cell, dims, runs, &Default::default())
                }
                BackendKind::Wgpu => {
                    measure::<Autodiff<Wgpu>>(cell, dims, runs, &Default::default())
                }
            };
            eprintln!(
                "  {:<9} {:?}: rensa {rensa_ms:.2} ms (plain ops {plain_ms:.2}), burn-nn {burn_nn_ms:.2} ms ({:.2}x)",
                cell.name(),
                dims,
                burn_nn_ms / rensa_ms
            );
            rows.push(Row {
                cell,
                dims,
                runs,
                rensa_ms,
                plain_ms,
                burn_nn_ms,
                peer_ms: None,
            });
        }
    }

    let mut peer = None;
    if args.peers {
        let run = peer_run(args.backend);
        let specs: Vec<String> = rows
            .iter()
            // TF-CPU at the GPU size takes minutes per step
            .filter(|r| r.dims != SHAPES[2] || args.backend == BackendKind::Wgpu)
            .map(|r| {
                let (b, t, i, h) = r.dims;
                format!("{}:{b},{t},{i},{h}:{}", r.cell.name(), r.runs.min(20))
            })
            .collect();
        eprintln!("running the {} peer...", run.label);
        // On a GPU machine a failed peer (no PyTorch there) must not lose the rows just measured.
        let out = match args.backend {
            BackendKind::Ndarray => crate::peers::run_script(run.script, &specs)?,
            BackendKind::Wgpu => crate::peers::run_system_script(run.script, &specs)
                .unwrap_or_else(|e| {
                    eprintln!("the {} peer failed; recording without it: {e:#}", run.label);
                    String::new()
                }),
        };
        let (ms, about) = parse_peer(&out, &run)?;
        for r in &mut rows {
            r.peer_ms = ms.get(&(r.cell.name().to_string(), r.dims)).copied();
        }
        peer = about;
    }

    let table = render(&rows, peer.as_deref());
    println!("\n{table}");
    record_run(
        args,
        ("recurrent", args.backend_name()),
        &machine,
        &format!(
            "Forward + backward of `sum(outputs)` over a `[B, T, I]` batch (all steps returned), f32, \
             release build, medians of the runs shown after warm-up; rensa and burn-nn 0.21 alternate \
             in one process{}.",
            match &peer {
                Some(p) => format!("; {p} measured right after, on the same machine"),
                None => String::new(),
            }
        ),
        &table,
    )?;
    Ok(())
}

/// Milliseconds by cell name and dims.
type PeerTimes = HashMap<(String, Dims), f64>;

/// A peer's milliseconds by (cell, dims) from its tab-separated lines (`peer version cell b t i
/// h ms runs`, other lines skipped), and the peer in words (label, version, the line's tag).
fn parse_peer(out: &str, run: &PeerRun) -> Result<(PeerTimes, Option<String>)> {
    let mut ms = HashMap::new();
    let mut about = None;
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 9 || !f[0].starts_with(run.tag) {
            continue;
        }
        let num = |k: usize| {
            f[k].parse::<usize>()
                .with_context(|| format!("peer output: {line}"))
        };
        let dims = (num(3)?, num(4)?, num(5)?, num(6)?);
        ms.insert(
            (f[2].to_string(), dims),
            f[7].parse()
                .with_context(|| format!("peer output: {line}"))?,
        );
        about = Some(format!("{} {} ({})", run.label, f[1], f[0]));
    }
    Ok((ms, about))
}

/// The peer of `--peers`: Keras/TensorFlow on the CPU beside ndarray, PyTorch (cuDNN on a CUDA
/// GPU) beside wgpu.
struct PeerRun {
    script: &'static str,
    /// The first field of the script's lines.
    tag: &'static str,
    label: &'static str,
}

fn peer_run(backend: BackendKind) -> PeerRun {
    match backend {
        BackendKind::Ndarray => PeerRun {
            script: "keras_recurrent.py",
            tag: "keras-tf-cpu",
            label: "Keras/TF",
        },
        BackendKind::Wgpu => PeerRun {
            script: "torch_recurrent.py",
            tag: "torch-",
            label: "PyTorch",
        },
    }
}

fn render(rows: &[Row], peer: Option<&str>) -> String {
    let mut t = String::new();
    let _ = write!(
        t,
        "| cell | B, T, I, H | runs | rensa ms | rensa plain-ops ms | burn-nn ms | burn-nn / rensa |"
    );
    if let Some(p) = peer {
        let _ = write!(t, " {p} ms | peer / rensa |");
    }
    let _ = write!(t, "\n| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    if peer.is_some() {
        t.push_str(" ---: | ---: |");
    }
    t.push('\n');
    for r in rows {
        let (b, s, i, h) = r.dims;
        let _ = write!(
            t,
            "| {} | {b}, {s}, {i}, {h} | {} | {:.2} | {:.2} | {:.2} | {:.2}x |",
            r.cell.name(),
            r.runs,
            r.rensa_ms,
            r.plain_ms,
            r.burn_nn_ms,
            r.burn_nn_ms / r.rensa_ms
        );
        if peer.is_some() {
            match r.peer_ms {
                Some(k) => {
                    let _ = write!(t, " {k:.2} | {:.2}x |", k / r.rensa_ms);
                }
                None => t.push_str(" – | – |"),
            }
        }
        t.push('\n');
    }
    t
}

/// Median milliseconds of rensa (fused), rensa with the plain-ops path, and burn-nn for one cell
/// and shape, runs alternating.
fn measure<B: AutodiffBackend + RecurrentBackend>(
    cell: Cell,
    dims: Dims,
    runs: usize,
    device: &B::Device,
) -> [f64; 3]
where
    B::InnerBackend: RecurrentBackend,
{
    let (b, t, i, h) = dims;
    B::seed(device, 0);
    let x = Tensor::<B, 3>::random([b, t, i], Distribution::Normal(0.0, 1.0), device);
    let sync = || B::sync(device).expect("device sync");
    let step = |loss: Tensor<B, 1>| {
        let grads = loss.backward();
        sync();
        drop(grads);
    };
    let rensa = |how: Differentiation| match cell {
        Cell::Lstm => rensa_layer::<LstmConfig, B>(dims, how, &x, &step, device),
        Cell::Gru => rensa_layer::<GruConfig, B>(dims, how, &x, &step, device),
        Cell::Rnn => rensa_layer::<RnnConfig, B>(dims, how, &x, &step, device),
    };
    let ours = rensa(Differentiation::Fused);
    let plain_layer = rensa(Differentiation::Plain);
    let theirs: Box<dyn Fn()> = match cell {
        Cell::Lstm => {
            let m = burn::nn::LstmConfig::new(i, h, true).init::<B>(device);
            let x = x.clone();
            Box::new(move || step(m.forward(x.clone(), None).0.sum()))
        }
        Cell::Gru => {
            let m = burn::nn::GruConfig::new(i, h, true).init::<B>(device);
            let x = x.clone();
            Box::new(move || step(m.forward(x.clone(), None).sum()))
        }
        Cell::Rnn => {
            let m = burn::nn::RnnConfig::new(i, h, true).init::<B>(device);
            let x = x.clone();
            Box::new(move || step(m.forward(x.clone(), None).0.sum()))
        }
    };
    let plain = || plain_layer();
    // Warm up all three (kernel compilation, autotune, allocator), then alternate.
    let warmup = 3;
    for _ in 0..warmup {
        ours();
        plain();
        theirs();
    }
    let mut ms: [Vec<f64>; 3] = Default::default();
    for _ in 0..runs {
        ms[0].push(time_ms(&*ours));
        ms[1].push(time_ms(plain));
        ms[2].push(time_ms(&*theirs));
    }
    ms.map(median)
}

/// One training step of a rensa layer of cell config `C` on `x`, differentiated by `how`.
fn rensa_layer<'a, C: RecurrentConfig, B: AutodiffBackend + RecurrentBackend>(
    (_, _, i, h): Dims,
    how: Differentiation,
    x: &Tensor<B, 3>,
    step: &'a impl Fn(Tensor<B, 1>),
    device: &B::Device,
) -> Box<dyn Fn() + 'a>
where
    B::InnerBackend: RecurrentBackend,
{
    let m = C::sized(i, h)
        .differentiated(how)
        .init_layer::<B>(device)
        .expect("valid config");
    let x = x.clone();
    Box::new(move || step(m.forward(SequenceInput::new(x.clone())).output.sum()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peers_lines_are_read_by_cell_and_shape() {
        let torch = "warning: something\n\
                     torch-cudnn-NVIDIA_H200\t2.11.0+cu130\tLSTM\t16\t24\t1\t10\t0.512\t20\n\
                     torch-cudnn-NVIDIA_H200\t2.11.0+cu130\tSimpleRNN\t128\t100\t512\t1024\t3.250\t5\n";
        let (ms, about) = parse_peer(torch, &peer_run(BackendKind::Wgpu)).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[&("LSTM".to_string(), (16, 24, 1, 10))], 0.512);
        assert_eq!(ms[&("SimpleRNN".to_string(), (128, 100, 512, 1024))], 3.25);
        assert_eq!(
            about.as_deref(),
            Some("PyTorch 2.11.0+cu130 (torch-cudnn-NVIDIA_H200)")
        );
        // Keras's lines are not PyTorch's, and a malformed number is an error, not a skip.
        let keras = "keras-tf-cpu\t2.21.0\tGRU\t64\t64\t128\t256\t51.3\t9\n";
        assert!(
            parse_peer(keras, &peer_run(BackendKind::Wgpu))
                .unwrap()
                .0
                .is_empty()
        );
        assert_eq!(
            parse_peer(keras, &peer_run(BackendKind::Ndarray))
                .unwrap()
                .0
                .len(),
            1
        );
        let bad = "torch-cpu\t2.11\tGRU\t64\tx\t128\t256\t51.3\t9\n";
        assert!(parse_peer(bad, &peer_run(BackendKind::Wgpu)).is_err());
    }
}
