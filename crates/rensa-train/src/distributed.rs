//! Data-parallel training on [burn-collective](https://docs.rs/burn-collective/0.21.0): several
//! peers (threads of one process, one per device, and processes on several machines) each train
//! a copy of the model on their shard of every batch; before every optimiser step the gradients
//! are added up across the peers by burn-collective's all-reduce, so every peer takes the same
//! step and all end with the same parameters.
//!
//! ```text
//!         batch of 64 items (the same on every peer: same seed, same shuffle)
//!   peer 0: items  0..32 ─ forward, backward ─ n₀·g₀ ┐
//!   peer 1: items 32..64 ─ forward, backward ─ n₁·g₁ ┴─ all-reduce (sum) ─ (n₀g₀ + n₁g₁)/(n₀ + n₁)
//!                                                       └─ the same optimiser step on every peer
//! ```
//!
//! The gradient every peer steps with is the item-weighted mean of the shards' gradients, which
//! for a loss that is a mean over the batch's items is exactly the gradient of the whole batch:
//! with [`Items`](crate::Items), a run on N peers takes the steps a single process takes with the
//! same batch size (up to floating-point rounding), so `batch_size` keeps its meaning and a run
//! saved on N peers resumes on M. (Other sources hand out whole batches in turn, so one step
//! covers N of their batches; they must give every peer the same batches in the same order.)
//!
//! All of a step's gradients travel in one buffer (with the shard's item count, loss, loss parts
//! and metrics appended), one all-reduce per step. Peers are set up by a [`Cluster`]: the number
//! of local peers (threads) of this process and, for several processes, the [`Nodes`] (how many,
//! which one this is, the orchestrator's address). burn-collective's orchestrator runs in one
//! process ([`serve_orchestrator`]); every process registers its peers with it.
//!
//! What [`Fit`](crate::Fit) does with a [`Peer`] ([`Fit::distributed`](crate::Fit::distributed)):
//! - at the start, every peer registers, then the peers compare their settings, the shapes of
//!   their parameters and a checksum of their weights: a peer started with another model or
//!   other settings is refused with an error that names what differs, before any step;
//! - batches: [`Batches::train_shard`](crate::Batches::train_shard) ([`Items`](crate::Items)
//!   cuts every batch into equal contiguous shards, one per peer; other sources hand out whole
//!   batches in turn);
//! - validation runs on every peer over all validation batches, and the figures are averaged
//!   across the peers so that every peer makes the same decision (early stopping, `stop_when`);
//! - only the leader (peer 0) writes checkpoints; a resume reads each process's `--out` (on
//!   several machines, a shared or copied folder: the weights checksum refuses peers that
//!   resumed from different checkpoints);
//! - every collective call has a deadline ([`Cluster::with_timeout`]): a peer that dies or hangs
//!   makes the others stop with [`Error::Peers`] instead of waiting for ever.
//!
//! - every peer stops after the same epoch: a `stop_when` that says stop on any peer stops all.
//!
//! Limits:
//! - models whose step updates state of its own ([`Output::with_update`](crate::Output::with_update),
//!   e.g. a VQ-VAE's EMA codebook) would drift apart across peers: they are refused;
//! - burn seeds its random generator per process, so local peers (threads) share one: a model
//!   that draws random numbers in its step (dropout) is reproducible across processes but not
//!   across local peers;
//! - the optimiser's and the schedule's settings are compared only when the caller adds them to
//!   [`Fit::settings`](crate::Fit::settings) (the examples do);
//! - the buffers are of the backend's float type: use f32 (the item counts and the agreement
//!   check are exact in f32, not in f16).

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use burn_collective::{AllReduceStrategy, CollectiveConfig, PeerId, ReduceOperation};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How the peers add up their tensors (burn-collective's all-reduce algorithms). All give the
/// same sum up to the order of the additions: with two peers to the bit (f32 addition
/// commutes); with three or more, burn-collective takes the peers' tensors in an order that is
/// not fixed (a hash map's), so the last bits of a sum, and so of a run, may differ from one run
/// to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Every peer sends its tensor to one, which adds them up and sends the sum back.
    Centralized,
    /// Peers in a tree of this arity: sums flow up to the root, the result down again.
    Tree(u32),
    /// Peers in a ring: each sends and receives `2 (N − 1) / N` of the tensor, whatever N is
    /// (the bandwidth-optimal choice between machines).
    Ring,
}

