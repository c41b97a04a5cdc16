//! Where values come from: the files of a configuration directory, environment variables and
//! TOML text, each checked for size and type before it is parsed, and read into layers.

#[allow(unused_imports)]
use super::*;

/// Limits on configuration input, checked before it is parsed: a key is at most
/// [`MAX_KEY_DEPTH`] levels deep, an environment variable's name at most [`MAX_NAME_BYTES`]
/// bytes and its value at most [`MAX_VALUE_BYTES`], a file at most [`MAX_FILE_BYTES`].
pub const MAX_KEY_DEPTH: usize = 6;
/// See [`MAX_KEY_DEPTH`].
pub const MAX_NAME_BYTES: usize = 256;
/// See [`MAX_KEY_DEPTH`].
pub const MAX_VALUE_BYTES: usize = 65_536;
/// See [`MAX_KEY_DEPTH`].
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Builds [`Settings`] from layered sources.
#[derive(Debug, Default, Clone)]
pub struct Loader {
    dir: Option<PathBuf>,
    env: Option<String>,
    vars: Option<HashMap<String, String>>,
}

pub(super) fn config_err(origin: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        origin: origin.into(),
        key: None,
        message: message.into(),
    }
}

impl Loader {
    /// The configuration directory. Default: `LITEPOOL_CONFIG_DIR`, else `config`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The environment name. Default: `LITEPOOL_ENV`, else `development`.
    pub fn env(mut self, env: impl Into<String>) -> Self {
        self.env = Some(env.into());
        self
    }

    /// Use these variables instead of the process environment (for tests).
    pub fn vars(mut self, vars: HashMap<String, String>) -> Self {
        self.vars = Some(vars);
        self
    }

    /// One variable, as text. A variable that is not UTF-8 is an error naming it.
    fn var(&self, name: &str) -> Result<Option<String>> {
        match &self.vars {
            Some(v) => Ok(v.get(name).cloned()),
            None => match std::env::var_os(name) {
                None => Ok(None),
                Some(os) => os.into_string().map(Some).map_err(|_| {
                    config_err(
                        format!("environment variable {name}"),
                        "the value is not valid UTF-8",
                    )
                }),
            },
        }
    }

    /// The `LITEPOOL__…` variables, sorted. Other variables are not read at all, whatever
    /// bytes they hold; a `LITEPOOL__…` one that is not UTF-8, too long or too deep is an error
    /// naming it.
    fn litepool_vars(&self) -> Result<Vec<(String, String)>> {
        let prefix = format!("{ENV_PREFIX}{SEP}");
        let mut out = Vec::new();
        let mut take = |name: String, value: String| -> Result<()> {
            let origin = || format!("environment variable {name}");
            if name.len() > MAX_NAME_BYTES {
                return Err(config_err(
                    format!("environment variable {}…", &name[..40]),
                    format!(
                        "the name is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
                        name.len()
                    ),
                ));
            }
            let depth = name[prefix.len()..].split(SEP).count();
            if depth > MAX_KEY_DEPTH {
                return Err(config_err(
                    origin(),
                    format!("the key is {depth} levels deep; at most {MAX_KEY_DEPTH} are allowed (e.g. LITEPOOL__DATABASES__JOBS__POOL__MAX_SIZE)"),
                ));
            }
            if value.len() > MAX_VALUE_BYTES {
                return Err(config_err(
                    origin(),
                    format!(
                        "the value is {} bytes long; at most {MAX_VALUE_BYTES} are allowed",
                        value.len()
                    ),
                ));
            }
            out.push((name, value));
            Ok(())
        };
        match &self.vars {
            Some(v) => {
                for (k, v) in v.iter().filter(|(k, _)| k.starts_with(&prefix)) {
                    take(k.clone(), v.clone())?;
                }
            }
            None => {
                for (k, v) in std::env::vars_os() {
                    if !k.as_encoded_bytes().starts_with(prefix.as_bytes()) {
                        continue;
                    }
                    let name = k.into_string().map_err(|k| {
                        config_err(
                            format!("environment variable {}", k.to_string_lossy()),
                            "the name is not valid UTF-8",
                        )
                    })?;
                    let value = v.into_string().map_err(|_| {
                        config_err(
                            format!("environment variable {name}"),
                            "the value is not valid UTF-8",
                        )
                    })?;
                    take(name, value)?;
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads, layers and validates every source.
    pub fn load(self) -> Result<Settings> {
        let (env, explicit) = match self
            .env
            .clone()
            .map(Some)
            .unwrap_or(self.var("LITEPOOL_ENV")?)
        {
            Some(env) => (env, true),
            None => ("development".to_owned(), false),
        };
        if env.is_empty()
            || env.len() > 64
            || !env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(config_err(
                "environment name",
                format!("invalid environment name {env:?}: expected 1 to 64 letters, digits, '-' or '_'"),
            ));
        }
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => match &self.vars {
                Some(v) => v.get("LITEPOOL_CONFIG_DIR").map(PathBuf::from),
                None => std::env::var_os("LITEPOOL_CONFIG_DIR").map(PathBuf::from),
            }
            .unwrap_or_else(|| PathBuf::from("config")),
        };

        let default = dir.join("default.toml");
        let mut layers: Vec<(String, Config)> = Vec::new();
        match read_config_file(&default)? {
            Some(text) => layers.push(file_layer(&default, &text)?),
            None => return Err(config_err(
                default.display().to_string(),
                "file not found: default.toml is required (set --config or LITEPOOL_CONFIG_DIR)",
            )),
        }
        let env_file = dir.join(format!("{env}.toml"));
        match read_config_file(&env_file)? {
            Some(text) => layers.push(file_layer(&env_file, &text)?),
            None if explicit => {
                let known = environments(&dir);
                return Err(config_err(
                    env_file.display().to_string(),
                    format!(
                        "file not found: environment {env:?} has no {env}.toml; environments in {}: {}",
                        dir.display(),
                        if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
                    ),
                ));
            }
            None => {}
        }
        for (name, value) in self.litepool_vars()? {
            let origin = format!("environment variable {name}");
            let one = HashMap::from([(name, value)]);
            layers.push((
                origin.clone(),
                build(Config::builder().add_source(environment(one)), &origin)?,
            ));
        }
        load_layers(layers, env, dir)
    }
}

/// Settings from one TOML document, without files or environment variables: for defaults
/// embedded in an application, and for tests. Errors name the origin `TOML string`.
impl Settings {
    /// Parses, validates and resolves `text` as the only configuration source.
    pub fn from_toml(text: &str) -> Result<Settings> {
        let origin = "TOML string";
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(config_err(
                origin,
                format!(
                    "the text is {} bytes long; at most {MAX_FILE_BYTES} are allowed",
                    text.len()
                ),
            ));
        }
        let layer = build(
            Config::builder().add_source(File::from_str(text, FileFormat::Toml)),
            origin,
        )?;
        load_layers(
            vec![(origin.to_owned(), layer)],
            "none".into(),
            PathBuf::new(),
        )
    }
}

/// Reads a configuration file: `None` when there is nothing at `path`; an error naming it when it
/// is not a regular file (a directory, a FIFO, a device, a dangling symlink), is unreadable, too
/// large or not UTF-8. Nothing is opened before its type is known, so a FIFO cannot block.
pub(super) fn read_config_file(path: &Path) -> Result<Option<String>> {
    let origin = || path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(config_err(origin(), format!("cannot read it: {e}"))),
        Ok(_) => {}
    }
    let meta = std::fs::metadata(path).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "it is a symbolic link to a file that does not exist".to_owned()
        } else {
            format!("cannot read it: {e}")
        };
        config_err(origin(), why)
    })?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "a special file (FIFO, socket or device)"
        };
        return Err(config_err(
            origin(),
            format!("not a regular file: it is {what}; expected a TOML file"),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(config_err(
            origin(),
            format!(
                "the file is {} bytes long; at most {MAX_FILE_BYTES} are allowed",
                meta.len()
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| config_err(origin(), format!("cannot read it: {e}")))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| config_err(origin(), "the file is not valid UTF-8"))
}

pub(super) fn file_layer(path: &Path, text: &str) -> Result<(String, Config)> {
    let origin = path.display().to_string();
    let config = build(
        Config::builder().add_source(File::from_str(text, FileFormat::Toml)),
        &origin,
    )?;
    Ok((origin, config))
}

/// The environments of a configuration directory: its `*.toml` files but `default.toml`.
pub(super) fn environments(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".toml")?;
            (stem != "default").then(|| stem.to_owned())
        })
        .collect();
    out.sort();
    out
}

