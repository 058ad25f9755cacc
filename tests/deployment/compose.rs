//! Reading the deployment files as docker compose would: `.env`, variable interpolation, the
//! services of `docker-compose.yml` with their command lines, and the topics they create.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::CommandFactory;
use roomflow::cli::Cli;
use yaml_rust2::{Yaml, YamlLoader};

pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repository().join(path))
        .unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

/// The variables of `.env`, which compose substitutes into the file.
pub fn dot_env() -> BTreeMap<String, String> {
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
pub fn interpolate(text: &str, env: &BTreeMap<String, String>) -> String {
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
pub fn scalar(yaml: &Yaml) -> String {
    match yaml {
        Yaml::String(text) | Yaml::Real(text) => text.clone(),
        Yaml::Integer(number) => number.to_string(),
        Yaml::Boolean(flag) => flag.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

/// A mapping with YAML merge keys (`<<: *anchor`) applied, as compose applies them.
pub fn mapping(yaml: &Yaml) -> BTreeMap<String, Yaml> {
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

pub fn strings(yaml: &Yaml) -> Vec<String> {
    match yaml {
        Yaml::Array(items) => items.iter().map(scalar).collect(),
        Yaml::BadValue => Vec::new(),
        other => vec![scalar(other)],
    }
}

/// One service of the compose file, interpolated.
pub struct Service {
    pub name: String,
    pub fields: BTreeMap<String, Yaml>,
    pub environment: BTreeMap<String, String>,
    pub command: Vec<String>,
}

impl Service {
    pub fn field(&self, name: &str) -> Option<&Yaml> {
        self.fields.get(name)
    }

    pub fn is_roomflow(&self) -> bool {
        self.field("build").is_some()
    }

    pub fn profiles(&self) -> Vec<String> {
        self.field("profiles").map(strings).unwrap_or_default()
    }
}

pub fn services() -> Vec<Service> {
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
pub fn command_line(service: &Service) -> Vec<String> {
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
pub fn created_topics(services: &[Service]) -> BTreeMap<String, u32> {
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