impl Strategy {
    fn collective(self) -> AllReduceStrategy {
        match self {
            Strategy::Centralized => AllReduceStrategy::Centralized,
            Strategy::Tree(arity) => AllReduceStrategy::Tree(arity),
            Strategy::Ring => AllReduceStrategy::Ring,
        }
    }
}

impl FromStr for Strategy {
    type Err = String;

    /// `centralized`, `ring`, `tree` (arity 2) or `tree:K`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("`{s}`: expected centralized, ring, tree or tree:K (K >= 2)");
        match s {
            "centralized" => Ok(Strategy::Centralized),
            "ring" => Ok(Strategy::Ring),
            "tree" => Ok(Strategy::Tree(2)),
            _ => {
                let arity = s.strip_prefix("tree:").ok_or_else(bad)?;
                match arity.parse::<u32>() {
                    Ok(k) if k >= 2 => Ok(Strategy::Tree(k)),
                    _ => Err(bad()),
                }
            }
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Strategy::Centralized => write!(f, "centralized"),
            Strategy::Ring => write!(f, "ring"),
            Strategy::Tree(k) => write!(f, "tree:{k}"),
        }
    }
}

/// The processes of a run over several machines (or several processes of one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nodes {
    /// How many processes take part (each with the same number of local peers).
    pub count: usize,
    /// Which one this is, from 0; node 0 holds the leader (peer 0).
    pub id: usize,
    /// The orchestrator's address, `ws://host:port` ([`serve_orchestrator`]).
    pub orchestrator: String,
    /// This process's address as the other nodes reach it, `ws://host:port`; the port is where
    /// it serves its tensors.
    pub address: String,
}

/// The peers of a run, as one process sees them: its local peers and, for a run of several
/// processes, the [`Nodes`].
#[derive(Clone, Debug)]
pub struct Cluster {
    local_peers: usize,
    nodes: Option<Nodes>,
    local_strategy: Strategy,
    global_strategy: Strategy,
    timeout: Duration,
}

impl Cluster {
    /// `peers` peers in this process (threads; one per device), no other processes. The local
    /// all-reduce is a binary tree, the deadline of a collective call two minutes.
    pub fn local(peers: usize) -> Self {
        Self {
            local_peers: peers,
            nodes: None,
            local_strategy: Strategy::Tree(2),
            global_strategy: Strategy::Ring,
            timeout: Duration::from_secs(120),
        }
    }

    /// Joins `nodes`: this process is node `nodes.id` of `nodes.count`, each with this
    /// cluster's number of local peers. Between nodes the all-reduce is a ring by default.
    pub fn with_nodes(mut self, nodes: Nodes) -> Self {
        self.nodes = Some(nodes);
        self
    }

    /// The all-reduce between the local peers (default: a binary tree).
    pub fn with_local_strategy(mut self, strategy: Strategy) -> Self {
        self.local_strategy = strategy;
        self
    }

    /// The all-reduce between the nodes (default: a ring).
    pub fn with_global_strategy(mut self, strategy: Strategy) -> Self {
        self.global_strategy = strategy;
        self
    }

    /// How long a peer waits for the others at a collective call (registration, a step's
    /// all-reduce) before it stops with [`Error::Peers`]; also bounds the wait for a dead peer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Peers over all processes.
    pub fn world(&self) -> usize {
        self.local_peers * self.nodes.as_ref().map_or(1, |n| n.count)
    }

    /// Checks the settings (counts, node id, addresses, timeout).
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn check(&self) -> Result<()> {
        if self.local_peers == 0 {
            return Err(Error::config("local peers", "at least 1", 0));
        }
        if self.timeout.is_zero() {
            return Err(Error::config("peer timeout", "more than 0 s", "0 s"));
        }
        if let Some(n) = &self.nodes {
            if n.count == 0 {
                return Err(Error::config("nodes", "at least 1", 0));
            }
            if n.id >= n.count {
                return Err(Error::config(
                    "node id",
                    format!("below the number of nodes ({})", n.count),
                    n.id,
                ));
            }
            ws_port("orchestrator address", &n.orchestrator)?;
            ws_port("node address", &n.address)?;
        }
        Ok(())
    }

