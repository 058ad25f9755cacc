//! Checks of the deployment files (`docker-compose.yml`, `.env`, `Dockerfile`, `deploy/`)
//! against the command line. Docker does not run where the tests run, so this is what keeps
//! the files honest: every roomflow container's command and environment must parse as the CLI
//! would parse them (each variable must be the twin of a flag of that subcommand), every topic
//! the job and the simulator use must be created by the `topics` service, every `depends_on`
//! condition must be satisfiable, images must be pinned, and the cluster profile's hostfile
//! must name its processes in order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use yaml_rust2::Yaml;

use roomflow::cli::{Cli, Command};

mod compose;

use compose::*;

#[test]
fn every_roomflow_container_parses_as_the_cli_would() {
    let services = services();
    let roomflow: Vec<&Service> = services.iter().filter(|s| s.is_roomflow()).collect();
    let names: BTreeSet<&str> = roomflow.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "dashboard",
            "roomflow",
            "roomflow-0",
            "roomflow-1",
            "simulator"
        ])
    );
    for service in roomflow {
        let line = command_line(service);
        let cli = <Cli as clap::Parser>::try_parse_from(&line)
            .unwrap_or_else(|error| panic!("{}: {line:?} does not parse: {error}", service.name));
        match cli.command {
            Command::Run(args) => {
                args.settings().unwrap();
                args.catch_up_tick_ms().unwrap();
                assert!(args.metrics.is_some(), "{}: serves metrics", service.name);
                assert!(args.mongo.uri.is_some(), "{}: writes MongoDB", service.name);
            }
            Command::Simulate(args) => {
                assert!(args.topic.is_some(), "the simulator produces to Kafka");
            }
            Command::Dashboard(args) => {
                assert!(args.changes.is_empty(), "the dashboard reads alpha");
                assert!(
                    args.listen.ip().is_unspecified(),
                    "the dashboard listens beyond its container: {}",
                    args.listen
                );
                let port = args.listen.port();
                let ports = strings(service.field("ports").expect("published ports"));
                assert!(
                    ports
                        .iter()
                        .any(|mapping| mapping.ends_with(&format!(":{port}"))),
                    "the dashboard's port {port} is published: {ports:?}"
                );
                let test = strings(&service.field("healthcheck").unwrap()["test"]).join(" ");
                assert!(
                    test.contains(&format!("localhost:{port}/livez")),
                    "dashboard: health check `{test}`"
                );
            }
            other => panic!("{}: unexpected command {other:?}", service.name),
        }
    }
}

#[test]
fn a_misspelt_variable_is_caught() {
    let service = Service {
        name: "probe".into(),
        fields: BTreeMap::new(),
        environment: BTreeMap::from([("ROOMFLOW_WORKER".to_string(), "2".to_string())]),
        command: vec!["run".into()],
    };
    let panic = std::panic::catch_unwind(|| command_line(&service)).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("`ROOMFLOW_WORKER` is not read"),
        "{message}"
    );
}

#[test]
fn every_topic_used_is_created_first() {
    let services = services();
    let created = created_topics(&services);
    let env = dot_env();
    let partitions = |name: &str| env[name].parse::<u32>().unwrap();
    assert_eq!(
        created,
        BTreeMap::from([
            ("sensors".to_string(), partitions("SENSOR_PARTITIONS")),
            ("alpha".to_string(), partitions("ALPHA_PARTITIONS")),
            (
                "alpha.dead-letters".to_string(),
                partitions("ALPHA_PARTITIONS")
            ),
        ])
    );
    for service in services.iter().filter(|s| s.is_roomflow()) {
        let line = command_line(service);
        let used: Vec<String> = match <Cli as clap::Parser>::try_parse_from(&line)
            .unwrap()
            .command
        {
            Command::Run(args) => {
                let mut topics = args.topics.clone();
                topics.push(args.alpha_topic.clone());
                topics.push(args.dead_letter_topic.clone());
                topics
            }
            Command::Simulate(args) => args.topic.into_iter().collect(),
            Command::Dashboard(args) => vec![args.alpha_topic, args.dead_letter_topic],
            _ => unreachable!(),
        };
        for topic in used {
            assert!(
                created.contains_key(&topic),
                "{} uses topic `{topic}`, which the `topics` service does not create",
                service.name
            );
        }
        let depends = mapping(service.field("depends_on").unwrap());
        assert_eq!(
            depends.get("topics").map(|d| scalar(&d["condition"])),
            Some("service_completed_successfully".to_string()),
            "{} starts after the topics exist",
            service.name
        );
    }
}

#[test]
fn every_dependency_can_be_met() {
    let services = services();
    let by_name: BTreeMap<&str, &Service> = services.iter().map(|s| (s.name.as_str(), s)).collect();
    for service in &services {
        let Some(depends) = service.field("depends_on") else {
            continue;
        };
        assert!(
            matches!(depends, Yaml::Hash(_)),
            "{}: depends_on names conditions (a list starts services without waiting)",
            service.name
        );
        for (target, condition) in mapping(depends) {
            let target_service = by_name
                .get(target.as_str())
                .unwrap_or_else(|| panic!("{} depends on unknown `{target}`", service.name));
            assert!(
                target_service.profiles().is_empty(),
                "{} depends on `{target}`, which only some profiles start",
                service.name
            );
            match scalar(&condition["condition"]).as_str() {
                "service_healthy" => assert!(
                    target_service.field("healthcheck").is_some(),
                    "{} waits for `{target}` to be healthy, but it has no health check",
                    service.name
                ),
                "service_completed_successfully" => assert_eq!(
                    target_service.field("restart").map(scalar).as_deref(),
                    Some("no"),
                    "`{target}` is one-shot"
                ),
                other => panic!("{}: unexpected condition {other}", service.name),
            }
        }
    }
    // The jobs are probed where --metrics serves readiness.
    for service in services
        .iter()
        .filter(|s| s.is_roomflow() && s.name != "simulator" && s.name != "dashboard")
    {
        let test = strings(&service.field("healthcheck").unwrap()["test"]).join(" ");
        let port = service.environment["ROOMFLOW_METRICS"]
            .rsplit(':')
            .next()
            .unwrap()
            .to_string();
        assert!(
            test.contains(&format!("localhost:{port}/readyz")),
            "{}: health check `{test}`",
            service.name
        );
    }
}