/// Deserializes each layer alone (so that errors name their own file or variable), merges them
/// and resolves the result.
pub(super) fn load_layers(
    layers: Vec<(String, Config)>,
    env: String,
    dir: PathBuf,
) -> Result<Settings> {
    for (origin, layer) in &layers {
        layer
            .clone()
            .try_deserialize::<Layer>()
            .map_err(|e| config_error(e, origin))?;
    }
    let mut merged = Config::builder();
    for (_, layer) in &layers {
        merged = merged.add_source(layer.clone());
    }
    let merged = build(merged, "merged configuration")?;
    let raw: Layer = merged
        .try_deserialize()
        .map_err(|e| config_error(e, "merged configuration"))?;
    let sources = layers.iter().map(|(o, _)| o.clone()).collect();
    Resolver { layers: &layers }.resolve(raw, env, dir, sources)
}

pub(super) fn environment(vars: HashMap<String, String>) -> Environment {
    // No parsing: a value stays the exact text it was ("007" is not 7); the strict
    // deserializers turn the text of a number key into a number.
    Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(SEP)
        .separator(SEP)
        .try_parsing(false)
        .source(Some(vars.into_iter().collect()))
}

pub(super) fn build(
    builder: config::ConfigBuilder<config::builder::DefaultState>,
    origin: &str,
) -> Result<Config> {
    builder.build().map_err(|e| config_error(e, origin))
}

/// Turns the config crate's error into ours, keeping the key and naming the origin.
pub(super) fn config_error(e: ConfigError, origin: &str) -> Error {
    fn message(e: &ConfigError) -> String {
        match e {
            ConfigError::Type {
                unexpected,
                expected,
                ..
            } => {
                format!("invalid type: {unexpected}, expected {expected}")
            }
            ConfigError::At { error, .. } => message(error),
            ConfigError::NotFound(_) => "missing".into(),
            ConfigError::FileParse { cause, .. } => clip(cause.to_string().trim()),
            other => other.to_string(),
        }
    }
    let key = match &e {
        ConfigError::Type { key, .. } | ConfigError::At { key, .. } => key.clone(),
        ConfigError::NotFound(key) => Some(key.clone()),
        _ => None,
    };
    Error::Config {
        origin: origin.to_owned(),
        key,
        message: message(&e),
    }
}