    /// This process's peers, ready to hand one to each training thread.
    ///
    /// # Errors
    /// As [`check`](Self::check).
    pub fn peers(&self) -> Result<Vec<Peer>> {
        self.check()?;
        let cluster = Arc::new(self.clone());
        let first = self.nodes.as_ref().map_or(0, |n| n.id) * self.local_peers;
        Ok((0..self.local_peers)
            .map(|i| Peer {
                cluster: cluster.clone(),
                rank: first + i,
                traffic: Arc::new(Mutex::new(Traffic::default())),
            })
            .collect())
    }

    /// Runs `train` once per local peer, each on its own thread, and returns their results in
    /// peer order (the leader's first when this is node 0). When peers fail, the error returned
    /// is the first in peer order that is not [`Error::Peers`] (the cause, rather than the other
    /// peers' report of it), else the first.
    ///
    /// # Errors
    /// As [`check`](Self::check), or the first peer's error.
    pub fn run<R: Send>(&self, train: impl Fn(Peer) -> Result<R> + Sync) -> Result<Vec<R>> {
        let peers = self.peers()?;
        let train = &train;
        std::thread::scope(|s| {
            let handles: Vec<_> = peers
                .into_iter()
                .map(|peer| s.spawn(move || train(peer)))
                .collect();
            let mut results = Vec::new();
            for handle in handles {
                results.push(handle.join().unwrap_or_else(|panic| {
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Err(Error::Peers {
                        message: format!("a local peer's thread panicked: {why}"),
                    })
                }));
            }
            let errors = results.iter().filter_map(|r| r.as_ref().err());
            let cause = errors
                .clone()
                .position(|e| !matches!(e, Error::Peers { .. }));
            if let Some(i) = cause.or(errors.clone().next().map(|_| 0)) {
                let mut failed = results.into_iter().filter_map(Result::err);
                return Err(failed.nth(i).expect("an error"));
            }
            Ok(results.into_iter().map(|r| r.expect("checked")).collect())
        })
    }

    fn collective(&self) -> Result<CollectiveConfig> {
        if self.nodes.is_some() {
            quiet_network_logs();
        }
        let mut config = CollectiveConfig::default()
            .with_num_devices(self.local_peers)
            .with_local_all_reduce_strategy(self.local_strategy.collective());
        if let Some(n) = &self.nodes {
            let port = ws_port("node address", &n.address)?;
            config = config
                .with_num_nodes(n.count as u32)
                .with_global_address(address(&n.orchestrator)?)
                .with_node_address(address(&n.address)?)
                .with_data_service_port(port)
                .with_global_all_reduce_strategy(self.global_strategy.collective());
        }
        Ok(config)
    }
}

/// burn-communication installs a global log subscriber printing INFO lines of every connection
/// when it starts a server, unless the program has one; without one, a silent one is installed
/// here (rensa's errors say what went wrong).
fn quiet_network_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ =
            tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
    });
}

/// Checks, once per process, that this node can serve its tensors on `port`.
///
/// burn-collective binds a node's port in a background task that only logs a failure (the port
/// taken by another program, or by another node of the run given the same address); the run then
/// fails at the first all-reduce, on another node, with no word of the cause. Binding it here
/// first, before the first registration creates that server, turns this into an error naming
/// the port. Later registrations of the process (its other local peers, whose server is already
/// running) skip the check.
fn check_node_port(port: u16) -> Result<()> {
    static CHECKED: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if checked.contains(&port) {
        return Ok(());
    }
    std::net::TcpListener::bind(("0.0.0.0", port)).map_err(|e| Error::Peers {
        message: format!(
            "cannot serve this node's tensors on port {port} (the node address's port): {e}; \
             give each node a free port"
        ),
    })?;
    checked.push(port);
    Ok(())
}

/// `ws://host:port` → port, or an error naming `what`.
fn ws_port(what: &'static str, addr: &str) -> Result<u16> {
    let bad = || Error::config(what, "an address ws://HOST:PORT", addr);
    let rest = addr.strip_prefix("ws://").ok_or_else(bad)?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(bad()),
    }
}

