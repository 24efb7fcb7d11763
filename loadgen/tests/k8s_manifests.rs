//! The Kubernetes deployment in deploy/k8s/ checked without a cluster (issue 15): every YAML
//! document is parsed and checked against the binaries it runs and against the other
//! documents, so that a renamed flag, a moved port or a shard count changed in one place
//! fails here instead of in someone's cluster.
//!
//! - Commands: every `pushbench` and `feed-server` invocation (direct, or inside a `sh -c`
//!   script, split into words the way the shell would) uses only flags that the built
//!   binary's `--help` (the subcommand's, for pushbench) lists.
//! - Services select pods that exist and target ports those pods declare; every URL and
//!   host:port in a command or in nginx's upstream names a Service and one of its ports.
//! - The shards Job is Indexed, with parallelism == completions == the N of `--shard I/N`,
//!   and I derived from the completion index; START_AT comes from the pod annotation run.sh
//!   fills.
//! - The shards write to, and the merge reads from, one ReadWriteMany claim.
//! - The ConfigMaps are their sources: the scenario is scenarios/distributed.toml (and
//!   valid), nginx.conf is deploy/nginx/pushbench.conf.template rendered; configmaps.yaml is
//!   exactly what configmaps.sh prints.
//! - kubectl decodes every document into its typed API object offline
//!   (`kubectl set env --local`, no API server: type errors, unknown kinds and API versions
//!   fail). It is not a schema check: unknown fields pass (docs/distributed.md names the
//!   schema checker used by hand).
//! - The Dockerfile builds and installs the binaries the manifests run, under the user the
//!   pods run as, and the image tag the manifests use is the one the docs tell users to build.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_yaml_ng::Value;

/// The tag the manifests run and docs/distributed.md tells users to build.
const IMAGE: &str = "pushbench:latest";
/// The binaries of this repository a manifest may run (both in [`IMAGE`]).
const BINARIES: [&str; 2] = ["pushbench", "feed-server"];
/// The pod annotation deploy/k8s/run.sh fills with the run's start instant.
const START_AT_ANNOTATION: &str = "pushbench/start-at";
const INSTALL_KUBECTL: &str =
    "install kubectl (apt-get install kubernetes-client, or the Kubernetes release binary)";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// The documents

/// One YAML document of a manifest file.
struct Object {
    /// `deploy/k8s/FILE.yaml#N`, N counting documents from 1.
    origin: String,
    kind: String,
    name: String,
    value: Value,
}

impl Object {
    /// Where a problem is: file, document, kind and name.
    fn at(&self) -> String {
        format!("{} ({} {})", self.origin, self.kind, self.name)
    }
}

/// The value at a dotted path of mapping keys.
fn get<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// A ConfigMap's `data` entry: keys hold dots (`nginx.conf`), so not a dotted path.
fn data<'a>(configmap: &'a Object, key: &str) -> Option<&'a str> {
    get(&configmap.value, "data")?.get(key)?.as_str()
}

fn get_str<'a>(value: &'a Value, path: &str) -> Option<&'a str> {
    get(value, path).and_then(Value::as_str)
}

fn seq<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    get(value, path)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A mapping of strings (labels, a selector) as a map.
fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Every document of every `.yaml` / `.yml` file in `dir`, files sorted; empty documents are
/// skipped, a document without apiVersion, kind or metadata.name is an error.
fn load_objects(dir: &Path) -> Result<Vec<Object>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading {}: {e}", dir.display()))?;
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    if files.is_empty() {
        return Err(format!("no .yaml file in {}", dir.display()));
    }
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("reading {}: {e}", file.display()))?;
        let short = format!(
            "deploy/k8s/{}",
            file.file_name().unwrap_or_default().to_string_lossy()
        );
        for (index, document) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let origin = format!("{short}#{}", index + 1);
            let value = Value::deserialize(document).map_err(|e| format!("{origin}: {e}"))?;
            if value.is_null() {
                continue;
            }
            let field = |path: &str| {
                get_str(&value, path)
                    .map(str::to_string)
                    .ok_or_else(|| format!("{origin}: no {path}"))
            };
            field("apiVersion")?;
            let kind = field("kind")?;
            let name = field("metadata.name")?;
            objects.push(Object {
                origin,
                kind,
                name,
                value,
            });
        }
    }
    Ok(objects)
}

fn objects() -> &'static [Object] {
    static OBJECTS: OnceLock<Vec<Object>> = OnceLock::new();
    OBJECTS
        .get_or_init(|| load_objects(&repo().join("deploy/k8s")).unwrap_or_else(|e| panic!("{e}")))
}

fn find<'a>(objects: &'a [Object], kind: &str, name: &str) -> Option<&'a Object> {
    objects.iter().find(|o| o.kind == kind && o.name == name)
}

/// A pod template (or a Pod): its labels, annotations and spec.
struct PodTemplate<'a> {
    owner: &'a Object,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    spec: &'a Value,
}

fn pod_template(object: &Object) -> Option<PodTemplate<'_>> {
    let (metadata, spec) = match object.kind.as_str() {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => (
            get(&object.value, "spec.template.metadata"),
            get(&object.value, "spec.template.spec")?,
        ),
        "CronJob" => (
            get(&object.value, "spec.jobTemplate.spec.template.metadata"),
            get(&object.value, "spec.jobTemplate.spec.template.spec")?,
        ),
        "Pod" => (get(&object.value, "metadata"), get(&object.value, "spec")?),
        _ => return None,
    };
    Some(PodTemplate {
        owner: object,
        labels: string_map(metadata.and_then(|m| m.get("labels"))),
        annotations: string_map(metadata.and_then(|m| m.get("annotations"))),
        spec,
    })
}

