//! A cluster across machines, as three hosts would be: three network namespaces on a bridge, each
//! with an address of its own (made and removed by this test; the traffic stays on this machine),
//! a broker of this test's own listening on the bridge's address, and `run -n 3` with a hostfile
//! naming the namespaces' addresses. Exactly-once: one process killed with SIGKILL once the job
//! has committed, all three restarted (what `docs/operations.md` says to do), and the job resumed
//! from its state topic: the read_committed alpha holds every change once and applies to a
//! replay's state. Needs root and iproute2 (`ip netns`), as on the project's machines.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::broker::Broker;
use common::kafka::{
    apply_changes, assert_same_state, publish, read_topic_committed, replayed_state, unique,
};
use common::simulate;

/// Three namespaces on a bridge: the bridge at `10.231.<subnet>.1`, namespace `i` at
/// `10.231.<subnet>.<i + 2>`. Removed when dropped.
struct Network {
    id: String,
    subnet: u32,
}

const HOSTS: usize = 3;

fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("this test needs iproute2 (`ip`): {error}");
        });
    assert!(
        output.status.success(),
        "`ip {}` failed (this test needs root for network namespaces): {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Network {
    fn create() -> Network {
        let pid = std::process::id();
        let network = Network {
            id: format!("rfc{}", pid % 100_000),
            subnet: 20 + pid % 200,
        };
        // Whatever a killed earlier run of the same names left behind goes first.
        drop(Network {
            id: network.id.clone(),
            subnet: network.subnet,
        });
        let bridge = format!("{}br", network.id);
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", network.bridge()),
            "dev",
            &bridge,
        ]);
        ip(&["link", "set", &bridge, "up"]);
        for host in 0..HOSTS {
            let namespace = network.namespace(host);
            let (outside, inside) = (
                format!("{}v{host}", network.id),
                format!("{}p{host}", network.id),
            );
            ip(&["netns", "add", &namespace]);
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", &inside,
            ]);
            ip(&["link", "set", &inside, "netns", &namespace]);
            ip(&["link", "set", &outside, "master", &bridge]);
            ip(&["link", "set", &outside, "up"]);
            let address = format!("{}/24", network.address(host));
            ip(&["-n", &namespace, "addr", "add", &address, "dev", &inside]);
            ip(&["-n", &namespace, "link", "set", &inside, "up"]);
            ip(&["-n", &namespace, "link", "set", "lo", "up"]);
        }
        network
    }

    fn namespace(&self, host: usize) -> String {
        format!("{}n{host}", self.id)
    }

    fn bridge(&self) -> String {
        format!("10.231.{}.1", self.subnet)
    }

    fn address(&self, host: usize) -> String {
        format!("10.231.{}.{}", self.subnet, host + 2)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for host in 0..HOSTS {
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.namespace(host)])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("ip")
            .args(["link", "delete", &format!("{}br", self.id)])
            .stderr(Stdio::null())
            .status();
    }
}

/// The job's three processes, each in its namespace; killed (SIGKILL) when dropped.
struct Cluster(Vec<Child>);

impl Cluster {
    fn start(network: &Network, hostfile: &Path, args: &[&str], log: &Path) -> Cluster {
        let processes = (0..HOSTS)
            .map(|host| {
                Command::new("ip")
                    .args(["netns", "exec", &network.namespace(host)])
                    .arg(env!("CARGO_BIN_EXE_roomflow"))
                    .args(args)
                    .args(["-w", "1", "-n", "3", "-p", &host.to_string()])
                    .args(["-h", hostfile.to_str().unwrap()])
                    .env("ROOMFLOW_LOG", "roomflow=info")
                    .stdout(Stdio::null())
                    .stderr(
                        std::fs::File::create(log.with_extension(format!("{host}.log"))).unwrap(),
                    )
                    .spawn()
                    .unwrap()
            })
            .collect();
        Cluster(processes)
    }

    fn wait(mut self, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(240);
        for (host, child) in self.0.iter_mut().enumerate() {
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let log = log.with_extension(format!("{host}.log"));
                    assert!(
                        status.success(),
                        "process {host} failed: {status}\n{}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                    break;
                }
                assert!(Instant::now() < deadline, "the cluster did not finish");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn three_hosts_killed_one_and_restarted_all_resume_exactly() {
    let network = Network::create();
    let dir = tempfile::tempdir().unwrap();
    // Ports of this test's own, away from the other tests' brokers (19092, 20000-21899).
    let broker = Broker {
        port: 22_000 + (std::process::id() % 300) as u16 * 2,
        state: dir.path().join("broker"),
        sasl_ssl: None,
        host: Some(network.bridge()),
    };
    broker.script("start");
    // The helpers read the broker from KAFKA_BROKERS; this binary holds only this test.
    std::env::set_var("KAFKA_BROKERS", broker.address());
    let input = simulate(
        dir.path(),
        "readings.jsonl",
        &["--rooms", "12", "--readings", "60000", "--seed", "5"],
    );
    let topic = unique("sensors");
    publish(&input, &topic, "6");
    let hostfile = dir.path().join("hosts");
    let hosts: Vec<String> = (0..HOSTS)
        .map(|host| format!("{}:2101\n", network.address(host)))
        .collect();
    std::fs::write(&hostfile, hosts.concat()).unwrap();

    let group = unique("cluster");
    let (alpha, dead) = (format!("{group}.alpha"), format!("{group}.dead"));
    let brokers = broker.address();
    let args = [
        "run",
        "--topics",
        &topic,
        "--group",
        &group,
        "--alpha-topic",
        &alpha,
        "--dead-letter-topic",
        &dead,
        "--brokers",
        &brokers,
        "--alpha-guarantee",
        "exactly-once",
        "--exit-when-idle",
        "3s",
    ];
    // Killed once the job has committed a transaction: process 1 first, as a host would fail;
    // then the other two, which a broken cluster cannot go on without.
    let first = dir.path().join("first");
    let mut cluster = Cluster::start(&network, &hostfile, &args, &first);
    let state_topic = format!("roomflow.{group}.state");
    let deadline = Instant::now() + Duration::from_secs(120);
    while read_topic_committed(&state_topic).is_empty() {
        assert!(Instant::now() < deadline, "no transaction committed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = cluster.0[1].kill();
    std::thread::sleep(Duration::from_millis(300));
    drop(cluster);

    let last = dir.path().join("last");
    Cluster::start(&network, &hostfile, &args, &last).wait(&last);
    let resumed = (0..HOSTS).all(|host| {
        std::fs::read_to_string(last.with_extension(format!("{host}.log")))
            .unwrap()
            .contains("resuming from the last transaction")
    });
    assert!(
        resumed,
        "a restarted process did not resume from the state topic"
    );

    let committed = read_topic_committed(&alpha);
    let mut seen = std::collections::BTreeSet::new();
    for record in &committed {
        let change: serde_json::Value = serde_json::from_slice(&record.payload).unwrap();
        let key = (record.key.clone(), change["time"].as_u64().unwrap());
        assert!(
            seen.insert(key),
            "a change repeated on the read_committed alpha"
        );
    }
    let replayed = replayed_state(&[&input], &dir.path().join("replay"));
    assert_same_state(&apply_changes(&committed), &replayed);
}