fn address(addr: &str) -> Result<burn_communication::Address> {
    burn_communication::Address::from_str(addr)
        .map_err(|e| Error::config("address", "an address ws://HOST:PORT", e))
}

/// Starts burn-collective's orchestrator on `port` (all interfaces) on a thread of its own and
/// returns at once; it serves until the process ends. One process of a run starts it (the
/// examples: node 0); every node's [`Nodes::orchestrator`] names it.
///
/// # Errors
/// [`Error::Peers`] when the port cannot be bound (checked before returning) or the runtime
/// cannot start.
pub fn serve_orchestrator(port: u16) -> Result<()> {
    quiet_network_logs();
    // burn-collective logs a bind failure and returns; bind here first to report it
    std::net::TcpListener::bind(("0.0.0.0", port)).map_err(|e| Error::Peers {
        message: format!("cannot serve the orchestrator on port {port}: {e}"),
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::Peers {
            message: format!("cannot start the orchestrator's runtime: {e}"),
        })?;
    std::thread::Builder::new()
        .name("rensa-orchestrator".into())
        .spawn(move || runtime.block_on(burn_collective::start_global_orchestrator(port)))
        .map_err(|e| Error::Peers {
            message: format!("cannot start the orchestrator's thread: {e}"),
        })?;
    Ok(())
}

/// What a failed collective call most likely means.
const LOST: &str = "a peer has stopped, died or cannot be reached (see its output)";

/// What a peer sent through all-reduces: calls, elements, seconds waited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Traffic {
    /// All-reduce calls.
    pub calls: usize,
    /// Bytes of the tensors handed to the all-reduces (f32): what each peer contributes; a ring
    /// between N nodes sends and receives `2 (N − 1) / N` of it per node.
    pub bytes: usize,
    /// Seconds spent in the all-reduces, waiting for the slowest peer included.
    pub seconds: f64,
    /// Of these, the all-reduces of the training steps (one per step).
    pub steps: usize,
    /// Seconds of the steps' all-reduces.
    pub step_seconds: f64,
    /// Bytes of the steps' all-reduces.
    pub step_bytes: usize,
}

/// One peer of a [`Cluster`]: hand it to [`Fit::distributed`](crate::Fit::distributed).
#[derive(Clone, Debug)]
pub struct Peer {
    cluster: Arc<Cluster>,
    rank: usize,
    traffic: Arc<Mutex<Traffic>>,
}

impl Peer {
    /// This peer's place among all peers, from 0.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Peers over all processes.
    pub fn world(&self) -> usize {
        self.cluster.world()
    }

