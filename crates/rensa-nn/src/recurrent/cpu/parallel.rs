//! The batch split over threads: a recurrence's rows cut into parts that run on the rayon
//! pool, each with the widest instruction set, joined in batch order.

use super::*;

/// The batch's rows split into parts that run on separate threads: the rows of a recurrence are
/// independent from the first step to the last, so each part runs its whole sequence alone and
/// only the weight gradients are summed. The split depends on the batch size only (parts of at
/// least 32 rows, at most 8), never on the thread count, so results are the same on any machine.
pub fn batch_parts(batch: usize) -> Vec<std::ops::Range<usize>> {
    let parts = (batch / 32).clamp(1, 8);
    let base = batch / parts;
    let extra = batch % parts;
    let mut start = 0;
    (0..parts)
        .map(|p| {
            let len = base + usize::from(p < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

/// The rows `r` of a row-major buffer of `width` values per batch row (empty stays empty).
pub(super) fn rows_of<'a, E>(buf: &'a [E], r: &std::ops::Range<usize>, width: usize) -> &'a [E] {
    if buf.is_empty() {
        buf
    } else {
        &buf[r.start * width..r.end * width]
    }
}

/// Inputs of a forward pass, batch-first: projection `[batch, time, G·H]`, `h0`, `c0` (empty
/// without a cell state) and the mask `[batch, time]`.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a, E> {
    /// `[batch, time, G·H]`.
    pub projected: &'a [E],
    /// `[batch, H]`.
    pub h0: &'a [E],
    /// `[batch, H]`, or empty.
    pub c0: &'a [E],
    /// `[batch, time]`.
    pub mask: Option<&'a [E]>,
}

/// Upstream gradients of a backward pass, batch-first.
#[derive(Clone, Copy, Debug)]
pub struct Grads<'a, E> {
    /// `[batch, time, H]`.
    pub d_output: &'a [E],
    /// `[batch, H]`.
    pub d_h: &'a [E],
    /// `[batch, H]`, or empty.
    pub d_c: &'a [E],
    /// `[batch, time]`.
    pub mask: Option<&'a [E]>,
}

/// Runs `run` on every part of the batch ([`batch_parts`]) in parallel, each writing its rows
/// of `output` (`[batch, time, H]`), and joins the final states; the tape is one per part.
///
/// Each part runs inside an instruction-set dispatch (AVX-512, AVX2 or the baseline target,
/// whichever is the widest the CPU has): for the gate math to be compiled for it, `run` must be
/// a `#[inline(always)]` closure calling the kernels (which are `#[inline(always)]` too), as in
///
/// ```ignore
/// par_forward(&dims, 1, x, #[inline(always)] |d, x| rnn_forward(d, x.projected, /* … */));
/// ```
/// Anything else still works, with the gate math of the portable build.
pub fn par_forward<E: Real, K: Send>(
    dims: &Dims,
    gates: usize,
    x: Inputs<'_, E>,
    output: &mut [E],
    run: impl Fn(&Dims, Inputs<'_, E>, &mut [E]) -> Forward<E, K> + Sync,
) -> Forward<E, Vec<K>> {
    use rayon::prelude::*;
    let (t, h) = (dims.time, dims.hidden);
    assert_eq!(output.len(), dims.batch * t * h, "output buffer");
    let ranges = batch_parts(dims.batch);
    let outputs = split_rows(output, &ranges, t * h);
    let parts: Vec<Forward<E, K>> = ranges
        .into_par_iter()
        .zip(outputs)
        .map(|(r, output)| {
            let part = Dims {
                batch: r.len(),
                ..dims.clone()
            };
            let x = Inputs {
                projected: rows_of(x.projected, &r, t * gates * h),
                h0: rows_of(x.h0, &r, h),
                c0: rows_of(x.c0, &r, h),
                mask: x.mask.map(|m| rows_of(m, &r, t)),
            };
            with_best_isa(
                #[inline(always)]
                || run(&part, x, output),
            )
        })
        .collect();
    let mut out = Forward {
        h: Vec::with_capacity(dims.batch * h),
        c: Vec::new(),
        tape: Some(Vec::with_capacity(parts.len())),
    };
    for p in parts {
        out.h.extend(p.h);
        out.c.extend(p.c);
        match (p.tape, out.tape.as_mut()) {
            (Some(k), Some(all)) => all.push(k),
            _ => out.tape = None,
        }
    }
    out
}

/// The backward pass of [`par_forward`]: `run` on every part with its own tape, in parallel,
/// each writing its rows of `d_projected` (`[batch, time, G·H]`); the state gradients are joined
/// and the weight gradients summed. Dispatched like [`par_forward`], with the same advice for
/// `run`.
pub fn par_backward<E: Real, K: Sync>(
    dims: &Dims,
    gates: usize,
    tapes: &[K],
    g: Grads<'_, E>,
    d_projected: &mut [E],
    run: impl Fn(&Dims, &K, Grads<'_, E>, &mut [E]) -> Backward<E> + Sync,
) -> Backward<E> {
    use rayon::prelude::*;
    let (t, h) = (dims.time, dims.hidden);
    assert_eq!(
        d_projected.len(),
        dims.batch * t * gates * h,
        "projection gradient buffer"
    );
    let ranges = batch_parts(dims.batch);
    assert_eq!(ranges.len(), tapes.len(), "one tape per part of the batch");
    let d_parts = split_rows(d_projected, &ranges, t * gates * h);
    let parts: Vec<Backward<E>> = ranges
        .into_par_iter()
        .zip(tapes.par_iter())
        .zip(d_parts)
        .map(|((r, tape), d_projected)| {
            let part = Dims {
                batch: r.len(),
                ..dims.clone()
            };
            let g = Grads {
                d_output: rows_of(g.d_output, &r, t * h),
                d_h: rows_of(g.d_h, &r, h),
                d_c: rows_of(g.d_c, &r, h),
                mask: g.mask.map(|m| rows_of(m, &r, t)),
            };
            with_best_isa(
                #[inline(always)]
                || run(&part, tape, g, d_projected),
            )
        })
        .collect();
    let mut out = Backward {
        d_h0: Vec::with_capacity(dims.batch * h),
        d_c0: Vec::new(),
        d_weight: Vec::new(),
        d_bias_hn: Vec::new(),
    };
    let add = |acc: &mut Vec<E>, v: Vec<E>| {
        if acc.is_empty() {
            *acc = v;
        } else {
            acc.iter_mut().zip(v).for_each(|(a, b)| *a = *a + b);
        }
    };
    for p in parts {
        out.d_h0.extend(p.d_h0);
        out.d_c0.extend(p.d_c0);
        add(&mut out.d_weight, p.d_weight);
        add(&mut out.d_bias_hn, p.d_bias_hn);
    }
    out
}
