//! The multi-threaded CPU trainer: Hogwild (Recht et al. 2011), as word2vec.c and gensim train.
//!
//! Threads update the shared weight matrices without locks; two threads may touch the same row at
//! once and one update can then overwrite part of the other, which sparse word2vec updates
//! tolerate. The weights are held as `AtomicU32` bit patterns and every element is read and
//! written as a relaxed atomic load or store, so the races are defined behaviour; the rows move
//! four elements per instruction ([`rensa_isa::relaxed`]), and the arithmetic runs on
//! thread-local copies of the rows, where the compiler vectorises it. With one worker thread
//! nothing is shared: the weights are plain cells owned by that thread.
//!
//! With two workers or more, each worker keeps its own copy of the rows of each matrix that
//! are used most: the input and output rows of the most frequent words (the vocabulary is ranked
//! by count, so those are the first rows; with hierarchical softmax, the output rows of the
//! inner nodes nearest the root, the last ones), up to 32 MiB of each matrix by default
//! (`Word2VecConfig::own_rows_bytes`; every row of a vocabulary of up to 83,886 words of 100
//! dimensions). It trains on its copy and from time to time adds what it changed in a row since
//! the row's last merge to the shared row and takes the shared row back, which then holds every
//! worker's merged changes. Merges are serialised, so no merged change is lost. The most used
//! rows (`hot_rows_bytes`, 1 MiB), which every worker changes all the time, are merged every
//! `merge_words` corpus words (40,000); the other own rows a slice at a time at each of those
//! merges, so that each is merged about every `own_merge_words` words (1,000,000), and all of
//! them at the worker's end. Rows beyond the own ones are shared: their updates reach the other
//! workers at once.
//!
//! The copies keep the workers from writing to the same memory: when two workers wrote a row
//! nearly at once, each write moved the row's cache lines from the other core's cache. Copies of
//! the 1 MiB of hot rows alone made two workers on a 2-core Intel Xeon train 1.03x (CBOW) and
//! 1.06x (skip-gram) more words per second (medians of three runs each), at the same quality
//! (seeds 1-3, two workers: analogy accuracy 12.74% against 12.63% before, 17.66% against
//! 17.37%; WordSim-353 ρ 0.416 against 0.416, 0.544 against 0.525). Copies of every row of the
//! 43,494-word benchmark vocabulary then made two workers on a 2-core AMD EPYC train skip-gram
//! 1.29x faster than with the hot rows' copies alone (median of five rounds of 2-epoch runs)
//! and CBOW about as fast (1.00x, six rounds of 5-epoch runs); CBOW's analogy accuracy was
//! 0.3-0.4 points lower on each seed, skip-gram's 0.2 points higher on average (seeds 1-3:
//! CBOW 12.63%, 12.03%, 13.24% against 12.96%, 12.34%, 13.62%, skip-gram 17.83%, 17.83%,
//! 17.51% against 16.98%, 17.26%, 18.32%; ρ 0.419, 0.403, 0.401 against 0.432, 0.408, 0.404,
//! and 0.551, 0.559, 0.544 against 0.542, 0.551, 0.541).
//!
//! A sentence's random
//! draws (windows, noise words) are made before it trains, in word2vec.c's order, so that with
//! negative sampling the next prediction's noise rows are fetched into the cache while the
//! current one trains.
//!
//! One thread reads the corpus and hands out jobs of about 10,000 words (as gensim does), each
//! with its learning rate (linear in the words read before it) and its own seed, so a run with
//! one worker thread is reproducible bit for bit. The first epoch's jobs are kept in memory (up
//! to 2^27 ids and sentence ends together: at most 512 MiB of ids, 1 GiB in all, an end taking
//! 8 bytes) and replayed in the later epochs, so the corpus is read and tokenised
//! once rather than once per epoch, and the reader takes almost no time from the workers. A
//! panic in any of the threads (a worker, or the progress callback on the calling thread)
//! stops the others and reaches the caller.

use std::cell::Cell;
use std::ops::{ControlFlow, Range};
use std::sync::atomic::AtomicU32;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use rensa_data::rng::SplitMix64;
use rensa_data::text::corpus::Corpus;
use rensa_data::text::sampling::{NoiseTable, Subsampler, context_span, shrunk_window};
use rensa_isa::relaxed;

use super::Result;
use super::config::{Architecture, Loss, Word2VecConfig};
use super::huffman::Huffman;
use super::model::{Progress, TrainReport};
use rensa_data::text::words::WordVocab;

/// Raw corpus words per job.
const JOB_WORDS: u64 = 10_000;
/// The most vocabulary ids and sentence ends, together, of the first epoch kept in memory for
/// the later ones (at most 1 GiB: 4 bytes an id, 8 an end); a larger corpus is read from its file
/// every epoch.
const CACHE_IDS: usize = 1 << 27;
/// Scores beyond ±MAX_EXP are not trained on (their sigmoid is within 0.25% of 0 or 1), as gensim
/// does (word2vec.c skips them only in hierarchical softmax; with negative sampling it trains
/// them with the saturated gradient).
const MAX_EXP: f32 = 6.0;
const EXP_TABLE_SIZE: usize = 1000;

/// Rows of a weight matrix as the trainer reads and writes them.
pub(crate) trait Rows {
    /// Copies row `r` into `dst`.
    fn load(&self, r: u32, dst: &mut [f32]);
    /// Copies `src` into row `r`.
    fn store(&self, r: u32, src: &[f32]);
    /// Adds `a * x` to row `r`.
    fn add(&self, r: u32, a: f32, x: &[f32]);
    /// Hints that row `r` will be read soon.
    fn prefetch(&self, r: u32);
}

/// A matrix shared by the worker threads (see the [module docs](self)).
pub(crate) struct SharedMatrix {
    data: Box<[AtomicU32]>,
    dims: usize,
}

impl SharedMatrix {
    pub(crate) fn new(values: Vec<f32>, dims: usize) -> Self {
        Self {
            data: values
                .into_iter()
                .map(|v| AtomicU32::new(v.to_bits()))
                .collect(),
            dims,
        }
    }

    pub(crate) fn into_values(self) -> Vec<f32> {
        self.data
            .into_vec()
            .into_iter()
            .map(|a| f32::from_bits(a.into_inner()))
            .collect()
    }