    /// Whether this is peer 0, the one that writes checkpoints (and should print and plot).
    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }

    /// What this peer has sent through all-reduces so far.
    pub fn traffic(&self) -> Traffic {
        *self.traffic.lock().expect("traffic")
    }

    /// Runs `call` on a helper thread and waits for it at most the cluster's timeout.
    fn deadline<T: Send + 'static>(
        &self,
        what: &str,
        call: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("rensa-peer-{}", self.rank))
            .spawn(move || {
                let _ = tx.send(call());
            })
            .map_err(|e| Error::Peers {
                message: format!("peer {}: cannot start a thread: {e}", self.rank),
            })?;
        let timeout = self.cluster.timeout;
        rx.recv_timeout(timeout).map_err(|_| Error::Peers {
            message: format!(
                "peer {} waited {:.0} s for the other peers at {what}: {LOST}; stopped",
                self.rank,
                timeout.as_secs_f64()
            ),
        })
    }

    /// Registers this peer with burn-collective (and, across nodes, with the orchestrator).
    pub(crate) fn register<B: Backend>(&self, device: &B::Device) -> Result<()> {
        let config = self.cluster.collective()?;
        if let Some(n) = &self.cluster.nodes {
            check_node_port(ws_port("node address", &n.address)?)?;
        }
        let id = PeerId::from(self.rank);
        let device = device.clone();
        let registered = self
            .deadline("registration", move || {
                burn_collective::register::<B>(id, device, config)
            })
            .and_then(|result| {
                result.map_err(|e| Error::Peers {
                    message: format!("peer {}: registration failed: {e:?}", self.rank),
                })
            });
        if registered.is_err() {
            // a timeout or a refusal: forget the half-made registration, so that this process
            // can start again
            burn_collective::reset_collective::<B>();
        }
        registered
    }

    /// Unregisters this peer at the end of a run, waiting for it a few seconds at most (less
    /// after a failed run, when the other peers may be gone).
    pub(crate) fn finish<B: Backend>(&self, succeeded: bool) {
        let id = PeerId::from(self.rank);
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("rensa-peer-{}-finish", self.rank))
            .spawn(move || {
                let _ = tx.send(burn_collective::finish_collective::<B>(id));
            });
        if spawned.is_ok() {
            // a failed run waits less: the other peers may be gone
            let wait = if succeeded { 10 } else { 2 };
            let _ = rx.recv_timeout(self.cluster.timeout.min(Duration::from_secs(wait)));
        }
    }

    /// The element-wise sum of `tensor` over all peers, followed by one more element: the
    /// number of peers that took part, which the caller checks with [`present`](Self::present)
    /// when it reads the result (one read from the device).
    ///
    /// A 1 rides along with every tensor: its sum must be the number of peers, so an all-reduce
    /// that a peer has left (burn-collective completes it with those still registered) is an
    /// error, not a silently smaller sum.
    pub(crate) fn sum<B: Backend>(&self, tensor: Tensor<B, 1>, step: bool) -> Result<Tensor<B, 1>> {
        let start = Instant::now();
        let len = tensor.dims()[0];
        let device = tensor.device();
        // (padded to one element per peer at least: a ring cuts the tensor into one slice per node)
        let pad = self.world().saturating_sub(len + 1);
        let mut parts = vec![tensor, Tensor::<B, 1>::ones([1], &device)];
        if pad > 0 {
            parts.push(Tensor::zeros([pad], &device));
        }
        let tensor = Tensor::cat(parts, 0);
        let bytes = (len + 1 + pad) * 4;
        let id = PeerId::from(self.rank);
        let primitive = tensor.into_primitive().tensor();
        let result = self.deadline(
            if step {
                "a step's all-reduce"
            } else {
                "an all-reduce"
            },
            move || burn_collective::all_reduce::<B>(id, primitive, ReduceOperation::Sum),
        )?;
        let summed = result.map_err(|e| {
            use burn_collective::CollectiveError as E;
            let why = match e {
                E::AllReduceShapeMismatch | E::AllReduceOperationMismatch => {
                    "the peers' calls differ (batches per epoch, the step's metrics or the \
                     trainable parameters)"
                }
                _ => LOST,
            };
            Error::Peers {
                message: format!(
                    "peer {}: the all-reduce failed ({e:?}): {why}; stopped",
                    self.rank
                ),
            }
        })?;
        let summed: Tensor<B, 1> =
            Tensor::from_primitive(burn::tensor::TensorPrimitive::Float(summed));
        let seconds = start.elapsed().as_secs_f64();
        let mut t = self.traffic.lock().expect("traffic");
        t.calls += 1;
        t.bytes += bytes;
        t.seconds += seconds;
        if step {
            t.steps += 1;
            t.step_seconds += seconds;
            t.step_bytes += bytes;
        }
        Ok(summed.slice(0..len + 1))
    }

    /// Checks the count of peers that took part in an all-reduce ([`sum`](Self::sum)'s last
    /// element).
    pub(crate) fn present(&self, count: f64) -> Result<()> {
        if count.round() as usize == self.world() {
            return Ok(());
        }
        Err(Error::Peers {
            message: format!(
                "peer {}: {count} of {} peers took part in an all-reduce: a peer has left the run \
                 (it stopped with an error or finished early); stopped",
                self.rank,
                self.world()
            ),
        })
    }

    /// The sums of `values` over all peers, on the host.
    pub(crate) fn sum_values<B: Backend>(
        &self,
        values: &[f64],
        device: &B::Device,
    ) -> Result<Vec<f64>> {
        let data = TensorData::new(
            values.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            [values.len()],
        );
        let summed = self.sum(Tensor::<B, 1>::from_data(data, device), false)?;
        let mut sums: Vec<f64> = summed
            .into_data()
            .convert::<f64>()
            .to_vec()
            .expect("f64 values");
        self.present(sums.pop().expect("the count of peers"))?;
        Ok(sums)
    }

    /// Checks that every peer has the same value of every entry (hashed): refuses a peer started
    /// with another model or other settings, naming the entries that differ.
    pub(crate) fn agree<B: Backend>(
        &self,
        entries: &[(String, u64)],
        device: &B::Device,
    ) -> Result<()> {
        // First the list of entries itself (and the world size), so the second call's lengths
        // agree on every peer.
        let names: Vec<u8> = entries
            .iter()
            .flat_map(|(n, _)| n.bytes().chain([0]))
            .collect();
        let head = [
            ("the names of the settings".to_string(), fnv(&names)),
            ("the number of peers".to_string(), self.world() as u64),
        ];
        let differ = self.differing::<B>(&head, device)?;
        if differ.is_empty() {
            let differ = self.differing::<B>(entries, device)?;
            if differ.is_empty() {
                return Ok(());
            }
            return Err(self.mismatch(&differ));
        }
        Err(self.mismatch(&differ))
    }

    fn mismatch(&self, differ: &[String]) -> Error {
        Error::Peers {
            message: format!(
                "peer {}: the peers were started with different {}; start every peer with the \
                 same model and settings",
                self.rank,
                differ.join(", ")
            ),
        }
    }

    /// The names of the entries whose values are not the same on every peer: each value's 8
    /// bytes and their squares are summed over the peers (exactly, in f32), and a byte is the
    /// same everywhere iff `N Σx² = (Σx)²`.
    fn differing<B: Backend>(
        &self,
        entries: &[(String, u64)],
        device: &B::Device,
    ) -> Result<Vec<String>> {
        let mut values = Vec::with_capacity(entries.len() * 16);
        for (_, v) in entries {
            for b in v.to_le_bytes() {
                let x = f64::from(b);
                values.push(x);
                values.push(x * x);
            }
        }
        let sums = self.sum_values::<B>(&values, device)?;
        let n = self.world() as f64;
        Ok(entries
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                (0..8).any(|j| {
                    let k = (i * 8 + j) * 2;
                    n * sums[k + 1] != sums[k] * sums[k]
                })
            })
            .map(|(_, (name, _))| name.clone())
            .collect())
    }
}

