//! The compose template as configuration: the built-in one and the shape every template
//! must have (the services and keys `compose::render` fills), checked when the file is
//! loaded so that a wrong `server.template` is refused before any live is started.

use anyhow::{Context, Result, bail};
use serde_yaml::Value;

/// The compose template compiled into the binary (`templates/docker-compose.yml`).
pub const BUILTIN_TEMPLATE: &str = include_str!("../../templates/docker-compose.yml");

/// The streaming service in the template (name used by the PHP script and upstream examples).
pub const STREAMER_SERVICE: &str = "bbb-streamer";
/// The chat Redis service; the streamer reaches it by this name on the project network.
pub const REDIS_SERVICE: &str = "redis";

/// Checks that a template has the services and keys `compose::render` fills.
pub fn check_template(template: &str) -> Result<()> {
    checked(template).map(drop)
}

/// The template parsed and checked: what `compose::render` fills.
pub fn checked(template: &str) -> Result<Value> {
    let doc = parse(template)?;
    check_document(&doc)?;
    Ok(doc)
}

fn parse(template: &str) -> Result<Value> {
    serde_yaml::from_str(template).context("the compose template is not valid YAML")
}

/// The shape `render` relies on, with errors that tell the admin what to fix.
fn check_document(doc: &Value) -> Result<()> {
    let services = match doc.get("services") {
        Some(Value::Mapping(m)) => m,
        Some(_) => bail!("`services` in the compose template is not a mapping"),
        None => bail!("the compose template has no `services`"),
    };
    for name in [STREAMER_SERVICE, REDIS_SERVICE] {
        let service = match services.get(name) {
            Some(Value::Mapping(m)) => m,
            Some(_) => bail!("`services.{name}` in the compose template is not a mapping"),
            None => bail!("the compose template has no `services.{name}` service"),
        };
        if service.contains_key("container_name") {
            // Each slot is its own compose project (named after its directory), so
            // generated names never collide; a fixed one would stop slot 2 from starting.
            bail!(
                "`services.{name}` in the compose template sets `container_name`: \
                 remove it, every slot would use the same container name"
            );
        }
    }
    match services
        .get(STREAMER_SERVICE)
        .and_then(|s| s.get("environment"))
    {
        Some(Value::Mapping(_)) => {}
        Some(Value::Sequence(items)) => {
            for item in items {
                list_entry(item)?;
            }
        }
        Some(_) => bail!(
            "`services.{STREAMER_SERVICE}.environment` in the compose template \
             must be a mapping or a list of KEY=VALUE strings"
        ),
        None => bail!(
            "the compose template has no `services.{STREAMER_SERVICE}.environment` \
             (the streamer is configured through it)"
        ),
    }
    Ok(())
}

/// One `KEY=VALUE` (or bare `KEY`) entry of a list-form environment.
pub fn list_entry(item: &Value) -> Result<(String, Value)> {
    let Value::String(s) = item else {
        bail!(
            "`services.{STREAMER_SERVICE}.environment` in the compose template \
             has an entry that is not a KEY=VALUE string: {item:?}"
        );
    };
    let (key, value) = match s.split_once('=') {
        Some((k, v)) => (k, Value::String(v.to_owned())),
        // A bare `KEY` takes the value from docker compose's own environment: that is
        // a null value in the mapping form.
        None => (s.as_str(), Value::Null),
    };
    if key.trim().is_empty() {
        bail!(
            "`services.{STREAMER_SERVICE}.environment` in the compose template \
             has an entry without a variable name: {s:?}"
        );
    }
    Ok((key.to_owned(), value))
}