fn pod_templates(objects: &[Object]) -> Vec<PodTemplate<'_>> {
    objects.iter().filter_map(pod_template).collect()
}

/// A container (init containers included) of a pod template.
struct Container<'a> {
    pod: &'a PodTemplate<'a>,
    value: &'a Value,
    name: String,
    image: String,
    /// command then args, as Kubernetes joins them.
    argv: Vec<String>,
}

impl Container<'_> {
    fn at(&self) -> String {
        format!("{} container {}", self.pod.owner.at(), self.name)
    }

    /// (name, number) of each containerPort.
    fn ports(&self) -> Vec<(Option<String>, u64)> {
        seq(self.value, "ports")
            .iter()
            .filter_map(|p| {
                Some((
                    get_str(p, "name").map(str::to_string),
                    get(p, "containerPort")?.as_u64()?,
                ))
            })
            .collect()
    }

    /// Whether a Service's or probe's port (a number or a port name) is one of these ports.
    fn has_port(&self, port: &Value) -> bool {
        self.ports().iter().any(|(name, number)| match port {
            Value::Number(n) => n.as_u64() == Some(*number),
            Value::String(s) => name.as_deref() == Some(s.as_str()),
            _ => false,
        })
    }

    /// The value of env var `name`, and where it comes from when it is a field reference.
    fn env_field_ref(&self, name: &str) -> Option<String> {
        seq(self.value, "env")
            .iter()
            .find(|e| get_str(e, "name") == Some(name))
            .and_then(|e| get_str(e, "valueFrom.fieldRef.fieldPath"))
            .map(str::to_string)
    }

    /// The volume mounted at the longest mountPath that is `path` or a parent of it: (mount
    /// path, the pod's volume definition).
    fn volume_of(&self, path: &str) -> Option<(String, &Value)> {
        let mount = seq(self.value, "volumeMounts")
            .iter()
            .filter_map(|m| Some((get_str(m, "mountPath")?, get_str(m, "name")?)))
            .filter(|(mount, _)| {
                let mount = mount.trim_end_matches('/');
                path == mount || path.starts_with(&format!("{mount}/"))
            })
            .max_by_key(|(mount, _)| mount.len())?;
        let volume = seq(self.pod.spec, "volumes")
            .iter()
            .find(|v| get_str(v, "name") == Some(mount.1))?;
        Some((mount.0.trim_end_matches('/').to_string(), volume))
    }
}