pub(crate) use crate::checkpoint::fnv1a64_value as fnv;

/// A checksum of `model`'s float parameters (their f32 bits, in visiting order).
pub(crate) fn weights_checksum<B: Backend, M: Module<B>>(model: &M) -> u64 {
    struct Sum(Vec<u8>);
    impl<B: Backend> ModuleVisitor<B> for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let data = param.val().into_data().convert::<f32>();
            let hash = fnv(data.as_bytes());
            self.0.extend(hash.to_le_bytes());
        }
    }
    let mut sum = Sum(Vec::new());
    model.visit(&mut sum);
    fnv(&sum.0)
}

/// Puts a gradient back in its place (its parameter's id and shape) from the flat buffer.
type Restore<I> = Box<dyn FnOnce(&mut GradientsParams, Tensor<I, 1>)>;

/// The gradients of the trainable parameters, each scaled by `scale` and flattened into one
/// vector in the module's visiting order (the same on every peer), with what puts them back.
/// A parameter without a gradient on this peer contributes zeros and a 0 in `has_grad`; after
/// the sum, a parameter that had a gradient on no peer gets none (as in a run of one). A
/// parameter met twice (tied weights) is taken once.
struct Flatten<'g, B: AutodiffBackend> {
    grads: &'g mut GradientsParams,
    scale: f64,
    parts: Vec<Tensor<B::InnerBackend, 1>>,
    restore: Vec<(usize, usize, Restore<B::InnerBackend>)>,
    has_grad: Vec<f64>,
    seen: std::collections::HashSet<ParamId>,
    offset: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Flatten<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        if !value.is_require_grad() {
            return;
        }
        let id: ParamId = param.id;
        if !self.seen.insert(id) {
            return;
        }
        let grad = self.grads.remove::<B::InnerBackend, D>(id);
        self.has_grad.push(if grad.is_some() { 1.0 } else { 0.0 });
        let grad = grad.unwrap_or_else(|| value.inner().zeros_like());
        let shape = grad.shape();
        let len = shape.num_elements();
        self.parts.push(grad.reshape([len]) * self.scale);
        self.restore.push((
            self.offset,
            len,
            Box::new(
                move |g: &mut GradientsParams, flat: Tensor<B::InnerBackend, 1>| {
                    g.register::<B::InnerBackend, D>(id, flat.reshape(shape));
                },
            ),
        ));
        self.offset += len;
    }
}

