//! The command-line options of data-parallel training, and the threads of the local peers.

use anyhow::{Context, Result, bail};
use rensa_train::distributed::{Cluster, Nodes, Peer, Strategy, serve_orchestrator};
use std::time::Duration;

/// Data-parallel training (`--peers`, `--nodes`, ...), flattened into an example's options.
///
/// One process with `--peers N` trains on N threads; several processes (on one machine or on
/// several) each get `--nodes M --node-id K --orchestrator ws://HOST:PORT --node-address
/// ws://THIS_HOST:PORT`, and node 0 serves the orchestrator on the port of `--orchestrator`.
/// Every process is started with the same settings.
#[derive(clap::Args, Clone, Debug)]
pub struct PeersArgs {
    /// Data-parallel peers in this process (threads, each with a shard of every batch and an
    /// equal part of `--threads`).
    #[arg(long, default_value_t = 1, value_parser = crate::at_least_one)]
    pub peers: usize,
    /// Processes taking part in data-parallel training, each started with its `--node-id`.
    #[arg(long, default_value_t = 1, value_parser = crate::at_least_one)]
    pub nodes: usize,
    /// This process's place among the `--nodes`, from 0 (node 0 serves the orchestrator and
    /// writes the checkpoints, history and pictures).
    #[arg(long, default_value_t = 0)]
    pub node_id: usize,
    /// The orchestrator of a run of several processes, `ws://HOST:PORT` (node 0 serves it).
    #[arg(long, value_name = "ws://HOST:PORT")]
    pub orchestrator: Option<String>,
    /// This process's address as the other nodes reach it, `ws://HOST:PORT`; it serves its
    /// tensors on that port.
    #[arg(long, value_name = "ws://HOST:PORT")]
    pub node_address: Option<String>,
    /// All-reduce between the local peers: centralized, ring, tree or tree:K.
    #[arg(long, default_value = "tree")]
    pub local_strategy: Strategy,
    /// All-reduce between the nodes: centralized, ring, tree or tree:K.
    #[arg(long, default_value = "ring")]
    pub global_strategy: Strategy,
    /// Seconds a peer waits for the others (at registration and at every step) before it stops
    /// with an error: how long a dead peer can stall the run.
    #[arg(long, default_value_t = 120, value_parser = crate::at_least_one)]
    pub peer_timeout: usize,
}

impl PeersArgs {
    /// The cluster these options describe, `None` for a run of one; node 0 starts serving the
    /// orchestrator here.
    ///
    /// # Errors
    /// Missing or malformed addresses, a node id out of range, a port that cannot be served.
    pub fn cluster(&self) -> Result<Option<Cluster>> {
        if self.nodes == 1 && (self.orchestrator.is_some() || self.node_address.is_some()) {
            bail!("--orchestrator and --node-address are for runs of several processes (--nodes)");
        }
        if self.nodes == 1 && self.node_id != 0 {
            bail!("--node-id {} needs --nodes above it", self.node_id);
        }
        if self.peers == 1 && self.nodes == 1 {
            return Ok(None);
        }
        let mut cluster = Cluster::local(self.peers)
            .with_local_strategy(self.local_strategy)
            .with_global_strategy(self.global_strategy)
            .with_timeout(Duration::from_secs(self.peer_timeout as u64));
        if self.nodes > 1 {
            let (Some(orchestrator), Some(address)) = (&self.orchestrator, &self.node_address)
            else {
                bail!(
                    "a run of several processes (--nodes {}) needs --orchestrator ws://HOST:PORT \
                     and --node-address ws://THIS_HOST:PORT",
                    self.nodes
                );
            };
            cluster = cluster.with_nodes(Nodes {
                count: self.nodes,
                id: self.node_id,
                orchestrator: orchestrator.clone(),
                address: address.clone(),
            });
        }
        cluster.check()?;
        if self.nodes > 1 && self.node_id == 0 {
            let port = self
                .orchestrator
                .as_deref()
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .context("--orchestrator")?;
            serve_orchestrator(port)?;
        }
        Ok(Some(cluster))
    }
}

/// Runs `train` on every local peer of `cluster`, each on its own thread inside a rayon pool
/// of `--threads / local peers` threads (at least one; no `--threads`: the machine's cores) that
/// treat subnormal floats as [`launch`](crate::launch)'s pool does (`--keep-subnormals`), and
/// returns their results in peer order.
///
/// # Errors
/// The first peer's error.
pub fn run_peers<R: Send>(
    cluster: &Cluster,
    common: &crate::Common,
    train: impl Fn(Peer) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let local = cluster.peers()?.len();
    let total = common.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let each = (total / local).max(1);
    let failure = std::sync::Mutex::new(None);
    let results = cluster.run(|peer| {
        let rank = peer.rank();
        match rensa_train::in_thread_pool_with(Some(each), common.subnormals(), || train(peer)) {
            Ok(Ok(r)) => Ok(Some(r)),
            Ok(Err(e)) => {
                failure
                    .lock()
                    .expect("failure")
                    .get_or_insert_with(|| e.context(format!("peer {rank}")));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    })?;
    if let Some(e) = failure.into_inner().expect("failure") {
        return Err(e);
    }
    Ok(results.into_iter().flatten().collect())
}