    /// The number of rows.
    fn rows(&self) -> u32 {
        (self.data.len() / self.dims.max(1)) as u32
    }

    #[inline]
    fn row(&self, r: u32) -> &[AtomicU32] {
        let start = r as usize * self.dims;
        &self.data[start..start + self.dims]
    }
}

impl Rows for SharedMatrix {
    #[inline]
    fn load(&self, r: u32, dst: &mut [f32]) {
        relaxed::load(self.row(r), dst);
    }

    #[inline]
    fn store(&self, r: u32, src: &[f32]) {
        relaxed::store(self.row(r), src);
    }

    #[inline]
    fn add(&self, r: u32, a: f32, x: &[f32]) {
        relaxed::add(self.row(r), a, x);
    }

    #[inline]
    fn prefetch(&self, r: u32) {
        rensa_isa::prefetch(self.row(r));
    }
}

/// A matrix owned by the one worker thread (not `Sync`: it cannot be shared).
pub(crate) struct LocalMatrix {
    data: Vec<Cell<f32>>,
    dims: usize,
}

impl LocalMatrix {
    pub(crate) fn new(values: Vec<f32>, dims: usize) -> Self {
        Self {
            data: values.into_iter().map(Cell::new).collect(),
            dims,
        }
    }

    pub(crate) fn into_values(self) -> Vec<f32> {
        self.data.into_iter().map(Cell::into_inner).collect()
    }

    #[inline]
    fn row(&self, r: u32) -> &[Cell<f32>] {
        let start = r as usize * self.dims;
        &self.data[start..start + self.dims]
    }
}

impl Rows for LocalMatrix {
    #[inline]
    fn load(&self, r: u32, dst: &mut [f32]) {
        for (d, s) in dst.iter_mut().zip(self.row(r)) {
            *d = s.get();
        }
    }

    #[inline]
    fn store(&self, r: u32, src: &[f32]) {
        for (d, &s) in self.row(r).iter().zip(src) {
            d.set(s);
        }
    }

    #[inline]
    fn add(&self, r: u32, a: f32, x: &[f32]) {
        for (d, &x) in self.row(r).iter().zip(x) {
            d.set(d.get() + a * x);
        }
    }

    #[inline]
    fn prefetch(&self, r: u32) {
        rensa_isa::prefetch(self.row(r));
    }
}

/// Which rows of a matrix every worker keeps its own copy of (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
struct OwnRows {
    /// Every own row.
    all: Range<u32>,
    /// The most used of them, at one end of `all`: merged at every merge.
    hot: Range<u32>,
}

impl OwnRows {
    /// The first `own` rows of a matrix of `rows` rows, or (`last`) its last ones; `hot` of them
    /// at the same end, cut to the own ones.
    fn at_end(rows: u32, own: u32, hot: u32, last: bool) -> Self {
        let own = own.min(rows);
        let hot = hot.min(own);
        if last {
            Self {
                all: rows - own..rows,
                hot: rows - hot..rows,
            }
        } else {
            Self {
                all: 0..own,
                hot: 0..hot,
            }
        }
    }

    /// The own rows that are not hot (one range: the hot ones lie at one of its ends).
    fn rest(&self) -> Range<u32> {
        debug_assert!(
            self.hot.is_empty()
                || (self.all.start <= self.hot.start
                    && self.hot.end <= self.all.end
                    && (self.hot.start == self.all.start || self.hot.end == self.all.end)),
            "hot rows {:?} at an end of the own rows {:?}",
            self.hot,
            self.all
        );
        if self.hot.is_empty() {
            self.all.clone()
        } else if self.hot.start == self.all.start {
            self.hot.end..self.all.end
        } else {
            self.all.start..self.hot.start
        }
    }
}

/// A worker's view of a [`SharedMatrix`]: its own copy of some rows, merged into the shared
/// ones by [`merge`](Self::merge), and the shared matrix's other rows (see the
/// [module docs](self)).
struct WorkerRows<'w> {
    shared: &'w SharedMatrix,
    own: OwnRows,
    /// The own rows that are not hot.
    rest: Range<u32>,
    /// How many of `rest` each merge takes.
    slice: u32,
    /// The row of `rest` the next merge's slice starts at.
    next: u32,
    /// The own rows as this worker trains them.
    copy: LocalMatrix,
    /// The own rows as they were after their last merge.
    base: Vec<f32>,
    delta: Vec<f32>,
}

impl<'w> WorkerRows<'w> {
    /// A view that copies the rows `own` of `shared` (cut to the matrix) and merges the rest of
    /// them `slice` rows at a time.
    fn new(shared: &'w SharedMatrix, own: OwnRows, slice: u32) -> Self {
        let rows = shared.rows();
        let cut = |r: &Range<u32>| r.start.min(rows)..r.end.min(rows);
        let own = OwnRows {
            all: cut(&own.all),
            hot: cut(&own.hot),
        };
        let dims = shared.dims;
        let mut base = vec![0.0; own.all.len() * dims];
        for (r, row) in own.all.clone().zip(base.chunks_exact_mut(dims.max(1))) {
            shared.load(r, row);
        }
        let rest = own.rest();
        Self {
            shared,
            copy: LocalMatrix::new(base.clone(), dims),
            slice: slice.clamp(1, rest.len().max(1) as u32),
            next: rest.start,
            rest,
            own,
            base,
            delta: vec![0.0; dims],
        }
    }

    /// Merges the hot rows and the next `slice` of the other own rows, round the `rest` in
    /// turn (so that each of those is merged once every `rest.len() / slice` merges, rounded up
    /// or down). Merges of the same matrix must not run at once (a lost update would lose a
    /// whole merge).
    fn merge(&mut self) {
        self.merge_rows(self.own.hot.clone());
        let (start, len) = (self.rest.start, self.rest.len() as u64);
        if len == 0 {
            return;
        }
        // `next` and the slice's end as offsets into `rest`; the end may pass it and wrap
        let (from, to) = (
            u64::from(self.next - start),
            u64::from(self.next - start) + u64::from(self.slice),
        );
        let at = |offset: u64| start + offset as u32;
        self.merge_rows(at(from)..at(to.min(len)));
        self.merge_rows(start..at(to.saturating_sub(len)));
        self.next = at(to % len);
    }

    /// Merges every own row (as a worker's last merge does).
    fn merge_all(&mut self) {
        self.merge_rows(self.own.all.clone());
    }