/// One training step's all-reduce: `grads` (of a shard of `items` items) and the step's values
/// go in; the item-weighted means over all peers come out. `tail` are the step's numbers (loss,
/// parts, metrics), each a mean over the shard.
pub(crate) fn reduce_step<B: AutodiffBackend, M: AutodiffModule<B>>(
    peer: &Peer,
    model: &M,
    mut grads: GradientsParams,
    items: usize,
    tail: &[f64],
    device: &B::Device,
) -> Result<(GradientsParams, usize, Vec<f64>)> {
    let n = items as f64;
    let mut flatten = Flatten::<B> {
        grads: &mut grads,
        scale: n,
        parts: Vec::new(),
        restore: Vec::new(),
        has_grad: Vec::new(),
        seen: Default::default(),
        offset: 0,
    };
    model.visit(&mut flatten);
    let Flatten {
        parts,
        restore,
        has_grad,
        offset,
        ..
    } = flatten;
    let flags = has_grad.len();
    let mut values = vec![n];
    values.extend(has_grad);
    values.extend(tail.iter().map(|v| v * n));
    let data = TensorData::new(
        values.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        [values.len()],
    );
    let mut all = parts;
    all.push(Tensor::<B::InnerBackend, 1>::from_data(data, device));
    let summed = peer.sum(Tensor::cat(all, 0), true)?;
    // the step's numbers and the count of peers, in one read
    let mut head: Vec<f64> = summed
        .clone()
        .slice(offset..offset + values.len() + 1)
        .into_data()
        .convert::<f64>()
        .to_vec()
        .expect("f64 values");
    peer.present(head.pop().expect("the count of peers"))?;
    let total = head[0];
    let with_grad = &head[1..1 + flags];
    let means = head[1 + flags..].iter().map(|v| v / total).collect();
    let grads_sum = summed.slice(0..offset.max(1)) / total;
    let mut reduced = GradientsParams::new();
    for ((start, len, put), &peers) in restore.into_iter().zip(with_grad) {
        if peers > 0.5 {
            put(&mut reduced, grads_sum.clone().slice(start..start + len));
        }
    }
    Ok((reduced, total.round() as usize, means))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse_and_print() {
        for s in ["centralized", "ring", "tree:2", "tree:4"] {
            assert_eq!(s.parse::<Strategy>().unwrap().to_string(), s);
        }
        assert_eq!("tree".parse::<Strategy>(), Ok(Strategy::Tree(2)));
        for bad in ["", "tree:1", "tree:x", "rings", "tree:"] {
            assert!(bad.parse::<Strategy>().unwrap_err().contains(bad));
        }
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(ws_port("a", "ws://127.0.0.1:3000").unwrap(), 3000);
        for bad in [
            "127.0.0.1:3000",
            "ws://:3000",
            "ws://host",
            "ws://host:0",
            "ws://host:70000",
        ] {
            let e = ws_port("orchestrator address", bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("orchestrator address") && e.contains(bad), "{e}");
        }
        let nodes = |id| Nodes {
            count: 2,
            id,
            orchestrator: "ws://127.0.0.1:3000".into(),
            address: "ws://127.0.0.1:3001".into(),
        };
        assert!(Cluster::local(2).with_nodes(nodes(1)).check().is_ok());
        assert_eq!(Cluster::local(2).with_nodes(nodes(1)).world(), 4);
        let e = Cluster::local(1).with_nodes(nodes(2)).check().unwrap_err();
        assert!(e.to_string().contains("node id"), "{e}");
        assert!(Cluster::local(0).check().is_err());
        let ranks: Vec<usize> = Cluster::local(2)
            .with_nodes(nodes(1))
            .peers()
            .unwrap()
            .iter()
            .map(Peer::rank)
            .collect();
        assert_eq!(ranks, [2, 3]);
    }
}