fn containers<'a>(pods: &'a [PodTemplate<'a>]) -> Vec<Container<'a>> {
    let mut out = Vec::new();
    for pod in pods {
        for list in ["initContainers", "containers"] {
            for value in seq(pod.spec, list) {
                let words = |key: &str| -> Vec<String> {
                    seq(value, key)
                        .iter()
                        .map(|w| match w {
                            Value::String(s) => s.clone(),
                            other => serde_yaml_ng::to_string(other)
                                .unwrap_or_default()
                                .trim()
                                .to_string(),
                        })
                        .collect()
                };
                let mut argv = words("command");
                argv.extend(words("args"));
                out.push(Container {
                    pod,
                    value,
                    name: get_str(value, "name").unwrap_or("?").to_string(),
                    image: get_str(value, "image").unwrap_or("").to_string(),
                    argv,
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Commands: shell words, invocations, help texts

/// Splits a `sh -c` script into simple commands of words, quotes removed, before expansion
/// (`"$START_AT"` stays `$START_AT`): enough for the one-line commands the manifests hold, not
/// a shell. Commands end at a newline, `;`, `&`, `|` (so `&&` and `||` too); `#` at a word's
/// start comments out the rest of the line; `$(…)` and `$((…))` are kept whole.
fn shell_commands(script: &str) -> Result<Vec<Vec<String>>, String> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = script.chars().peekable();
    fn end_word(word: &mut Option<String>, words: &mut Vec<String>) {
        if let Some(w) = word.take() {
            words.push(w);
        }
    }
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => end_word(&mut word, &mut words),
            '\n' | ';' | '&' | '|' => {
                end_word(&mut word, &mut words);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            '#' if word.is_none() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(format!("unterminated ' in {script:?}")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(format!("unterminated \" in {script:?}")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(format!("unterminated \" in {script:?}")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(format!("trailing \\ in {script:?}")),
            },
            '$' if chars.peek() == Some(&'(') => {
                let w = word.get_or_insert_with(String::new);
                w.push('$');
                let mut depth = 0usize;
                for c in chars.by_ref() {
                    w.push(c);
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                if depth != 0 {
                    return Err(format!("unterminated $( in {script:?}"));
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_word(&mut word, &mut words);
    if !words.is_empty() {
        commands.push(words);
    }
    Ok(commands)
}

/// A program started by a container: its file name and arguments.
struct Invocation<'a> {
    container: &'a Container<'a>,
    program: String,
    args: Vec<String>,
}

impl Invocation<'_> {
    fn at(&self) -> String {
        format!("{}: `{}`", self.container.at(), self.program)
    }

    /// The value of `--flag VALUE` or `--flag=VALUE`.
    fn flag(&self, flag: &str) -> Option<&str> {
        let mut args = self.args.iter();
        while let Some(arg) = args.next() {
            if arg == flag {
                return args.next().map(String::as_str);
            }
            if let Some(value) = arg.strip_prefix(&format!("{flag}=")) {
                return Some(value);
            }
        }
        None
    }

    fn has(&self, flag: &str) -> bool {
        self.args.iter().any(|a| a == flag)
    }

    /// The arguments that are neither flags nor their values, after the subcommand (for
    /// pushbench) — needs the help text to know which flags take a value.
    fn positionals(&self, help: &Help) -> Vec<String> {
        let skip = usize::from(self.program == "pushbench");
        let mut out = Vec::new();
        let mut args = self.args.iter().skip(skip);
        while let Some(arg) = args.next() {
            if arg.starts_with('-') && arg.len() > 1 {
                if !arg.contains('=') && help.flags.get(arg.as_str()) == Some(&true) {
                    args.next();
                }
            } else {
                out.push(arg.clone());
            }
        }
        out
    }
}

/// A word of a command line is a program when it is not a shell's `exec`, a keyword that
/// starts a compound command (`until redis-cli … ping`) or a `VAR=value`.
fn strip_prefix_words(words: &[String]) -> &[String] {
    let mut rest = words;
    while let Some((first, tail)) = rest.split_first() {
        let assignment = first.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        let keyword = matches!(
            first.as_str(),
            "exec" | "until" | "while" | "if" | "then" | "do" | "else" | "elif" | "!"
        );
        if keyword || assignment {
            rest = tail;
        } else {
            break;
        }
    }
    rest
}

/// Every program a container starts: its argv, or each command of its `sh -c` script.
fn invocations<'a>(container: &'a Container<'a>) -> Result<Vec<Invocation<'a>>, String> {
    let argv = &container.argv;
    let shell = argv
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .is_some_and(|p| matches!(p, "sh" | "bash" | "dash"));
    let commands = if shell && argv.get(1).map(String::as_str) == Some("-c") {
        let script = argv
            .get(2)
            .ok_or_else(|| format!("{}: `sh -c` without a script", container.at()))?;
        shell_commands(script).map_err(|e| format!("{}: {e}", container.at()))?
    } else if argv.is_empty() {
        Vec::new() // the image's own entrypoint
    } else {
        vec![argv.clone()]
    };
    Ok(commands
        .iter()
        .filter_map(|words| {
            let (program, args) = strip_prefix_words(words).split_first()?;
            Some(Invocation {
                container,
                program: program.rsplit('/').next().unwrap_or(program).to_string(),
                args: args.to_vec(),
            })
        })
        .collect())
}

/// What a binary's `--help` offers.
struct Help {
    /// Each flag (`--out`, `-h`) and whether it takes a value.
    flags: BTreeMap<String, bool>,
    /// The subcommands under `Commands:`.
    subcommands: Vec<String>,
}

/// Runs `binary ARGS… --help` and reads clap's option lines (`  -h, --help`,
/// `      --out <OUT>  …`): only those, not the prose, so a flag merely mentioned in a
/// description does not count as offered.
fn help(binary: &Path, args: &[&str]) -> Help {
    let output = Command::new(binary)
        .args(args)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("run {} --help: {e}", binary.display()));
    let command = format!("{} {} --help", binary.display(), args.join(" "));
    assert!(
        output.status.success(),
        "{command} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    parse_help(&String::from_utf8_lossy(&output.stdout))
}

fn parse_help(text: &str) -> Help {
    let mut flags = BTreeMap::new();
    let mut subcommands = Vec::new();
    let mut in_commands = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if line.trim_end() == "Commands:" {
            in_commands = true;
            continue;
        }
        if in_commands {
            match trimmed.split_whitespace().next() {
                Some(name) if line.starts_with("  ") => subcommands.push(name.to_string()),
                _ => in_commands = false,
            }
            continue;
        }
        if !trimmed.starts_with('-') {
            continue;
        }
        let mut names = Vec::new();
        let mut takes_value = false;
        for token in trimmed.split_whitespace() {
            let token = token.trim_end_matches(',');
            if token.starts_with('-') {
                names.push(token.split('=').next().unwrap_or(token).to_string());
            } else if token.starts_with('<') || token.starts_with('[') {
                takes_value = true;
            } else {
                break;
            }
        }
        for name in names {
            flags.insert(name, takes_value);
        }
    }
    Help { flags, subcommands }
}

/// The built binaries' help texts, keyed by "pushbench run", "feed-server", …
struct Helps {
    top: BTreeMap<&'static str, Help>,
    subcommands: BTreeMap<String, Help>,
}

impl Helps {
    fn load() -> Self {
        let pushbench = PathBuf::from(env!("CARGO_BIN_EXE_pushbench"));
        let top: BTreeMap<&'static str, Help> = [
            ("pushbench", help(&pushbench, &[])),
            ("feed-server", help(&common::feed_server(), &[])),
        ]
        .into_iter()
        .collect();
        let subcommands = top["pushbench"]
            .subcommands
            .iter()
            .filter(|s| *s != "help")
            .map(|s| (s.clone(), help(&pushbench, &[s])))
            .collect();
        Helps { top, subcommands }
    }

    /// The help that governs an invocation's flags: pushbench's subcommand's, feed-server's.
    fn for_invocation(&self, inv: &Invocation<'_>) -> Result<&Help, String> {
        match inv.program.as_str() {
            "pushbench" => {
                let sub = inv
                    .args
                    .first()
                    .ok_or_else(|| format!("{}: no subcommand", inv.at()))?;
                self.subcommands.get(sub).ok_or_else(|| {
                    format!(
                        "{}: pushbench has no subcommand `{sub}` (its --help lists: {})",
                        inv.at(),
                        self.top["pushbench"].subcommands.join(", ")
                    )
                })
            }
            other => self
                .top
                .get(other)
                .ok_or_else(|| format!("{}: not a binary of this repository", inv.at())),
        }
    }
}

/// Every invocation of one of [`BINARIES`] in the manifests.
fn our_invocations<'a>(containers: &'a [Container<'a>]) -> Vec<Invocation<'a>> {
    let mut out = Vec::new();
    for container in containers {
        let found = invocations(container).unwrap_or_else(|e| panic!("{e}"));
        out.extend(
            found
                .into_iter()
                .filter(|inv| BINARIES.contains(&inv.program.as_str())),
        );
    }
    out
}

fn assert_no_problems(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

// ---------------------------------------------------------------------------------------------
// The checks

#[test]
fn every_command_uses_only_flags_the_binaries_offer() {
    let objects = objects();
    let pods = pod_templates(objects);
    let containers = containers(&pods);
    let invocations = our_invocations(&containers);
    for binary in BINARIES {
        assert!(
            invocations.iter().any(|inv| inv.program == binary),
            "no manifest runs {binary}"
        );
    }
    let helps = Helps::load();
    let mut problems = Vec::new();
    for inv in &invocations {
        let help = match helps.for_invocation(inv) {
            Ok(help) => help,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let skip = usize::from(inv.program == "pushbench");
        for arg in inv.args.iter().skip(skip) {
            if !arg.starts_with('-') || arg == "-" {
                continue;
            }
            let flag = arg.split('=').next().unwrap_or(arg);
            if !help.flags.contains_key(flag) {
                let sub = if skip == 1 { inv.args[0].as_str() } else { "" };
                problems.push(format!(
                    "{}: `{} {sub}` has no flag {flag} (its --help offers: {})",
                    inv.at(),
                    inv.program,
                    help.flags.keys().cloned().collect::<Vec<_>>().join(" ")
                ));
            }
        }
        // Ours run from our image, and nothing else does.
        if inv.container.image != IMAGE {
            problems.push(format!(
                "{}: runs {} from image {:?}, not {IMAGE} (the Dockerfile's)",
                inv.at(),
                inv.program,
                inv.container.image
            ));
        }
    }
    assert_no_problems("commands the binaries do not accept", problems);
}

/// `(Service, its ports)` by name.
fn services(objects: &[Object]) -> BTreeMap<&str, Vec<u64>> {
    objects
        .iter()
        .filter(|o| o.kind == "Service")
        .map(|o| {
            let ports = seq(&o.value, "spec.ports")
                .iter()
                .filter_map(|p| get(p, "port")?.as_u64())
                .collect();
            (o.name.as_str(), ports)
        })
        .collect()
}

#[test]
fn services_select_pods_that_declare_their_target_ports() {
    let objects = objects();
    let pods = pod_templates(objects);
    let containers = containers(&pods);
    let mut problems = Vec::new();
    let service_objects: Vec<&Object> = objects.iter().filter(|o| o.kind == "Service").collect();
    assert!(!service_objects.is_empty(), "no Service in deploy/k8s");
    for service in service_objects {
        let selector = string_map(get(&service.value, "spec.selector"));
        if selector.is_empty() {
            problems.push(format!("{}: no selector", service.at()));
            continue;
        }
        let selected: Vec<&PodTemplate<'_>> = pods
            .iter()
            .filter(|pod| selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v)))
            .collect();
        if selected.is_empty() {
            problems.push(format!(
                "{}: selector {selector:?} matches no pod template",
                service.at()
            ));
        }
        for port in seq(&service.value, "spec.ports") {
            let Some(target) = get(port, "targetPort").or_else(|| get(port, "port")) else {
                problems.push(format!("{}: a port without port", service.at()));
                continue;
            };
            for pod in &selected {
                let declared = containers
                    .iter()
                    .filter(|c| std::ptr::eq(c.pod, *pod))
                    .any(|c| c.has_port(target));
                if !declared {
                    problems.push(format!(
                        "{}: targetPort {} is no containerPort of {}",
                        service.at(),
                        serde_yaml_ng::to_string(target).unwrap_or_default().trim(),
                        pod.owner.at()
                    ));
                }
            }
        }
    }
    // Probes name a port of their own container, and feed-server's route.
    for container in &containers {
        for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
            let Some(http) = get(container.value, &format!("{probe}.httpGet")) else {
                continue;
            };
            match get(http, "port") {
                Some(port) if container.has_port(port) => {}
                other => problems.push(format!(
                    "{}: {probe} port {other:?} is none of its containerPorts",
                    container.at()
                )),
            }
            if get_str(http, "path") != Some(pushbench_protocol::route::HEALTHZ) {
                problems.push(format!(
                    "{}: {probe} path {:?} is not feed-server's {}",
                    container.at(),
                    get_str(http, "path"),
                    pushbench_protocol::route::HEALTHZ
                ));
            }
        }
    }
    assert_no_problems("Services and ports out of step", problems);
}

/// `(host, port)` of every `SCHEME://HOST[:PORT]` in `word` (default ports by scheme).
fn urls_in(word: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for (index, _) in word.match_indices("://") {
        let scheme_start = word[..index]
            .rfind(|c: char| !c.is_ascii_alphanumeric())
            .map_or(0, |i| i + 1);
        let default = match &word[scheme_start..index] {
            "http" | "ws" => 80,
            "https" | "wss" => 443,
            "redis" => 6379,
            _ => continue,
        };
        let rest = &word[index + 3..];
        let authority = rest.split(['/', '?', ' ', '"']).next().unwrap_or("");
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().unwrap_or(0)),
            None => (authority, default),
        };
        out.push((host.to_string(), port));
    }
    out
}

/// A `(host, port)` a pod connects to must be a Service of deploy/k8s and one of its ports
/// (addresses that are not a bare name, such as 0.0.0.0, are listen addresses: skipped).
fn check_service_address(
    services: &BTreeMap<&str, Vec<u64>>,
    at: &str,
    host: &str,
    port: u64,
    problems: &mut Vec<String>,
) {
    let name = host.split('.').next().unwrap_or(host);
    if host.chars().next().is_some_and(|c| c.is_ascii_digit()) || host == "localhost" {
        return;
    }
    match services.get(name) {
        None => problems.push(format!(
            "{at}: {host}:{port} names no Service of deploy/k8s"
        )),
        Some(ports) if !ports.contains(&port) => problems.push(format!(
            "{at}: {host}:{port}: Service {name} has ports {ports:?}, not {port}"
        )),
        Some(_) => {}
    }
}

#[test]
fn every_address_a_pod_connects_to_is_a_service_port() {
    let objects = objects();
    let pods = pod_templates(objects);
    let containers = containers(&pods);
    let services = services(objects);
    let mut problems = Vec::new();
    let mut checked = 0;
    for container in &containers {
        for inv in invocations(container).unwrap_or_else(|e| panic!("{e}")) {
            for arg in &inv.args {
                for (host, port) in urls_in(arg) {
                    checked += 1;
                    check_service_address(&services, &inv.at(), &host, port, &mut problems);
                }
            }
            if inv.program == "redis-cli" {
                let host = inv.flag("-h").unwrap_or("127.0.0.1");
                let port = inv.flag("-p").map_or(6379, |p| p.parse().unwrap_or(0));
                checked += 1;
                check_service_address(&services, &inv.at(), host, port, &mut problems);
            }
            // What feed-server listens on is what its container declares.
            if inv.program == "feed-server" {
                let listen = inv.flag("--listen").unwrap_or("127.0.0.1:8080");
                let port: u64 = listen.rsplit(':').next().unwrap_or("").parse().unwrap_or(0);
                if !inv.container.has_port(&Value::from(port)) {
                    problems.push(format!(
                        "{}: listens on {listen}, which is no containerPort",
                        inv.at()
                    ));
                }
                if !listen.starts_with("0.0.0.0:") && !listen.starts_with("[::]:") {
                    problems.push(format!(
                        "{}: --listen {listen} is not reachable from other pods",
                        inv.at()
                    ));
                }
            }
        }
    }
    // nginx's upstream servers.
    for configmap in objects.iter().filter(|o| o.kind == "ConfigMap") {
        let Some(conf) = data(configmap, "nginx.conf") else {
            continue;
        };
        for line in conf.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("server ") {
                let address = rest.split_whitespace().next().unwrap_or("");
                if let Some((host, port)) = address.trim_end_matches(';').rsplit_once(':') {
                    checked += 1;
                    check_service_address(
                        &services,
                        &format!("{} nginx.conf upstream", configmap.at()),
                        host,
                        port.parse().unwrap_or(0),
                        &mut problems,
                    );
                }
            }
        }
    }
    assert!(
        checked >= 3,
        "only {checked} addresses found: the parsing broke"
    );
    assert_no_problems("addresses that are no Service port", problems);
}

/// The one `pushbench run … --shard` invocation, and the Job it is in.
fn shard_invocation<'a>(invocations: &'a [Invocation<'a>]) -> &'a Invocation<'a> {
    let shards: Vec<&Invocation<'_>> = invocations
        .iter()
        .filter(|inv| {
            inv.program == "pushbench"
                && inv.args.first().map(String::as_str) == Some("run")
                && inv.has("--shard")
        })
        .collect();
    assert_eq!(
        shards.len(),
        1,
        "expected one `pushbench run --shard` in deploy/k8s, found {}",
        shards.len()
    );
    shards[0]
}

#[test]
fn shards_job_is_indexed_with_one_pod_per_shard() {
    let objects = objects();
    let pods = pod_templates(objects);
    let containers = containers(&pods);
    let invocations = our_invocations(&containers);
    let shard = shard_invocation(&invocations);
    let job = shard.container.pod.owner;
    let mut problems = Vec::new();
    if job.kind != "Job" {
        problems.push(format!(
            "{}: the shards run in a {}, not a Job",
            shard.at(),
            job.kind
        ));
    }
    if get_str(&job.value, "spec.completionMode") != Some("Indexed") {
        problems.push(format!("{}: completionMode is not Indexed", job.at()));
    }
    let value = shard.flag("--shard").unwrap_or("");
    let (index, count) = value.rsplit_once('/').unwrap_or(("", ""));
    let index: String = index.chars().filter(|c| !c.is_whitespace()).collect();
    if index != "$((JOB_COMPLETION_INDEX+1))" {
        problems.push(format!(
            "{}: --shard {value}: the shard must be $((JOB_COMPLETION_INDEX + 1)) (the index is 0-based, the shard 1-based)",
            shard.at()
        ));
    }
    match count.parse::<u64>() {
        Ok(n) if n >= 1 => {
            for field in ["spec.completions", "spec.parallelism"] {
                let got = get(&job.value, field).and_then(Value::as_u64);
                if got != Some(n) {
                    problems.push(format!(
                        "{}: {field} is {got:?}, but --shard {value} splits into {n}",
                        job.at()
                    ));
                }
            }
        }
        _ => problems.push(format!("{}: --shard {value}: no shard count", shard.at())),
    }
    if get_str(shard.container.pod.spec, "restartPolicy") != Some("Never") {
        problems.push(format!(
            "{}: restartPolicy is not Never (a shard started again is late)",
            job.at()
        ));
    }
    for flag in ["--target", "--start-at", "--out"] {
        if shard.flag(flag).is_none() {
            problems.push(format!("{}: no {flag}", shard.at()));
        }
    }
    let out = shard.flag("--out").unwrap_or("");
    if !out.contains("$JOB_COMPLETION_INDEX") && !out.contains("${JOB_COMPLETION_INDEX}") {
        problems.push(format!(
            "{}: --out {out} is the same folder for every shard",
            shard.at()
        ));
    }
    check_start_at(shard, &mut problems);
    assert_no_problems("the shards Job", problems);
}

/// `--start-at "$START_AT"` (or a merge whose paths use `$START_AT`): START_AT is the pod
/// annotation run.sh fills, through the downward API.
fn check_start_at(inv: &Invocation<'_>, problems: &mut Vec<String>) {
    let expected = format!("metadata.annotations['{START_AT_ANNOTATION}']");
    match inv.container.env_field_ref("START_AT") {
        Some(path) if path == expected => {}
        other => problems.push(format!(
            "{}: START_AT comes from {other:?}, not the downward API's {expected}",
            inv.at()
        )),
    }
    if !inv
        .container
        .pod
        .annotations
        .contains_key(START_AT_ANNOTATION)
    {
        problems.push(format!(
            "{}: the pod template has no annotation {START_AT_ANNOTATION} for run.sh to fill",
            inv.container.pod.owner.at()
        ));
    }
    if let Some(start_at) = inv.flag("--start-at") {
        if start_at != "$START_AT" {
            problems.push(format!(
                "{}: --start-at {start_at}, not $START_AT",
                inv.at()
            ));
        }
    }
    let run_sh = read("deploy/k8s/run.sh");
    let placeholder = format!("{START_AT_ANNOTATION}: \\\"\\\"");
    if !run_sh.contains(&placeholder) {
        problems.push(format!(
            "deploy/k8s/run.sh does not fill the annotation ({placeholder} not found)"
        ));
    }
}

/// The claim behind `path` in `inv`'s container, checked to be a ReadWriteMany PVC.
fn claim_of(
    objects: &[Object],
    inv: &Invocation<'_>,
    path: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    let Some((_, volume)) = inv.container.volume_of(path) else {
        problems.push(format!("{}: {path} is on no mounted volume", inv.at()));
        return None;
    };
    let Some(claim) = get_str(volume, "persistentVolumeClaim.claimName") else {
        problems.push(format!(
            "{}: {path} is not on a PersistentVolumeClaim (it would vanish with the pod)",
            inv.at()
        ));
        return None;
    };
    match find(objects, "PersistentVolumeClaim", claim) {
        None => problems.push(format!(
            "{}: claim {claim} is no PersistentVolumeClaim of deploy/k8s",
            inv.at()
        )),
        Some(pvc) => {
            let modes: Vec<&str> = seq(&pvc.value, "spec.accessModes")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if !modes.contains(&"ReadWriteMany") {
                problems.push(format!(
                    "{}: access modes {modes:?}: shards on several nodes need ReadWriteMany",
                    pvc.at()
                ));
            }
        }
    }
    Some(claim.to_string())
}

#[test]
fn shards_write_and_merge_reads_one_shared_volume() {
    let objects = objects();
    let pods = pod_templates(objects);
    let containers = containers(&pods);
    let invocations = our_invocations(&containers);
    let shard = shard_invocation(&invocations);
    let merges: Vec<&Invocation<'_>> = invocations
        .iter()
        .filter(|inv| {
            inv.program == "pushbench" && inv.args.first().map(String::as_str) == Some("merge")
        })
        .collect();
    assert_eq!(
        merges.len(),
        1,
        "expected one `pushbench merge` in deploy/k8s"
    );
    let merge = merges[0];
    let mut problems = Vec::new();
    let out = shard.flag("--out").unwrap_or("");
    let shard_claim = claim_of(objects, shard, out, &mut problems);
    if merge.container.pod.owner.kind != "Job" {
        problems.push(format!("{}: merge does not run in a Job", merge.at()));
    }
    check_start_at(merge, &mut problems);
    // The positionals of `merge OUT DIR…`, read without merge's help (which need not exist
    // yet): merge's own flags take no value in the contract.
    let paths: Vec<&String> = merge
        .args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    match paths.split_first() {
        Some((merged, dirs)) if !dirs.is_empty() => {
            for path in std::iter::once(*merged).chain(dirs.iter().copied()) {
                let claim = claim_of(objects, merge, path, &mut problems);
                if claim.is_some() && claim != shard_claim {
                    problems.push(format!(
                        "{}: {path} is on claim {claim:?}, the shards write to {shard_claim:?}",
                        merge.at()
                    ));
                }
            }
            if !dirs.iter().any(|d| out.starts_with(&format!("{d}/"))) {
                problems.push(format!(
                    "{}: merges {dirs:?}, but the shards write to {out}",
                    merge.at()
                ));
            }
            if dirs.iter().any(|d| merged.starts_with(&format!("{d}/"))) {
                problems.push(format!(
                    "{}: the merged run {merged} is inside a folder it merges: a second merge would take it for a shard",
                    merge.at()
                ));
            }
        }
        _ => problems.push(format!("{}: not `merge OUT DIR…`", merge.at())),
    }
    assert_no_problems("the results volume", problems);
}

/// The template rendered as loadgen's `cluster::nginx::render` renders it (which takes socket
/// addresses, not the Service's name): comment lines left alone, placeholders replaced.
fn render_nginx(prefix: &str, workers: u32, listen: &str, upstream: &str) -> String {
    let mut out = String::new();
    for line in pushbench::cluster::nginx::TEMPLATE.lines() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            out.push_str(
                &line
                    .replace("{{PREFIX}}", prefix)
                    .replace("{{WORKERS}}", &workers.to_string())
                    .replace("{{LISTEN}}", listen)
                    .replace(
                        "{{UPSTREAMS}}",
                        &format!("        server {upstream} max_fails=1 fail_timeout=2s;"),
                    ),
            );
        }
        out.push('\n');
    }
    out
}

#[test]
fn configmaps_are_the_scenario_and_the_nginx_template() {
    let objects = objects();
    let pods = pod_templates(objects);
    let containers = containers(&pods);
    let invocations = our_invocations(&containers);
    let mut problems = Vec::new();

    // The scenario the shards run: a key of a mounted ConfigMap, the shipped file, valid.
    let shard = shard_invocation(&invocations);
    let helps = Helps::load();
    let run_help = helps
        .for_invocation(shard)
        .unwrap_or_else(|e| panic!("{e}"));
    let positionals = shard.positionals(run_help);
    let scenario_path = positionals.first().cloned().unwrap_or_default();
    match shard.container.volume_of(&scenario_path) {
        None => problems.push(format!(
            "{}: scenario {scenario_path:?} is on no mounted volume",
            shard.at()
        )),
        Some((mount, volume)) => {
            let key = scenario_path[mount.len()..].trim_start_matches('/');
            let configmap =
                get_str(volume, "configMap.name").and_then(|name| find(objects, "ConfigMap", name));
            match configmap.and_then(|cm| data(cm, key)) {
                None => problems.push(format!(
                    "{}: {scenario_path} is no key of a ConfigMap in deploy/k8s",
                    shard.at()
                )),
                Some(text) => {
                    if text != read(&format!("scenarios/{key}")) {
                        problems.push(format!(
                            "the ConfigMap's {key} differs from scenarios/{key}: run deploy/k8s/configmaps.sh > deploy/k8s/configmaps.yaml"
                        ));
                    }
                    match pushbench::scenario::parse(text, key) {
                        Err(e) => problems.push(format!("the ConfigMap's {key}: {e}")),
                        Ok(scenario) => {
                            if scenario.target.is_some() {
                                problems.push(format!(
                                    "{key} has a [target]: the shards get theirs from --target"
                                ));
                            }
                        }
                    }
                }
            }
        }
    }

    // nginx.conf: the template, rendered for the cluster.
    let nginx = find(objects, "ConfigMap", "pushbench-nginx").and_then(|cm| data(cm, "nginx.conf"));
    let expected = render_nginx("/tmp/nginx", 2, "0.0.0.0:80", "feed-server:8080");
    match nginx {
        None => problems.push("no ConfigMap pushbench-nginx with nginx.conf".to_string()),
        Some(conf) if conf != expected => problems.push(
            "pushbench-nginx's nginx.conf is not deploy/nginx/pushbench.conf.template rendered (PREFIX /tmp/nginx, 2 workers, 0.0.0.0:80, feed-server:8080): run deploy/k8s/configmaps.sh > deploy/k8s/configmaps.yaml".to_string(),
        ),
        Some(_) => {}
    }
    // The nginx container reads that file and declares the port it listens on.
    let nginx_containers: Vec<&Container<'_>> = containers
        .iter()
        .filter(|c| {
            seq(c.pod.spec, "volumes")
                .iter()
                .any(|v| get_str(v, "configMap.name") == Some("pushbench-nginx"))
        })
        .collect();
    if nginx_containers.is_empty() {
        problems.push("no pod mounts the ConfigMap pushbench-nginx".to_string());
    }
    for container in nginx_containers {
        let script = container.argv.join(" ");
        let conf_arg = seq(container.value, "volumeMounts")
            .iter()
            .find(|m| {
                let volume = get_str(m, "name");
                seq(container.pod.spec, "volumes").iter().any(|v| {
                    get_str(v, "name") == volume
                        && get_str(v, "configMap.name") == Some("pushbench-nginx")
                })
            })
            .and_then(|m| get_str(m, "mountPath"))
            .map(|mount| format!("-c {}/nginx.conf", mount.trim_end_matches('/')));
        match conf_arg {
            Some(arg) if script.contains(&arg) => {}
            other => problems.push(format!(
                "{}: does not start nginx with {other:?}",
                container.at()
            )),
        }
        if !script.contains("-p /tmp/nginx") {
            problems.push(format!(
                "{}: nginx's prefix is not the rendered PREFIX /tmp/nginx",
                container.at()
            ));
        }
        if !container.has_port(&Value::from(80u64)) {
            problems.push(format!(
                "{}: nginx listens on 80, which is no containerPort",
                container.at()
            ));
        }
    }
    assert_no_problems("ConfigMaps out of step with their sources", problems);
}

#[test]
fn configmaps_yaml_is_what_configmaps_sh_prints() {
    let script = repo().join("deploy/k8s/configmaps.sh");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}): {} ({INSTALL_KUBECTL} if it is missing)",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout) == read("deploy/k8s/configmaps.yaml"),
        "deploy/k8s/configmaps.yaml is not what configmaps.sh prints now: run deploy/k8s/configmaps.sh > deploy/k8s/configmaps.yaml"
    );
}