    /// Adds the changes made to the own rows `rows` since their last merge to the shared rows,
    /// and copies the shared rows (with every worker's merged changes) back.
    fn merge_rows(&mut self, rows: Range<u32>) {
        let dims = self.shared.dims;
        for r in rows {
            let i = (r - self.own.all.start) as usize;
            let base = &mut self.base[i * dims..(i + 1) * dims];
            self.copy.load(i as u32, &mut self.delta);
            for (d, b) in self.delta.iter_mut().zip(base.iter()) {
                *d -= b;
            }
            self.shared.add(r, 1.0, &self.delta);
            self.shared.load(r, base);
            self.copy.store(i as u32, base);
        }
    }

    /// The row of the copy that holds row `r`, if `r` is one of the own rows.
    #[inline]
    fn copy_row(&self, r: u32) -> Option<u32> {
        self.own.all.contains(&r).then(|| r - self.own.all.start)
    }
}

impl Rows for WorkerRows<'_> {
    #[inline]
    fn load(&self, r: u32, dst: &mut [f32]) {
        match self.copy_row(r) {
            Some(i) => self.copy.load(i, dst),
            None => self.shared.load(r, dst),
        }
    }

    #[inline]
    fn store(&self, r: u32, src: &[f32]) {
        match self.copy_row(r) {
            Some(i) => self.copy.store(i, src),
            None => self.shared.store(r, src),
        }
    }

    #[inline]
    fn add(&self, r: u32, a: f32, x: &[f32]) {
        match self.copy_row(r) {
            Some(i) => self.copy.add(i, a, x),
            None => self.shared.add(r, a, x),
        }
    }

    #[inline]
    fn prefetch(&self, r: u32) {
        match self.copy_row(r) {
            Some(i) => self.copy.prefetch(i),
            None => self.shared.prefetch(r),
        }
    }
}

/// The dot product, in eight independent lanes so that it vectorises.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `y += a * x`.
#[inline]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// `ln(1 + e^x)`, without overflow.
#[inline]
fn softplus(x: f32) -> f64 {
    let x = x as f64;
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// The logistic function tabulated on `[-MAX_EXP, MAX_EXP)`, as word2vec.c and gensim do.
struct SigmoidTable([f32; EXP_TABLE_SIZE]);

impl SigmoidTable {
    fn new() -> Self {
        let mut t = [0f32; EXP_TABLE_SIZE];
        for (i, v) in t.iter_mut().enumerate() {
            let e = ((i as f32 / EXP_TABLE_SIZE as f32 * 2.0 - 1.0) * MAX_EXP).exp();
            *v = e / (e + 1.0);
        }
        Self(t)
    }

    #[inline]
    fn get(&self, f: f32) -> f32 {
        let i = ((f + MAX_EXP) * (EXP_TABLE_SIZE as f32 / MAX_EXP / 2.0)) as usize;
        self.0[i.min(EXP_TABLE_SIZE - 1)]
    }
}

/// Sentences of vocabulary ids and their learning rate.
#[derive(Clone)]
struct Job {
    ids: Vec<u32>,
    ends: Vec<usize>,
    raw_words: u64,
    alpha: f32,
    seed: u64,
}

struct Done {
    raw_words: u64,
    effective_words: u64,
    loss: f64,
    predictions: u64,
}

/// What every worker reads.
pub(crate) struct Tables<'a> {
    config: &'a Word2VecConfig,
    subsampler: Subsampler,
    noise: Option<NoiseTable>,
    huffman: Option<Huffman>,
    sigmoid: SigmoidTable,
}

/// A worker's scratch rows and running totals.
struct Scratch {
    l1: Vec<f32>,
    neu1e: Vec<f32>,
    row: Vec<f32>,
    sentence: Vec<u32>,
    plan: Plan,
    loss: f64,
    predictions: u64,
}

/// A sentence's random draws ([`Tables::plan`]).
#[derive(Default)]
struct Plan {
    /// The context span of each position.
    spans: Vec<(usize, usize)>,
    /// The noise words of the predictions, `negatives()` per prediction, in order.
    noise: Vec<u32>,
}

/// Hands out a sentence's noise words one prediction at a time, and fetches the output rows of
/// the prediction after it into the cache.
struct NoiseCursor<'p> {
    noise: &'p [u32],
    per: usize,
    next: usize,
}

impl<'p> NoiseCursor<'p> {
    fn new<W: Rows>(noise: &'p [u32], per: usize, output: &W) -> Self {
        let cursor = Self {
            noise,
            per,
            next: 0,
        };
        cursor.prefetch(output);
        cursor
    }

    #[inline]
    fn prefetch<W: Rows>(&self, output: &W) {
        let rows = self.noise.get(self.next..self.next + self.per);
        for &r in rows.unwrap_or_default() {
            output.prefetch(r);
        }
    }

    /// The next prediction's noise words (none with hierarchical softmax).
    #[inline]
    fn take<W: Rows>(&mut self, output: &W) -> &'p [u32] {
        let own = &self.noise[self.next..self.next + self.per];
        self.next += self.per;
        self.prefetch(output);
        own
    }
}

/// The input and output weights.
struct Weights<'w, W> {
    input: &'w W,
    output: &'w W,
}

impl<'a> Tables<'a> {
    pub(crate) fn new(config: &'a Word2VecConfig, vocab: &WordVocab) -> Result<Self> {
        Ok(Self {
            config,
            subsampler: Subsampler::new(vocab, config.sample)?,
            noise: match config.loss {
                Loss::NegativeSampling => {
                    Some(NoiseTable::new(vocab.counts(), config.ns_exponent)?)
                }
                Loss::HierarchicalSoftmax => None,
            },
            huffman: match config.loss {
                Loss::HierarchicalSoftmax => Some(Huffman::new(vocab.counts())),
                Loss::NegativeSampling => None,
            },
            sigmoid: SigmoidTable::new(),
        })
    }

    /// Noise words drawn per prediction (none with hierarchical softmax).
    fn negatives(&self) -> usize {
        if self.noise.is_some() {
            self.config.negative
        } else {
            0
        }
    }

