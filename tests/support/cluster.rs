//! A replicated Garage cluster on loopback: three `garage server` processes
//! sharing one `rpc_secret`, `replication_factor = 3`, each with its own
//! directory and ports, connected to each other and given one layout, an
//! access key and buckets.
//!
//! Each node is an [`S3Server`] of its own, so it has its own watchdog: when
//! the test process ends for any reason the nodes are killed and their
//! directories removed. Nodes can be stopped and started again individually;
//! a restarted node keeps its data and identity and is reconnected.

use std::time::{Duration, Instant};

use super::random_hex;
use super::servers::{GarageMember, S3Server};

const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

pub struct GarageCluster {
    pub nodes: Vec<S3Server>,
    /// `<64 hex>@127.0.0.1:PORT` of each node, in [`GarageCluster::nodes`] order.
    ids: Vec<String>,
}

impl GarageCluster {
    /// Starts `n` nodes, connects each to every other, assigns all of them a
    /// role in one layout (each holds a full copy when `n == 3`), imports the
    /// access key, and waits until every node reports the cluster healthy.
    pub fn start(n: usize) -> GarageCluster {
        let member = GarageMember {
            rpc_secret: random_hex(32),
            replication_factor: 3,
            access_key: format!("GK{}", random_hex(12)),
            secret_key: random_hex(32),
        };
        let nodes: Vec<S3Server> = (0..n)
            .map(|_| {
                S3Server::start_garage_member(member.clone()).unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let ids = nodes
            .iter()
            .map(|node| node.garage_node_id().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let cluster = GarageCluster { nodes, ids };
        cluster.connect((0..n).collect::<Vec<_>>().as_slice());
        let first = &cluster.nodes[0];
        for id in &cluster.ids {
            let short = id.split('@').next().unwrap_or(id);
            first.garage_cli(&["layout", "assign", "-z", "dc1", "-c", "1G", short]);
        }
        first.garage_cli(&["layout", "apply", "--version", "1"]);
        cluster.wait_healthy();
        first.garage_import_key().unwrap_or_else(|e| panic!("{e}"));
        cluster
    }

    /// `garage node connect` from each of `nodes` to every other running
    /// node, both ways: a node that was down is not redialled by its peers
    /// on its own for a while.
    fn connect(&self, nodes: &[usize]) {
        let running: Vec<usize> = self.running();
        for &from in nodes {
            for &to in &running {
                if from == to {
                    continue;
                }
                self.nodes[from].garage_cli(&["node", "connect", &self.ids[to]]);
                self.nodes[to].garage_cli(&["node", "connect", &self.ids[from]]);
            }
        }
    }

    fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect()
    }

    /// `GetClusterHealth` as node `i` sees it.
    pub fn health(&self, i: usize) -> serde_json::Value {
        let out = self.nodes[i].garage_cli(&["json-api", "GetClusterHealth"]);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("GetClusterHealth of node {i} is not JSON ({e}): {out}"))
    }

    /// Waits until every running node sees every running node connected
    /// and up, and, when all nodes run, every partition fully replicated.
    pub fn wait_healthy(&self) {
        let running = self.running();
        let up = running.len() as u64;
        let all = self.nodes.len() == running.len();
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        loop {
            let views: Vec<(usize, serde_json::Value)> =
                running.iter().map(|&i| (i, self.health(i))).collect();
            let ok = views.iter().all(|(_, h)| {
                h["connectedNodes"] == up
                    && h["storageNodesUp"] == up
                    && h["partitionsQuorum"] == h["partitions"]
                    && (!all
                        || (h["status"] == "healthy" && h["partitionsAllOk"] == h["partitions"]))
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Garage cluster did not settle with {up} of {} nodes up within {HEALTH_TIMEOUT:?}: {views:#?}",
                self.nodes.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Creates a bucket (and website access to it) through the first
    /// running node; the bucket is there on every node.
    pub fn unique_bucket(&self, prefix: &str) -> String {
        let i = *self.running().first().expect("a running node");
        self.nodes[i].unique_bucket(prefix)
    }

    /// SIGKILLs node `i`, as a crash would; its data stays on disk.
    pub fn stop(&self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again on its ports, data and identity, reconnects it
    /// and waits until the cluster is healthy again.
    pub fn restart(&self, i: usize) {
        self.nodes[i].restart();
        let id = self.nodes[i]
            .garage_node_id()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id, self.ids[i], "node {i} came back with another identity");
        self.connect(&[i]);
        self.wait_healthy();
    }
}