#[test]
fn images_are_pinned() {
    let mut images: Vec<String> = services()
        .iter()
        .filter(|s| !s.is_roomflow())
        .map(|s| scalar(s.field("image").expect("an image")))
        .collect();
    for line in read("Dockerfile").lines() {
        if let Some(from) = line.strip_prefix("FROM ") {
            images.push(from.split_whitespace().next().unwrap().to_string());
        }
    }
    for image in images {
        let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
        assert!(
            tag.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "`{image}` is not pinned to a version"
        );
    }
}

#[test]
fn the_dockerfile_builds_with_a_new_enough_rust_and_copies_what_exists() {
    let dockerfile = read("Dockerfile");
    let builder = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("FROM rust:"))
        .expect("a rust build stage");
    let version = |text: &str| -> (u32, u32) {
        let mut parts = text.split(['.', '-']).map(|p| p.parse::<u32>().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    };
    let manifest = read("Cargo.toml");
    let required = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = \""))
        .map(|rest| rest.trim_end_matches('"'))
        .expect("a rust-version");
    let builder_version = builder.split('-').next().unwrap();
    assert!(
        version(builder_version) >= version(required),
        "the build image has Rust {builder_version}, the crate needs {required}"
    );
    // The sources of every COPY from the build context (the last word is the destination).
    let copied: Vec<&str> = dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix("COPY "))
        .filter(|copy| !copy.starts_with("--from"))
        .flat_map(|copy| {
            let words: Vec<&str> = copy.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    for path in &copied {
        assert!(
            Path::new(&repository().join(path)).exists(),
            "the Dockerfile copies `{path}`, which does not exist"
        );
    }
    assert!(dockerfile.contains("ENTRYPOINT [\"roomflow\"]"));
    // Every path the Dockerfile copies must get through .dockerignore (patterns as globs).
    let ignored: Vec<regex::Regex> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|pattern| {
            let pattern = pattern.trim_matches('/');
            let glob = regex::escape(pattern).replace(r"\*", "[^/]*");
            regex::Regex::new(&format!("^{glob}(/.*)?$")).unwrap()
        })
        .collect();
    for path in &copied {
        let path = path.trim_matches('/');
        assert!(
            !ignored.iter().any(|pattern| pattern.is_match(path)),
            ".dockerignore leaves out `{path}`, which the Dockerfile copies"
        );
    }
}

#[test]
fn the_cluster_profile_names_its_processes_in_the_hostfile() {
    let services = services();
    let cluster: Vec<&Service> = services
        .iter()
        .filter(|s| s.profiles().contains(&"cluster".to_string()))
        .collect();
    let hostfile = read("deploy/hostfile");
    let hosts: Vec<&str> = hostfile.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        cluster.len(),
        hosts.len(),
        "one container per hostfile line"
    );
    let mut processes = BTreeSet::new();
    for service in &cluster {
        let line = command_line(service);
        let Command::Run(args) = <Cli as clap::Parser>::try_parse_from(&line)
            .unwrap()
            .command
        else {
            panic!("{} runs the job", service.name)
        };
        assert_eq!(args.workers.processes, hosts.len());
        let process = args.workers.process;
        assert!(processes.insert(process), "process {process} appears twice");
        let hostname = scalar(service.field("hostname").expect("a hostname"));
        assert_eq!(
            hosts[process].split(':').next(),
            Some(hostname.as_str()),
            "line {process} of the hostfile names {}",
            service.name
        );
        // The hostfile the container reads is the repository's.
        let mount = format!(
            "./deploy/hostfile:{}:ro",
            args.workers.hostfile.as_ref().unwrap().display()
        );
        assert!(
            strings(service.field("volumes").unwrap()).contains(&mount),
            "{} mounts {mount}",
            service.name
        );
    }
    // The single-process job is not started with the cluster: they would both read every
    // partition and write the same collections.
    let single = services.iter().find(|s| s.name == "roomflow").unwrap();
    assert_eq!(single.profiles(), vec!["single".to_string()]);
    assert_eq!(dot_env()["COMPOSE_PROFILES"], "single");
}

#[test]
fn interpolation_follows_compose() {
    let env = BTreeMap::from([("ROOMS".to_string(), "7".to_string())]);
    assert_eq!(
        interpolate("${ROOMS:-50} ${RATE:-200} ${RATE-9} $ROOMS $$1", &env),
        "7 200 9 7 $1"
    );
    // A shell variable written for the container, not escaped for compose.
    let panic = std::panic::catch_unwind(|| interpolate("create \"$1\"", &env)).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("invalid interpolation"), "{message}");
}