    /// Draws a sentence's random choices before it trains: each position's context span (the
    /// window shrunk at random) and the noise words of each prediction, in the order the
    /// one-pass loop of word2vec.c and gensim draws them (a position's span, then its
    /// predictions' noise words; CBOW makes no prediction for a position without context). So,
    /// with negative sampling, the trainer knows the next prediction's noise rows while the
    /// current one trains and fetches them into the cache ahead of use; the noise words come
    /// from the whole vocabulary, so their rows are mostly not in the cache. (Hierarchical
    /// softmax draws no noise words; its path rows are the frequent inner nodes.)
    fn plan(&self, words: &[u32], plan: &mut Plan, rng: &mut SplitMix64) {
        plan.spans.clear();
        plan.noise.clear();
        for i in 0..words.len() {
            let (a, b) = context_span(i, words.len(), shrunk_window(self.config.window, rng));
            plan.spans.push((a, b));
            let predictions = match self.config.architecture {
                Architecture::SkipGram => b - a - 1,
                Architecture::Cbow => usize::from(b - a > 1),
            };
            if let Some(noise) = &self.noise {
                let draws = predictions * self.config.negative;
                plan.noise.extend((0..draws).map(|_| noise.draw(rng)));
            }
        }
    }

    /// Trains the prediction of `word` from the hidden vector `s.l1` against the noise words
    /// `noise` (negative sampling) or along `word`'s Huffman path, adding the gradient for `l1`
    /// to `s.neu1e` and updating the output rows.
    #[inline]
    fn predict<W: Rows>(
        &self,
        w: &Weights<'_, W>,
        word: u32,
        noise: &[u32],
        alpha: f32,
        s: &mut Scratch,
    ) {
        let Scratch {
            l1,
            neu1e,
            row,
            loss,
            predictions,
            ..
        } = s;
        let compute_loss = self.config.compute_loss;
        let mut step = |target: u32, label: f32, row: &mut Vec<f32>| {
            w.output.load(target, row);
            let f = dot(l1, row);
            if compute_loss {
                *loss += if label > 0.5 {
                    softplus(-f)
                } else {
                    softplus(f)
                };
                *predictions += 1;
            }
            if f <= -MAX_EXP || f >= MAX_EXP {
                return;
            }
            let g = (label - self.sigmoid.get(f)) * alpha;
            axpy(neu1e, g, row);
            axpy(row, g, l1);
            w.output.store(target, row);
        };
        if let Some(h) = &self.huffman {
            let w = word as usize;
            for (&point, &code) in h.points[w].iter().zip(&h.codes[w]) {
                step(point, 1.0 - code as f32, row);
            }
        } else {
            step(word, 1.0, row);
            for &target in noise {
                if target != word {
                    step(target, 0.0, row);
                }
            }
        }
    }

    fn train_job<W: Rows>(&self, w: &Weights<'_, W>, job: &Job, s: &mut Scratch) -> Done {
        s.loss = 0.0;
        s.predictions = 0;
        let mut rng = SplitMix64::new(job.seed);
        let mut effective = 0;
        let mut start = 0;
        for &end in &job.ends {
            let mut sentence = std::mem::take(&mut s.sentence);
            sentence.clear();
            sentence.extend(
                job.ids[start..end]
                    .iter()
                    .copied()
                    .filter(|&id| self.subsampler.keep(id, &mut rng)),
            );
            start = end;
            effective += sentence.len() as u64;
            let mut plan = std::mem::take(&mut s.plan);
            self.plan(&sentence, &mut plan, &mut rng);
            match self.config.architecture {
                Architecture::SkipGram => self.skip_gram(w, &sentence, &plan, job.alpha, s),
                Architecture::Cbow => self.cbow(w, &sentence, &plan, job.alpha, s),
            }
            (s.sentence, s.plan) = (sentence, plan);
        }
        Done {
            raw_words: job.raw_words,
            effective_words: effective,
            loss: s.loss,
            predictions: s.predictions,
        }
    }

    /// Each context word in turn predicts the centre word (the draws made by [`plan`](Self::plan)).
    fn skip_gram<W: Rows>(
        &self,
        w: &Weights<'_, W>,
        words: &[u32],
        plan: &Plan,
        alpha: f32,
        s: &mut Scratch,
    ) {
        let mut noise = NoiseCursor::new(&plan.noise, self.negatives(), w.output);
        for (i, &(a, b)) in plan.spans.iter().enumerate() {
            for j in (a..b).filter(|&j| j != i) {
                let own = noise.take(w.output);
                w.input.load(words[j], &mut s.l1);
                s.neu1e.fill(0.0);
                self.predict(w, words[i], own, alpha, s);
                w.input.add(words[j], 1.0, &s.neu1e);
            }
        }
    }

    /// The mean (or sum) of the context words' input rows predicts the centre word (the draws
    /// made by [`plan`](Self::plan)).
    fn cbow<W: Rows>(
        &self,
        w: &Weights<'_, W>,
        words: &[u32],
        plan: &Plan,
        alpha: f32,
        s: &mut Scratch,
    ) {
        let mut noise = NoiseCursor::new(&plan.noise, self.negatives(), w.output);
        for (i, &(a, b)) in plan.spans.iter().enumerate() {
            let count = (b - a - 1) as f32;
            if count == 0.0 {
                continue;
            }
            let own = noise.take(w.output);
            s.l1.fill(0.0);
            for j in (a..b).filter(|&j| j != i) {
                w.input.load(words[j], &mut s.row);
                axpy(&mut s.l1, 1.0, &s.row);
            }
            if self.config.cbow_mean {
                s.l1.iter_mut().for_each(|v| *v /= count);
            }
            s.neu1e.fill(0.0);
            self.predict(w, words[i], own, alpha, s);
            let scale = if self.config.cbow_mean {
                1.0
            } else {
                1.0 / count
            };
            for j in (a..b).filter(|&j| j != i) {
                w.input.add(words[j], scale, &s.neu1e);
            }
        }
    }
}

impl Scratch {
    fn new(dims: usize) -> Self {
        Self {
            l1: vec![0.0; dims],
            neu1e: vec![0.0; dims],
            row: vec![0.0; dims],
            sentence: Vec::new(),
            plan: Plan::default(),
            loss: 0.0,
            predictions: 0,
        }
    }
}