/// Whether kubectl, with no cluster, decodes `document` into its typed API object:
/// `kubectl set env --local` decodes before it looks for a pod template, so an object without
/// one (a Service, a ConfigMap) that decoded fails only with "does not have a pod template".
/// Err is kubectl's complaint.
fn kubectl_decodes(document: &str, scratch: &Path) -> Result<(), String> {
    let file = scratch.join("document.json");
    std::fs::write(&file, document).expect("write the document");
    let output = Command::new("kubectl")
        .env("KUBECONFIG", "/dev/null")
        .args(["set", "env", "--local", "-o", "yaml", "-f"])
        .arg(&file)
        .arg("PUSHBENCH_MANIFEST_CHECK=1")
        .output()
        .unwrap_or_else(|e| panic!("run kubectl: {e}: {INSTALL_KUBECTL}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() || stderr.contains("does not have a pod template") {
        Ok(())
    } else {
        Err(stderr.trim().to_string())
    }
}

#[test]
fn kubectl_decodes_every_manifest_offline() {
    let scratch = common::temp_dir("k8s-kubectl");
    // The check itself must be able to fail.
    let broken = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: two\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: i}]}\n";
    assert!(
        kubectl_decodes(broken, &scratch).is_err(),
        "kubectl accepted `replicas: two`: this check cannot fail"
    );
    assert!(
        kubectl_decodes(
            &broken.replace("kind: Deployment", "kind: Deploymnet"),
            &scratch
        )
        .is_err(),
        "kubectl accepted an unknown kind: this check cannot fail"
    );
    let mut problems = Vec::new();
    for object in objects() {
        // As JSON: re-serialised YAML may write `"yes"` as `yes`, which kubectl's YAML 1.1
        // reader takes for a boolean; JSON is what kubectl decodes YAML into anyway.
        let document = serde_json::to_string(&object.value).expect("serialise");
        if let Err(e) = kubectl_decodes(&document, &scratch) {
            problems.push(format!("{}: {e}", object.at()));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert_no_problems("documents kubectl does not decode", problems);
}

#[test]
fn dockerfile_builds_what_the_manifests_run_as_the_user_they_run_as() {
    let dockerfile = read("Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    let mut problems = Vec::new();
    // `cargo build --release --locked -p A -p B` (its RUN may continue over several lines).
    let build = lines.iter().find(|l| l.contains("cargo build"));
    match build {
        None => problems.push("the Dockerfile runs no `cargo build`".to_string()),
        Some(build) => {
            let words: Vec<&str> = build.split_whitespace().collect();
            for flag in ["--release", "--locked"] {
                if !words.contains(&flag) {
                    problems.push(format!("its cargo build has no {flag}"));
                }
            }
            let packages: Vec<&str> = words
                .windows(2)
                .filter(|w| w[0] == "-p")
                .map(|w| w[1])
                .collect();
            for binary in BINARIES {
                // Each binary is its package's name (loadgen's package is `pushbench`).
                if !packages.contains(&binary) {
                    problems.push(format!("its cargo build does not build -p {binary}"));
                }
            }
        }
    }
    for binary in BINARIES {
        if !dockerfile.contains(&format!("target/release/{binary}")) {
            problems.push(format!(
                "the Dockerfile does not take target/release/{binary}"
            ));
        }
        let installed = lines.iter().any(|l| {
            l.starts_with("COPY --from=")
                && l.split_whitespace()
                    .any(|w| w.rsplit('/').next() == Some(binary))
                && l.trim_end_matches('/').ends_with("/usr/local/bin")
        });
        if !installed {
            problems.push(format!(
                "no `COPY --from=… {binary} /usr/local/bin/` (the manifests run it from PATH)"
            ));
        }
    }
    if !lines
        .iter()
        .any(|l| l.starts_with("COPY scenarios/") && l.contains("/opt/pushbench/scenarios"))
    {
        problems.push("the scenarios are not copied to /opt/pushbench/scenarios".to_string());
    }
    if !lines.iter().any(|l| l.contains("fonts-dejavu-core")) {
        problems.push("no fonts-dejavu-core: the report's charts would have no text".to_string());
    }
    // The user the image runs as is the one the pods run as (fsGroup lets it write the volume).
    let user = lines
        .iter()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .and_then(|u| u.split(':').next())
        .and_then(|u| u.trim().parse::<u64>().ok());
    let pods = pod_templates(objects());
    for pod in &pods {
        let runs_our_image = seq(pod.spec, "containers")
            .iter()
            .any(|c| get_str(c, "image") == Some(IMAGE));
        let run_as = get(pod.spec, "securityContext.runAsUser").and_then(Value::as_u64);
        if runs_our_image && run_as != user {
            problems.push(format!(
                "{}: runAsUser {run_as:?}, the image's USER is {user:?}",
                pod.owner.at()
            ));
        }
    }
    // The tag: what the docs and the Dockerfile say to build, what run.sh and the manifests use.
    let build_command = format!("docker build -t {IMAGE} .");
    for file in ["Dockerfile", "docs/distributed.md"] {
        if !read(file).contains(&build_command) {
            problems.push(format!("{file} does not say `{build_command}`"));
        }
    }
    if !read("deploy/k8s/run.sh").contains(&format!("image=\"{IMAGE}\"")) {
        problems.push(format!("deploy/k8s/run.sh's default image is not {IMAGE}"));
    }
    if !read(".dockerignore").lines().any(|l| l.trim() == "target/") {
        problems.push(".dockerignore does not leave out target/".to_string());
    }
    assert_no_problems("the Dockerfile against the manifests", problems);
}

#[test]
fn shell_words_are_split_as_the_shell_splits_them() {
    let script = "set -eu\n: \"${X:?not set}\" # a comment\nexec pushbench run a.toml --shard \"$((I + 1))/4\" --out '/r/x y' && echo $(date +%s)";
    let commands = shell_commands(script).expect("parses");
    assert_eq!(commands.len(), 4, "{commands:?}");
    assert_eq!(commands[1], [":", "${X:?not set}"]);
    assert_eq!(
        commands[2],
        [
            "exec",
            "pushbench",
            "run",
            "a.toml",
            "--shard",
            "$((I + 1))/4",
            "--out",
            "/r/x y"
        ]
    );
    assert_eq!(commands[3], ["echo", "$(date +%s)"]);
    assert!(shell_commands("echo \"open").is_err());
    let help = parse_help(
        "Usage: x\n\nCommands:\n  run  Run\n  help  Help\n\nOptions:\n      --out <OUT>  Where (see --not-a-flag)\n  -h, --help  Print help\n",
    );
    assert_eq!(help.subcommands, ["run", "help"]);
    assert_eq!(
        help.flags.into_iter().collect::<Vec<_>>(),
        [
            ("--help".to_string(), false),
            ("--out".to_string(), true),
            ("-h".to_string(), false)
        ]
    );
}
