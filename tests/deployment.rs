//! Checks of the deployment files (`docker-compose.yml`, `.env`, `Dockerfile`, `deploy/`)
//! against the command line. Docker does not run where the tests run, so this is what keeps
//! the files honest: every roomflow container's command and environment must parse as the CLI
//! would parse them (each variable must be the twin of a flag of that subcommand), every topic
//! the job and the simulator use must be created by the `topics` service, every `depends_on`
//! condition must be satisfiable, images must be pinned, and the cluster profile's hostfile
//! must name its processes in order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use yaml_rust2::{Yaml, YamlLoader};

use roomflow::cli::{Cli, Command};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repository().join(path))
        .unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

/// The variables of `.env`, which compose substitutes into the file.
fn dot_env() -> BTreeMap<String, String> {
    read(".env")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line.split_once('=').expect("KEY=VALUE lines in .env");
            (key.to_string(), value.to_string())
        })
        .collect()
}

/// Variables the program reads that are not flags.
const NOT_FLAGS: &[&str] = &["ROOMFLOW_LOG", "RUST_BACKTRACE", "RUST_LOG"];

/// Compose's interpolation: `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `$VAR` from
/// `.env`, `$$` for a dollar. Any other `$` is an error, as compose makes it one.
fn interpolate(text: &str, env: &BTreeMap<String, String>) -> String {
    let pattern = regex::Regex::new(
        r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$",
    )
    .unwrap();
    pattern
        .replace_all(text, |captures: &regex::Captures| {
            if &captures[0] == "$$" {
                return "$".to_string();
            }
            let Some(name) = captures.get(1).or(captures.get(3)) else {
                let at = captures.get(0).unwrap().start();
                let context: String = text[at..].chars().take(10).collect();
                panic!("invalid interpolation `{context}`: write $$ for a literal dollar");
            };
            match (env.get(name.as_str()), captures.get(2)) {
                (Some(value), _) => value.clone(),
                (None, Some(default)) => default.as_str().to_string(),
                (None, None) => panic!(
                    "${{{}}} has neither a value in .env nor a default",
                    name.as_str()
                ),
            }
        })
        .into_owned()
}

/// A scalar as compose reads it (numbers and booleans as their text).
fn scalar(yaml: &Yaml) -> String {
    match yaml {
        Yaml::String(text) | Yaml::Real(text) => text.clone(),
        Yaml::Integer(number) => number.to_string(),
        Yaml::Boolean(flag) => flag.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

/// A mapping with YAML merge keys (`<<: *anchor`) applied, as compose applies them.
fn mapping(yaml: &Yaml) -> BTreeMap<String, Yaml> {
    let mut merged = BTreeMap::new();
    let Yaml::Hash(hash) = yaml else {
        return merged;
    };
    if let Some(base) = hash.get(&Yaml::String("<<".into())) {
        merged.extend(mapping(base));
    }
    for (key, value) in hash {
        let key = scalar(key);
        if key != "<<" {
            merged.insert(key, value.clone());
        }
    }
    merged
}

fn strings(yaml: &Yaml) -> Vec<String> {
    match yaml {
        Yaml::Array(items) => items.iter().map(scalar).collect(),
        Yaml::BadValue => Vec::new(),
        other => vec![scalar(other)],
    }
}

/// One service of the compose file, interpolated.
struct Service {
    name: String,
    fields: BTreeMap<String, Yaml>,
    environment: BTreeMap<String, String>,
    command: Vec<String>,
}

impl Service {
    fn field(&self, name: &str) -> Option<&Yaml> {
        self.fields.get(name)
    }

    fn is_roomflow(&self) -> bool {
        self.field("build").is_some()
    }

    fn profiles(&self) -> Vec<String> {
        self.field("profiles").map(strings).unwrap_or_default()
    }
}

fn services() -> Vec<Service> {
    let env = dot_env();
    let text = interpolate(&read("docker-compose.yml"), &env);
    let document = YamlLoader::load_from_str(&text)
        .expect("docker-compose.yml is YAML")
        .remove(0);
    let services = mapping(&document["services"]);
    assert!(!services.is_empty(), "docker-compose.yml has services");
    services
        .into_iter()
        .map(|(name, yaml)| {
            let fields = mapping(&yaml);
            let environment = fields
                .get("environment")
                .map(|env| {
                    mapping(env)
                        .iter()
                        .map(|(key, value)| (key.clone(), scalar(value)))
                        .collect()
                })
                .unwrap_or_default();
            let command = fields.get("command").map(strings).unwrap_or_default();
            Service {
                name,
                fields,
                environment,
                command,
            }
        })
        .collect()
}

/// The command line a roomflow container runs: its command, then each variable of its
/// environment as the flag it is the twin of. Panics on a variable no flag of the subcommand
/// reads: a typo there would be silently ignored by the program.
fn command_line(service: &Service) -> Vec<String> {
    let mut line = vec!["roomflow".to_string()];
    line.extend(service.command.iter().cloned());
    let subcommand_name = service.command.first().expect("a roomflow command");
    let cli = Cli::command();
    let subcommand = cli
        .find_subcommand(subcommand_name)
        .unwrap_or_else(|| panic!("{}: no subcommand `{subcommand_name}`", service.name));
    let arguments: Vec<&clap::Arg> = cli
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .chain(subcommand.get_arguments())
        .collect();
    for (variable, value) in &service.environment {
        if NOT_FLAGS.contains(&variable.as_str()) {
            continue;
        }
        let arg = arguments
            .iter()
            .find(|arg| arg.get_env().is_some_and(|env| env == variable.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "{}: `{variable}` is not read by `roomflow {subcommand_name}` (no flag has it as its environment twin)",
                    service.name
                )
            });
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => panic!("{variable} belongs to a positional argument"),
        };
        if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
            match value.as_str() {
                "true" => line.push(flag),
                "false" => {}
                other => panic!(
                    "{}: {variable} is `{other}`: write true or false",
                    service.name
                ),
            }
        } else {
            line.push(flag);
            line.push(value.clone());
        }
    }
    line
}

/// The topics the `topics` service creates, with their partition counts.
fn created_topics(services: &[Service]) -> BTreeMap<String, u32> {
    let creator = services
        .iter()
        .find(|service| service.name == "topics")
        .expect("a `topics` service");
    let script = creator.command.join("\n");
    let call = regex::Regex::new(r"(?m)^\s*create\s+(\S+)\s+(\d+)\s*$").unwrap();
    let topics: BTreeMap<String, u32> = call
        .captures_iter(&script)
        .map(|c| (c[1].to_string(), c[2].parse().unwrap()))
        .collect();
    assert!(
        script.contains("--topic \"$1\" --partitions \"$2\""),
        "`create` passes its arguments to kafka-topics.sh:\n{script}"
    );
    topics
}

#[test]
fn every_roomflow_container_parses_as_the_cli_would() {
    let services = services();
    let roomflow: Vec<&Service> = services.iter().filter(|s| s.is_roomflow()).collect();
    let names: BTreeSet<&str> = roomflow.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["roomflow", "roomflow-0", "roomflow-1", "simulator"])
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
        .filter(|s| s.is_roomflow() && s.name != "simulator")
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