/// Reads the corpus into jobs, `config.epochs` times (see the [module docs](self)); stops early
/// when the workers are gone. The first epoch's jobs are kept when they hold at most
/// [`CACHE_IDS`] ids, and later epochs replay them instead of reading and tokenising the file
/// again; the jobs, their learning rates and seeds are the same either way.
fn produce(
    config: &Word2VecConfig,
    vocab: &WordVocab,
    corpus: &Corpus,
    total: u64,
    jobs: SyncSender<Job>,
) -> Result<()> {
    let mut queued = 0u64;
    // each job's seed is a fresh output of a generator seeded once: seeds like `seed ^ k * γ`
    // (γ SplitMix64's own increment) made consecutive jobs replay the same stream one draw apart
    let mut seeds = SplitMix64::new(config.seed);
    let mut open = true;
    let mut cache = (config.epochs > 1).then(Vec::<Job>::new);
    let mut cached_ids = 0usize;
    // numbers a job by its first sentence's place in the run and hands it out
    let mut send = |mut job: Job, cache: &mut Option<Vec<Job>>, open: &mut bool| {
        let progress = (queued as f64 / total as f64) as f32;
        job.alpha =
            (config.alpha - (config.alpha - config.min_alpha) * progress).max(config.min_alpha);
        job.seed = seeds.next_u64();
        queued += job.raw_words;
        if let Some(kept) = cache {
            cached_ids += job.ids.len() + job.ends.len();
            if cached_ids <= CACHE_IDS {
                kept.push(job.clone());
            } else {
                *cache = None;
            }
        }
        *open = *open && jobs.send(job).is_ok();
    };
    for epoch in 0..config.epochs {
        if epoch > 0
            && let Some(kept) = cache.take()
        {
            for job in &kept {
                send(job.clone(), &mut None, &mut open);
                if !open {
                    return Ok(());
                }
            }
            cache = Some(kept);
            continue;
        }
        let mut job = new_job();
        // once the workers are gone the rest of the file is not read
        corpus.try_for_each_sentence(|sentence| {
            if !open {
                return ControlFlow::Break(());
            }
            job.ids
                .extend(sentence.tokens().filter_map(|t| vocab.id(t)));
            job.ends.push(job.ids.len());
            job.raw_words += sentence.len() as u64;
            if job.raw_words >= JOB_WORDS {
                send(
                    std::mem::replace(&mut job, new_job()),
                    &mut cache,
                    &mut open,
                );
            }
            ControlFlow::Continue(())
        })?;
        if job.raw_words > 0 && open {
            send(job, &mut cache, &mut open);
        }
        if epoch == 0 {
            // a cache that is not complete is of no use
            cache = cache.filter(|_| open);
        }
        if !open {
            break;
        }
    }
    Ok(())
}

/// Trains `input` and `output` (row-major, `vocab.len()` and `vocab.len()` or `vocab.len() - 1`
/// rows of `config.dims`) on `corpus` for `config.epochs` passes.
pub(crate) fn fit(
    config: &Word2VecConfig,
    vocab: &WordVocab,
    corpus: &Corpus,
    (input, output): (&mut Vec<f32>, &mut Vec<f32>),
    progress: &mut dyn FnMut(&Progress),
) -> Result<TrainReport> {
    let tables = Tables::new(config, vocab)?;
    let dims = config.dims;
    let total = vocab.corpus_words().max(1) * config.epochs as u64;
    let start = Instant::now();
    let mut state = ProgressState {
        config,
        total,
        start,
        report: TrainReport::default(),
        words: 0,
        effective: 0,
    };
    let (job_tx, job_rx) = sync_channel::<Job>(config.threads * 2);
    let read = if config.threads == 1 {
        let (a, b) = (
            LocalMatrix::new(std::mem::take(input), dims),
            LocalMatrix::new(std::mem::take(output), dims),
        );
        let weights = Weights {
            input: &a,
            output: &b,
        };
        let read = std::thread::scope(|scope| {
            // owned by this closure, so that a panic here drops it and the reader stops
            let job_rx = job_rx;
            let producer = scope.spawn(|| produce(config, vocab, corpus, total, job_tx));
            let mut s = Scratch::new(dims);
            for job in job_rx.iter() {
                let done = tables.train_job(&weights, &job, &mut s);
                state.absorb(done, progress);
            }
            producer.join().expect("the corpus reader")
        });
        (*input, *output) = (a.into_values(), b.into_values());
        read
    } else {
        let (a, b) = (
            SharedMatrix::new(std::mem::take(input), dims),
            SharedMatrix::new(std::mem::take(output), dims),
        );
        let weights = Weights {
            input: &a,
            output: &b,
        };
        let job_rx = Mutex::new(Some(job_rx));
        let (done_tx, done_rx) = channel::<Done>();
        let rows_of =
            |bytes: usize| (bytes / (dims.max(1) * size_of::<f32>())).min(u32::MAX as usize) as u32;
        let (own_rows, hot_rows) = (
            rows_of(config.own_rows_bytes),
            rows_of(config.hot_rows_bytes),
        );
        let own = Own {
            input: OwnRows::at_end(a.rows(), own_rows, hot_rows, false),
            // the inner nodes nearest the root are the hierarchical softmax's last rows
            output: OwnRows::at_end(
                b.rows(),
                own_rows,
                hot_rows,
                config.loss == Loss::HierarchicalSoftmax,
            ),
            merging: Mutex::new(()),
            merge_words: config.merge_words,
            own_merge_words: config.own_merge_words,
        };
        let read = std::thread::scope(|scope| {
            let producer = scope.spawn(|| produce(config, vocab, corpus, total, job_tx));
            for _ in 0..config.threads {
                let done_tx = done_tx.clone();
                let (tables, weights, own, job_rx) = (&tables, &weights, &own, &job_rx);
                scope.spawn(move || worker(tables, weights, own, job_rx, done_tx));
            }
            drop(done_tx);
            for done in done_rx {
                state.absorb(done, progress);
            }
            producer.join().expect("the corpus reader")
        });
        (*input, *output) = (a.into_values(), b.into_values());
        read
    };
    read?;
    let mut report = state.report;
    report.seconds = start.elapsed().as_secs_f64();
    report.words = state.words;
    report.effective_words = state.effective;
    report.words_per_second = state.words as f64 / report.seconds.max(1e-9);
    Ok(report)
}

/// The rows each worker keeps its own copy of, and the lock that serialises the merges.
struct Own {
    input: OwnRows,
    output: OwnRows,
    merging: Mutex<()>,
    merge_words: u64,
    own_merge_words: u64,
}

