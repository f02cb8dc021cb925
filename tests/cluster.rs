//! A replicated store: a three-node Garage cluster (`replication_factor =
//! 3`), with one node down or hung while assetpub publishes and rolls back.
//! Whatever a run wrote through the remaining quorum must be whole on every
//! node once the missing one is back.

use std::process::Output;
use std::time::Duration;

use crate::cli::{Project, pseudo_random};
use crate::support::s3client::S3Client;
use crate::support::{GarageCluster, output_within};

const PREFIX: &str = "site";

/// Longer than any run here takes with a node down or hung (a second, or
/// Garage's 75 s to give up on a hung peer plus one request timeout); a run
/// that hangs on the missing node fails the test instead of stalling it.
const RUN_DEADLINE: Duration = Duration::from_secs(150);

struct ClusterSite<'c> {
    p: Project,
    cluster: &'c GarageCluster,
    bucket: String,
}

impl ClusterSite<'_> {
    fn new(cluster: &GarageCluster) -> ClusterSite<'_> {
        let bucket = cluster.unique_bucket("cluster");
        let p = Project::new();
        p.config(&format!(
            "[source]\ndirs = [\"site\"]\n\n[target]\nurl = \"s3://{bucket}/{PREFIX}\"\npath_style = true\n"
        ));
        ClusterSite { p, cluster, bucket }
    }

    /// `assetpub ARGS` against node `node`'s S3 endpoint, killed and failed
    /// if it runs past [`RUN_DEADLINE`].
    fn run(&self, node: usize, args: &[&str]) -> Output {
        let mut cmd = self.p.std_cmd();
        self.cluster.nodes[node].apply_env(&mut cmd);
        cmd.args(args);
        output_within(
            cmd,
            RUN_DEADLINE,
            &format!("assetpub {args:?} via node {node}"),
        )
    }

    /// As [`ClusterSite::run`] with `--json`, expecting success.
    fn json(&self, node: usize, args: &[&str]) -> serde_json::Value {
        let out = self.run(node, &[args, &["--json"]].concat());
        assert!(
            out.status.success(),
            "assetpub {args:?} via node {node} failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    }

    fn client(&self, node: usize) -> S3Client {
        S3Client::new(&self.cluster.nodes[node], &self.bucket)
    }

    /// `manifest.json` as node `node` serves it.
    fn manifest(&self, node: usize) -> serde_json::Value {
        let bytes = self
            .client(node)
            .get(&format!("{PREFIX}/manifest.json"))
            .unwrap_or_else(|| panic!("node {node} has no manifest.json"));
        serde_json::from_slice(&bytes).expect("manifest.json is JSON")
    }

    /// Reads every object the current manifest names (fingerprinted objects
    /// and stable keys) and the named deploys' manifests from node `node`,
    /// and checks each against the manifest's size and blake3.
    fn assert_whole_on(&self, node: usize, deploys: &[&str]) -> usize {
        let s3 = self.client(node);
        let m = self.manifest(node);
        let mut checked = 0;
        for (logical, e) in m["files"].as_object().expect("files") {
            let key = e["key"].as_str().unwrap();
            let keys = match e["object"].as_str() {
                Some(object) => vec![key, object],
                None => vec![key],
            };
            for key in keys {
                let found = s3.get(&format!("{PREFIX}/{key}"));
                // A page written straight has its object made only when a
                // later deploy replaces it.
                if found.is_none()
                    && key != e["key"].as_str().unwrap()
                    && crate::s3::written_straight(e)
                {
                    continue;
                }
                let bytes =
                    found.unwrap_or_else(|| panic!("node {node}: `{key}` ({logical}) is missing"));
                assert_eq!(
                    bytes.len() as u64,
                    e["size"].as_u64().unwrap(),
                    "node {node}: size of `{key}` ({logical})"
                );
                assert_eq!(
                    blake3::hash(&bytes).to_hex().as_str(),
                    e["blake3"].as_str().unwrap(),
                    "node {node}: bytes of `{key}` ({logical})"
                );
                checked += 1;
            }
        }
        for d in deploys {
            let bytes = s3
                .get(&format!("{PREFIX}/.assetpub/deploys/{d}.json"))
                .unwrap_or_else(|| panic!("node {node}: the manifest of deploy {d} is missing"));
            let dm: serde_json::Value = serde_json::from_slice(&bytes).expect("deploy JSON");
            assert_eq!(dm["deploy"], *d, "node {node}: deploy manifest {d}");
        }
        checked
    }
}

#[test]
fn publish_and_rollback_with_one_of_three_garage_nodes_down() {
    let cluster = GarageCluster::start(3);
    let site = ClusterSite::new(&cluster);
    let p = &site.p;
    p.write("site/index.html", "<!doctype html><h1>first</h1>");

    let first = site.json(0, &["publish"]);
    let d1 = first["deploy"].as_str().unwrap().to_string();

    // The node that took the first deploy crashes; the rest goes through
    // another node, as a load balancer in front of the cluster would send it.
    cluster.stop(0);
    cluster.wait_healthy();
    let h = cluster.health(1);
    assert_eq!(h["storageNodesUp"], 2, "{h}");
    assert_eq!(h["status"], "degraded", "{h}");

    p.write("site/index.html", "<!doctype html><h1>second</h1>");
    p.write_bytes("site/img/bg.png", &pseudo_random(5000, 42));
    let second = site.json(1, &["publish"]);
    let d2 = second["deploy"].as_str().unwrap().to_string();
    assert_ne!(d2, d1);
    assert_eq!(site.manifest(2)["deploy"], d2.as_str());
    assert_eq!(
        site.client(2).get(&format!("{PREFIX}/index.html")).unwrap(),
        b"<!doctype html><h1>second</h1>"
    );

    // Rolling back needs the first deploy's objects, all written through the
    // node that is now down.
    let rb = site.json(1, &["rollback"]);
    assert_eq!(rb["to"], d1.as_str(), "{rb}");
    assert_eq!(site.manifest(2)["deploy"], d1.as_str());
    assert_eq!(
        site.client(2).get(&format!("{PREFIX}/index.html")).unwrap(),
        b"<!doctype html><h1>first</h1>"
    );

    let third = site.json(1, &["publish"]);
    let d3 = third["deploy"].as_str().unwrap().to_string();
    assert_eq!(site.manifest(1)["deploy"], d3.as_str());
    assert_eq!(site.manifest(1)["parent"], d1.as_str());

    let v = site.json(2, &["verify"]);
    assert_eq!(
        v["problems"],
        serde_json::json!([]),
        "verify with node 0 down: {v}"
    );

    cluster.restart(0);
    for node in 0..3 {
        let v = site.json(node, &["verify"]);
        assert_eq!(
            v["problems"],
            serde_json::json!([]),
            "verify via node {node}: {v}"
        );
        assert_eq!(site.manifest(node)["deploy"], d3.as_str(), "node {node}");
        let checked = site.assert_whole_on(node, &[&d1, &d2, &d3]);
        assert!(checked >= 10, "node {node}: only {checked} objects checked");
    }
    assert_eq!(
        site.client(0).get(&format!("{PREFIX}/index.html")).unwrap(),
        b"<!doctype html><h1>second</h1>"
    );
}

#[test]
fn a_hung_garage_node_does_not_stall_a_publish_or_a_rollback() {
    let cluster = GarageCluster::start(3);
    let site = ClusterSite::new(&cluster);
    let p = &site.p;
    let first = site.json(0, &["publish"]);
    let d1 = first["deploy"].as_str().unwrap().to_string();

    // Frozen, not dead: its connections stay open and never answer, which
    // only a timeout tells from a slow node. Garage itself routes some
    // requests to it until it gives up on the peer (five missed pings,
    // about 75 s); assetpub abandons each such attempt after its request
    // timeout (30 s) and retries, so a run takes a second or, when it hits
    // the hung node, a little longer than Garage's detection.
    cluster.nodes[2].freeze(true);
    p.write("site/about.html", "<!doctype html><p>changed</p>");
    let second = site.json(0, &["publish"]);
    let d2 = second["deploy"].as_str().unwrap().to_string();
    let rb = site.json(1, &["rollback"]);
    assert_eq!(rb["to"], d1.as_str(), "{rb}");
    cluster.nodes[2].freeze(false);

    cluster.wait_healthy();
    for node in 0..3 {
        assert_eq!(site.manifest(node)["deploy"], d1.as_str(), "node {node}");
        site.assert_whole_on(node, &[&d1, &d2]);
    }
}