impl Own {
    /// A worker's view of `shared`, whose own rows are `rows`: the rows that are not hot are
    /// merged a slice at a time, so that each is merged about every `own_merge_words` words.
    fn view<'w>(&self, shared: &'w SharedMatrix, rows: &OwnRows) -> WorkerRows<'w> {
        let rest = rows.rest().len() as u128;
        let slice =
            (rest * u128::from(self.merge_words)).div_ceil(u128::from(self.own_merge_words.max(1)));
        WorkerRows::new(shared, rows.clone(), slice.min(u32::MAX.into()) as u32)
    }
}

/// The job queue the workers share; `None` once closed.
type Jobs = Mutex<Option<Receiver<Job>>>;

/// Closes the job queue when its worker stops, whatever the cause (no job left, the progress
/// receiver gone, a panic), so that the corpus reader's next send fails and it stops instead of
/// waiting for ever for a worker to take its job.
struct CloseOnExit<'j>(&'j Jobs);

impl Drop for CloseOnExit<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

fn worker(
    tables: &Tables<'_>,
    weights: &Weights<'_, SharedMatrix>,
    own: &Own,
    jobs: &Jobs,
    done: Sender<Done>,
) {
    let _close = CloseOnExit(jobs);
    let mut s = Scratch::new(tables.config.dims);
    let mut input = own.view(weights.input, &own.input);
    let mut output = own.view(weights.output, &own.output);
    let merge = |input: &mut WorkerRows, output: &mut WorkerRows, all: bool| {
        // a worker that panicked while merging left the rows as good as a Hogwild race would
        let _merging = own.merging.lock().unwrap_or_else(|e| e.into_inner());
        if all {
            input.merge_all();
            output.merge_all();
        } else {
            input.merge();
            output.merge();
        }
    };
    let mut unmerged = 0;
    loop {
        let job = match jobs.lock().map(|rx| rx.as_ref().map(Receiver::recv)) {
            Ok(Some(Ok(job))) => job,
            _ => break,
        };
        let view = Weights {
            input: &input,
            output: &output,
        };
        let trained = tables.train_job(&view, &job, &mut s);
        unmerged += job.raw_words;
        if unmerged >= own.merge_words {
            merge(&mut input, &mut output, false);
            unmerged = 0;
        }
        if done.send(trained).is_err() {
            break;
        }
    }
    merge(&mut input, &mut output, true);
}

fn new_job() -> Job {
    Job {
        ids: Vec::with_capacity(JOB_WORDS as usize + 1024),
        ends: Vec::new(),
        raw_words: 0,
        alpha: 0.0,
        seed: 0,
    }
}

struct ProgressState<'a> {
    config: &'a Word2VecConfig,
    total: u64,
    start: Instant,
    report: TrainReport,
    words: u64,
    effective: u64,
}

impl ProgressState<'_> {
    fn absorb(&mut self, d: Done, progress: &mut dyn FnMut(&Progress)) {
        let config = self.config;
        self.words += d.raw_words;
        self.effective += d.effective_words;
        let done = self.words as f64 / self.total as f64;
        let loss = (d.predictions > 0).then(|| d.loss / d.predictions as f64);
        if let Some(l) = loss {
            self.report.losses.push((self.words, l));
        }
        progress(&Progress {
            epoch: ((self.words * config.epochs as u64) / self.total).min(config.epochs as u64 - 1)
                as usize,
            words: self.words,
            total_words: self.total,
            alpha: (config.alpha - (config.alpha - config.min_alpha) * done as f32)
                .max(config.min_alpha),
            loss,
            seconds: self.start.elapsed().as_secs_f64(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the reference met: noise words equal to the true word (skipped), scores beyond ±6
    /// (not trained), and trained targets.
    #[derive(Default, Debug)]
    struct Met {
        noise_is_target: usize,
        saturated: usize,
        trained: usize,
    }

    /// The updates of one sentence written out plainly in f64 from the same draws (`plan`):
    /// each prediction's hidden vector, its targets and labels, `g = (label − σ(f))·α` with
    /// gensim's tabulated σ, the output rows moved by `g·h` and the inputs by the summed `g·v'`
    /// (divided over the context words for a CBOW sum).
    #[allow(clippy::too_many_arguments)]
    fn reference(
        config: &Word2VecConfig,
        huffman: Option<&Huffman>,
        words: &[u32],
        plan: &Plan,
        alpha: f64,
        input: &mut [f64],
        output: &mut [f64],
        met: &mut Met,
    ) {
        let d = config.dims;
        let sigmoid = |f: f64| {
            let i = ((f + 6.0) * (1000.0 / 12.0)).floor().clamp(0.0, 999.0);
            let e = ((i / 1000.0 * 2.0 - 1.0) * 6.0).exp();
            e / (e + 1.0)
        };
        let mut noise = plan.noise.iter().copied();
        let mut predict = |h: &[f64], word: u32, output: &mut [f64], met: &mut Met| {
            let targets: Vec<(u32, f64)> = match huffman {
                Some(t) => t.points[word as usize]
                    .iter()
                    .zip(&t.codes[word as usize])
                    .map(|(&p, &c)| (p, 1.0 - c as f64))
                    .collect(),
                None => std::iter::once((word, 1.0))
                    .chain(
                        noise
                            .by_ref()
                            .take(config.negative)
                            .filter(|&n| {
                                met.noise_is_target += usize::from(n == word);
                                n != word
                            })
                            .map(|n| (n, 0.0)),
                    )
                    .collect(),
            };
            let mut e = vec![0.0; d];
            for (t, label) in targets {
                let row = &mut output[t as usize * d..(t as usize + 1) * d];
                let f: f64 = h.iter().zip(row.iter()).map(|(a, b)| a * b).sum();
                if f.abs() >= 6.0 {
                    met.saturated += 1;
                    continue;
                }
                met.trained += 1;
                let g = (label - sigmoid(f)) * alpha;
                for k in 0..d {
                    e[k] += g * row[k];
                    row[k] += g * h[k];
                }
            }
            e
        };
        for (i, &(a, b)) in plan.spans.iter().enumerate() {
            let context: Vec<usize> = (a..b).filter(|&j| j != i).collect();
            match config.architecture {
                Architecture::SkipGram => {
                    for &j in &context {
                        let w = words[j] as usize;
                        let h = input[w * d..(w + 1) * d].to_vec();
                        let e = predict(&h, words[i], output, met);
                        for k in 0..d {
                            input[w * d + k] += e[k];
                        }
                    }
                }
                Architecture::Cbow => {
                    if context.is_empty() {
                        continue;
                    }
                    let n = context.len() as f64;
                    let mut h = vec![0.0; d];
                    for &j in &context {
                        let w = words[j] as usize;
                        for k in 0..d {
                            h[k] += input[w * d + k];
                        }
                    }
                    if config.cbow_mean {
                        h.iter_mut().for_each(|v| *v /= n);
                    }
                    let e = predict(&h, words[i], output, met);
                    let scale = if config.cbow_mean { 1.0 } else { 1.0 / n };
                    for &j in &context {
                        let w = words[j] as usize;
                        for k in 0..d {
                            input[w * d + k] += scale * e[k];
                        }
                    }
                }
            }
        }
    }

    /// One job of the trainer against [`reference`], for every architecture and loss, CBOW's
    /// mean and sum: the same weights to f32 rounding. The weights start large enough that some
    /// scores pass ±6, and the vocabulary is small enough that noise words hit the true one.
    #[test]
    fn one_job_matches_a_plain_reference() {
        let dir = std::env::temp_dir().join(format!("rensa-w2v-ref-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("counts.txt");
        std::fs::write(&path, "a a a a a a b b b b c c c d d e\n").unwrap();
        let corpus = Corpus::new(&path);
        let counts = rensa_data::text::words::WordCounts::scan(&corpus).unwrap();
        let vocab = WordVocab::build(&counts, 1, None).unwrap();
        let v = vocab.len();
        let words: Vec<u32> = [0, 1, 2, 0, 3, 4, 1, 0, 2, 0, 1, 3, 0, 2]
            .iter()
            .map(|&i| i as u32 % v as u32)
            .collect();
        let cases = [
            (Architecture::SkipGram, Loss::NegativeSampling, true),
            (Architecture::Cbow, Loss::NegativeSampling, true),
            (Architecture::Cbow, Loss::NegativeSampling, false),
            (Architecture::SkipGram, Loss::HierarchicalSoftmax, true),
            (Architecture::Cbow, Loss::HierarchicalSoftmax, true),
            (Architecture::Cbow, Loss::HierarchicalSoftmax, false),
        ];
        let mut all = Met::default();
        for (architecture, loss, cbow_mean) in cases {
            let config = Word2VecConfig {
                architecture,
                loss,
                cbow_mean,
                dims: 8,
                window: 3,
                negative: 4,
                sample: 0.0,
                min_count: 1,
                ..Word2VecConfig::default()
            };
            let d = config.dims;
            let tables = Tables::new(&config, &vocab).unwrap();
            let out_rows = match loss {
                Loss::NegativeSampling => v,
                Loss::HierarchicalSoftmax => v - 1,
            };
            let mut rng = SplitMix64::new(11);
            let mut init = |n: usize| -> Vec<f32> {
                (0..n)
                    .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 3.0 - 1.5)
                    .collect()
            };
            let (input0, output0) = (init(v * d), init(out_rows * d));
            let job = Job {
                ids: words.clone(),
                ends: vec![words.len()],
                raw_words: words.len() as u64,
                alpha: 0.05,
                seed: 7,
            };
            // the draws train_job makes: the keep tests (none at sample 0), then the plan
            let mut draws = SplitMix64::new(job.seed);
            let kept: Vec<u32> = words
                .iter()
                .copied()
                .filter(|&id| tables.subsampler.keep(id, &mut draws))
                .collect();
            assert_eq!(kept, words);
            let mut plan = Plan::default();
            tables.plan(&kept, &mut plan, &mut draws);

            let (a, b) = (
                LocalMatrix::new(input0.clone(), d),
                LocalMatrix::new(output0.clone(), d),
            );
            let mut s = Scratch::new(d);
            tables.train_job(
                &Weights {
                    input: &a,
                    output: &b,
                },
                &job,
                &mut s,
            );
            let (got_in, got_out) = (a.into_values(), b.into_values());

            let mut input: Vec<f64> = input0.iter().map(|&x| x as f64).collect();
            let mut output: Vec<f64> = output0.iter().map(|&x| x as f64).collect();
            let mut met = Met::default();
            reference(
                &config,
                tables.huffman.as_ref(),
                &kept,
                &plan,
                job.alpha as f64,
                &mut input,
                &mut output,
                &mut met,
            );
            assert!(met.trained > 0, "{met:?}");
            for (name, got, want) in [("input", &got_in, &input), ("output", &got_out, &output)] {
                for (k, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                    assert!(
                        (*g as f64 - w).abs() < 1e-4,
                        "{architecture:?} {loss:?} mean {cbow_mean}: {name}[{k}] {g} vs {w}"
                    );
                }
            }
            all.noise_is_target += met.noise_is_target;
            all.saturated += met.saturated;
            all.trained += met.trained;
        }
        // the cases the reference is there for did occur
        assert!(all.noise_is_target > 0 && all.saturated > 0, "{all:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_kernels_match_plain_loops() {
        let a: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..100).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (*x as f64) * (*y as f64))
            .sum();
        assert!((dot(&a, &b) as f64 - plain).abs() < 1e-5);
        let shared = SharedMatrix::new(a.clone(), 50);
        let local = LocalMatrix::new(a.clone(), 50);
        shared.add(1, 2.0, &b[..50]);
        local.add(1, 2.0, &b[..50]);
        let (mut row, mut other) = (vec![0.0; 50], vec![0.0; 50]);
        shared.load(1, &mut row);
        local.load(1, &mut other);
        assert_eq!(row, other);
        for k in 0..50 {
            assert_eq!(row[k], a[50 + k] + 2.0 * b[k]);
        }
        shared.store(0, &b[..50]);
        local.store(0, &b[..50]);
        assert_eq!(shared.into_values()[..50], b[..50]);
        assert_eq!(local.into_values()[..50], b[..50]);
        let t = SigmoidTable::new();
        for f in [-5.9f32, -1.0, 0.0, 0.3, 5.9] {
            assert!((t.get(f) - 1.0 / (1.0 + (-f).exp())).abs() < 0.01);
        }
        assert!((softplus(-800.0)).abs() < 1e-300 && (softplus(800.0) - 800.0).abs() < 1e-9);
    }

    fn shared_row(m: &SharedMatrix, r: u32) -> Vec<f32> {
        let mut row = vec![0.0; m.dims];
        m.load(r, &mut row);
        row
    }

    fn view_row(m: &WorkerRows, r: u32) -> Vec<f32> {
        let mut row = vec![0.0; m.shared.dims];
        m.load(r, &mut row);
        row
    }

    /// Rows `all` owned, all of them hot: merged at every merge.
    fn hot(all: Range<u32>) -> OwnRows {
        OwnRows {
            hot: all.clone(),
            all,
        }
    }

    #[test]
    fn workers_train_their_own_rows_and_merge_them_additively() {
        // 6 rows of 4; each worker owns rows 1 and 2
        let shared = SharedMatrix::new((0..24).map(|i| i as f32).collect(), 4);
        let (mut a, mut b) = (
            WorkerRows::new(&shared, hot(1..3), 1),
            WorkerRows::new(&shared, hot(1..3), 1),
        );
        a.add(1, 1.0, &[1.0; 4]);
        b.add(1, 2.0, &[1.0; 4]);
        b.store(2, &[9.0; 4]);
        // a shared row: the other worker sees the change at once
        a.add(4, 1.0, &[10.0; 4]);
        assert_eq!(view_row(&b, 4), [26.0, 27.0, 28.0, 29.0]);
        // own rows: changed in each worker's copy only
        assert_eq!(shared_row(&shared, 1), [4.0, 5.0, 6.0, 7.0]);
        assert_eq!(view_row(&a, 1), [5.0, 6.0, 7.0, 8.0]);
        assert_eq!(view_row(&b, 1), [6.0, 7.0, 8.0, 9.0]);
        a.merge();
        assert_eq!(shared_row(&shared, 1), [5.0, 6.0, 7.0, 8.0]);
        b.merge();
        // both changes, and b's copy has them; a's gets them at its next merge
        assert_eq!(shared_row(&shared, 1), [7.0, 8.0, 9.0, 10.0]);
        assert_eq!(view_row(&b, 1), [7.0, 8.0, 9.0, 10.0]);
        assert_eq!(view_row(&a, 1), [5.0, 6.0, 7.0, 8.0]);
        a.merge();
        assert_eq!(view_row(&a, 1), [7.0, 8.0, 9.0, 10.0]);
        assert_eq!(view_row(&a, 2), [9.0; 4]);
        // a merge with no change since the last one changes nothing
        let before: Vec<f32> = (0..6).flat_map(|r| shared_row(&shared, r)).collect();
        a.merge();
        b.merge();
        assert_eq!(
            (0..6)
                .flat_map(|r| shared_row(&shared, r))
                .collect::<Vec<_>>(),
            before
        );
        // a range beyond the matrix is cut to it
        let c = WorkerRows::new(&shared, hot(4..100), 1);
        assert_eq!(c.own, hot(4..6));
        assert_eq!(view_row(&c, 5), [20.0, 21.0, 22.0, 23.0]);
    }

    #[test]
    fn own_rows_lie_at_the_most_used_end() {
        let first = OwnRows::at_end(10, 4, 1, false);
        assert_eq!((first.all.clone(), first.hot.clone()), (0..4, 0..1));
        assert_eq!(first.rest(), 1..4);
        let last = OwnRows::at_end(10, 4, 1, true);
        assert_eq!((last.all.clone(), last.hot.clone()), (6..10, 9..10));
        assert_eq!(last.rest(), 6..9);
        // cut to the matrix, and the hot rows to the own ones
        let cut = OwnRows::at_end(3, 5, 9, true);
        assert_eq!((cut.all.clone(), cut.hot.clone()), (0..3, 0..3));
        assert_eq!(cut.rest(), 3..3);
        let none = OwnRows::at_end(3, 0, 1, false);
        assert!(none.all.is_empty() && none.hot.is_empty() && none.rest().is_empty());
        let no_hot = OwnRows::at_end(10, 4, 0, true);
        assert_eq!((no_hot.all.clone(), no_hot.rest()), (6..10, 6..10));
    }

    /// The rows of `m` (of 2 elements) that hold `value` everywhere.
    fn rows_at(m: &SharedMatrix, value: f32) -> Vec<u32> {
        (0..m.rows())
            .filter(|&r| shared_row(m, r) == [value; 2])
            .collect()
    }

    /// Adds 1 to every element of every row of `w`, through the worker's view.
    fn change_every_row(w: &WorkerRows) {
        for r in 0..w.shared.rows() {
            w.add(r, 1.0, &[1.0, 1.0]);
        }
    }

    #[test]
    fn the_other_own_rows_are_merged_a_slice_at_a_time_and_all_at_the_end() {
        // 8 rows of 2, 7 own, 1 hot, the other 6 merged 4 per merge; the own rows are the first
        // (row 0 hot, row 7 shared) or the last (hierarchical softmax's output rows: row 7 hot,
        // row 0 shared), and the first merges reach the same rows either way
        for last in [false, true] {
            let shared = SharedMatrix::new(vec![0.0; 16], 2);
            let mut w = WorkerRows::new(&shared, OwnRows::at_end(8, 7, 1, last), 4);
            // the rows whose change reached the shared matrix; the shared row's at once
            change_every_row(&w);
            assert_eq!(rows_at(&shared, 1.0), [if last { 0 } else { 7 }]);
            w.merge();
            assert_eq!(rows_at(&shared, 1.0), [0, 1, 2, 3, 4, 7]);
            // the next slice wraps round to the first of the rest
            w.merge();
            assert_eq!(rows_at(&shared, 1.0), (0..8).collect::<Vec<u32>>());
            // the slice is rows 3..=6 now (rows 1 and 2 were merged again, with no change, when
            // it wrapped): the second changes of rows 1 and 2 wait for the next merges
            change_every_row(&w);
            w.merge();
            let hot = if last { 7 } else { 0 };
            let at_once = 7 - hot;
            let mut twice = vec![hot, at_once, 3, 4, 5, 6];
            twice.sort();
            assert_eq!(rows_at(&shared, 2.0), twice, "own rows last: {last}");
            // the last merge takes every own row
            w.merge_all();
            assert_eq!(rows_at(&shared, 2.0), (0..8).collect::<Vec<u32>>());
        }
    }
}
