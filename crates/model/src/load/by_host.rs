//! The fast path for a valid TOML inventory: one host at a time.
//!
//! A TOML parser's tree of a 10,000-host inventory (7 MB of text, many small tables) takes about
//! 250 MB before a single host is deserialized, and the JSON value the schema validates as much
//! again. This path never holds more than one host's tables: it splits the text at its table
//! headers, parses each piece, merges the pieces of one host, validates that host against the
//! schema's `Host` definition, deserializes it and drops its tables before reading the next.
//!
//! It only ever says "valid, and here is the fleet" or "not sure": whenever the text is not in the
//! shape it understands, or anything is invalid, it returns `None` and the loader reads the whole
//! document the ordinary way, which then reports every problem with its position. So it must
//! never accept what the whole-document path refuses, and it is conservative to get that:
//! - a piece that does not parse on its own (a split inside a multi-line string or array leaves
//!   the piece before it unterminated) means "not sure";
//! - so does a `[hosts]` table, a `hosts` key outside `[hosts.<name>]` headers, a host whose
//!   tables are not contiguous, the same header twice, and a header below a table that another
//!   piece defined with dotted keys or an inline table (TOML allows some of these and forbids
//!   others; the whole-document path tells them apart);
//! - arrays of tables (`[[hosts.<name>.deploy.health]]`) are read, each piece appending one
//!   table, as long as nothing else defines anything at or below the array, and no header or
//!   array of tables goes below one (a sub-table of its last table);
//! - each host is checked against the same schema definition, and deserialized by the same
//!   types, as in the whole document.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Deserialize as _;
use serde_json::{Map, Value};

use super::schema::{build_validator, schema};
use super::toml::datetimes_to_strings;
use crate::names::HostName;
use crate::types::{Fleet, Host};

/// The fleet in `text`, when every part of it is valid and in a shape this path reads; `None`
/// means "read the whole document instead".
pub(super) fn load(text: &str) -> Option<Fleet> {
    let mut root = Tables::default();
    let mut hosts: BTreeMap<HostName, Host> = BTreeMap::new();
    let mut current: Option<(String, Tables)> = None;
    for piece in pieces(text) {
        let mut value: Value = ::toml::from_str(piece).ok()?;
        datetimes_to_strings(&mut value);
        let (header, array) = header_path(piece)?;
        match header.as_slice() {
            [hosts_key, name, rest @ ..] if hosts_key == "hosts" => {
                let body = take_path(&mut value, &header, array)?;
                if current.as_ref().is_none_or(|(n, _)| n != name) {
                    if let Some((done, tables)) = current.take() {
                        finish_host(&done, tables, &mut hosts)?;
                    }
                    // A host whose tables are not contiguous: read the whole document.
                    if hosts.contains_key(&HostName::new(name.as_str()).ok()?) {
                        return None;
                    }
                    current = Some((name.clone(), Tables::default()));
                }
                let (_, tables) = current.as_mut()?;
                tables.add(rest.to_vec(), body, array)?;
            }
            [hosts_key, ..] if hosts_key == "hosts" => return None,
            _ => {
                if value.get("hosts").is_some() {
                    return None;
                }
                let body = take_path(&mut value, &header, array)?;
                root.add(header, body, array)?;
            }
        }
    }
    if let Some((done, tables)) = current.take() {
        finish_host(&done, tables, &mut hosts)?;
    }
    let mut root = root.value;
    root.as_object_mut()?
        .insert("hosts".into(), Value::Object(Map::new()));
    if !super::schema::validator()?.is_valid(&root) {
        return None;
    }
    let mut fleet = Fleet::deserialize(&root).ok()?;
    fleet.hosts = hosts;
    Some(fleet)
}

/// The host's tables, checked against the schema's `Host` and deserialized.
fn finish_host(name: &str, tables: Tables, hosts: &mut BTreeMap<HostName, Host>) -> Option<()> {
    let name = HostName::new(name).ok()?;
    if tables.value.is_null() {
        return None;
    }
    if !host_validator()?.is_valid(&tables.value) {
        return None;
    }
    let host = Host::deserialize(&tables.value).ok()?;
    hosts.insert(name, host);
    Some(())
}

/// A validator for one host: the schema's `Host` definition, with every definition it refers to.
fn host_validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let full = schema();
            let defs = full.get("$defs")?.clone();
            defs.get("Host")?;
            let host = serde_json::json!({
                "$schema": full.get("$schema").cloned().unwrap_or(Value::Null),
                "$ref": "#/$defs/Host",
                "$defs": defs,
            });
            build_validator(&host)
        })
        .as_ref()
}

/// The text split before each line whose first non-blank character is `[`: the table headers
/// (and, harmlessly, lines of a multi-line array; see the module documentation).
fn pieces(text: &str) -> Vec<&str> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > 0 && line.trim_start().starts_with('[') {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts.push(text.len());
    starts
        .windows(2)
        .map(|w| &text[w[0]..w[1]])
        .filter(|p| !p.trim().is_empty())
        .collect()
}

/// The path of the table `piece` starts with (empty for the text before the first header), and
/// whether it is an array of tables (`[[…]]`); `None` for a header that does not parse.
fn header_path(piece: &str) -> Option<(Vec<String>, bool)> {
    let first = piece.lines().next().unwrap_or_default();
    if !first.trim_start().starts_with('[') {
        return Some((Vec::new(), false));
    }
    let array = first.trim_start().starts_with("[[");
    // The header alone is an empty table at its path (for `[[…]]`, an array of one empty
    // table): follow it down.
    let mut value: Value = ::toml::from_str(first).ok()?;
    let mut path = Vec::new();
    loop {
        let inner = match value {
            Value::Object(map) => {
                let mut entries = map.into_iter();
                match (entries.next(), entries.next()) {
                    (None, _) if !array => return Some((path, false)),
                    (Some((key, inner)), None) => {
                        path.push(key);
                        inner
                    }
                    _ => return None,
                }
            }
            Value::Array(items) if array && items.len() == 1 => {
                let [only] = <[Value; 1]>::try_from(items).ok()?;
                if only.as_object().is_some_and(Map::is_empty) {
                    return Some((path, true));
                }
                return None;
            }
            _ => return None,
        };
        value = inner;
    }
}

/// Takes the value at `path` out of `value` (which must lead there through tables only); for an
/// array of tables, the one table the piece adds to it.
fn take_path(value: &mut Value, path: &[String], array: bool) -> Option<Value> {
    let mut cur = value;
    for key in path {
        cur = cur.as_object_mut()?.get_mut(key)?;
    }
    if array {
        match cur.as_array_mut()?.as_mut_slice() {
            [only] => cur = only,
            _ => return None,
        }
    }
    cur.is_object().then(|| cur.take())
}

/// One part of the inventory being put together from its pieces, with what TOML needs to tell a
/// sub-table from a redefinition.
#[derive(Default)]
struct Tables {
    value: Value,
    /// The header of every piece merged so far.
    headers: BTreeSet<Vec<String>>,
    /// Every table defined inside a piece's body (dotted keys, inline tables).
    bodies: BTreeSet<Vec<String>>,
    /// Every array of tables (`[[…]]`) merged so far.
    arrays: BTreeSet<Vec<String>>,
}

impl Tables {
    /// Merges the body of the table at `header` (with `array`, the next table of the array of
    /// tables there); `None` when it redefines anything, or the shape is one it does not read.
    fn add(&mut self, header: Vec<String>, body: Value, array: bool) -> Option<()> {
        if self.value.is_null() {
            self.value = Value::Object(Map::new());
        }
        // Below an array of tables, a header means its last table's sub-table; left to the whole
        // document. So is anything inside the bodies of its tables.
        if (0..=header.len())
            .any(|n| self.arrays.contains(&header[..n]) && (n < header.len() || !array))
        {
            return None;
        }
        if array {
            return self.push(header, body);
        }
        if self.headers.contains(&header)
            || (0..=header.len()).any(|n| self.bodies.contains(&header[..n]))
        {
            return None;
        }
        let mut defined = Vec::new();
        tables_in(&body, &mut header.clone(), &mut defined);
        // A header (or array of tables) already merged at or below a table this body defines is
        // a redefinition too.
        for table in &defined {
            let at_or_below = |paths: &BTreeSet<Vec<String>>| {
                paths
                    .range(table.clone()..)
                    .next()
                    .is_some_and(|h| h.starts_with(table))
            };
            if at_or_below(&self.headers) || at_or_below(&self.arrays) {
                return None;
            }
        }
        let mut at = &mut self.value;
        for key in &header {
            let map = at.as_object_mut()?;
            at = map
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        merge(at, body)?;
        self.headers.insert(header);
        self.bodies.extend(defined);
        Some(())
    }

    /// Appends `body` to the array of tables at `header`. The first time, nothing else may have
    /// defined anything at or below it, nor a table above it inside a body.
    fn push(&mut self, header: Vec<String>, body: Value) -> Option<()> {
        let first = !self.arrays.contains(&header);
        let at_or_below = |paths: &BTreeSet<Vec<String>>| {
            paths
                .range(header.clone()..)
                .next()
                .is_some_and(|h| h.starts_with(&header))
        };
        if first && (at_or_below(&self.headers) || at_or_below(&self.bodies)) {
            return None;
        }
        if (0..header.len()).any(|n| self.bodies.contains(&header[..n])) {
            return None;
        }
        let (last, parents) = header.split_last()?;
        let mut at = &mut self.value;
        for key in parents {
            let map = at.as_object_mut()?;
            at = map
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        let map = at.as_object_mut()?;
        match map.get_mut(last) {
            None if first => {
                map.insert(last.clone(), Value::Array(vec![body]));
            }
            Some(Value::Array(items)) if !first => items.push(body),
            _ => return None,
        }
        self.arrays.insert(header);
        Some(())
    }
}

/// The paths of the tables inside `value` (not itself), below `path`.
fn tables_in(value: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Value::Object(map) = value {
        for (key, inner) in map {
            if inner.is_object() {
                path.push(key.clone());
                out.push(path.clone());
                tables_in(inner, path, out);
                path.pop();
            }
        }
    }
}

/// Merges `from` into `into`: tables key by key; any other value may be written once only.
fn merge(into: &mut Value, from: Value) -> Option<()> {
    let (Value::Object(into), Value::Object(from)) = (into, from) else {
        return None;
    };
    for (key, value) in from {
        match into.get_mut(&key) {
            None => {
                into.insert(key, value);
            }
            Some(existing) => merge(existing, value)?,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::load;
    use crate::types::Fleet;

    const EXAMPLE: &str = include_str!("../../../../fleet.toml");
    const HEAD: &str = "[fleet]\nstate_version = \"26.05\"\n\n";

    /// The fleet as the whole-document path reads it (serde over the entire text).
    fn whole(text: &str) -> Fleet {
        ::toml::from_str(text).expect("a valid inventory")
    }

    #[test]
    fn the_example_fleet_reads_the_same_by_host_as_whole() {
        let fleet = load(EXAMPLE).expect("the example is in the shape this path reads");
        assert!(fleet.hosts.len() >= 2);
        assert_eq!(fleet, whole(EXAMPLE));
    }

    #[test]
    fn sub_tables_before_and_after_their_host_read_the_same_as_whole() {
        let text = format!(
            "{HEAD}[hosts.b.containers.web]\nimage = \"nginx:1.27\"\nenvironment = {{ TZ = \"UTC\" }}\n\n\
             [hosts.b]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\ndeploy.user = \"root\"\n\n\
             [hosts.b.containers.db]\nimage = \"postgres:16\"\n\n\
             [users.carol]\nssh_keys = []\n\n\
             [hosts.a]\nboard = \"rpi3\"\naddress = \"10.0.0.1\"\n"
        );
        let fleet = load(&text).expect("contiguous hosts");
        assert_eq!(fleet.hosts.len(), 2);
        assert_eq!(fleet, whole(&text));
    }

    /// Shapes this path leaves to the whole-document reader: redefinitions TOML refuses (the
    /// whole path then reports them), and legal ones it does not tell apart from those.
    #[test]
    fn what_it_is_not_sure_of_goes_to_the_whole_document_path() {
        let host = "board = \"rpi4\"\naddress = \"10.0.0.2\"\n";
        for text in [
            // The same table twice (TOML refuses it, even with different keys).
            format!("{HEAD}[hosts.a]\n{host}\n[hosts.a]\ntags = [\"x\"]\n"),
            // A table defined by dotted keys, then by a header.
            format!(
                "{HEAD}[hosts.a]\n{host}network.mode = \"dhcp\"\n\n[hosts.a.network]\ninterface = \"eth0\"\n"
            ),
            // An inline table extended by a header below it.
            format!(
                "{HEAD}[hosts.a]\n{host}containers = {{ web = {{ image = \"nginx:1\" }} }}\n\n[hosts.a.containers.db]\nimage = \"postgres:16\"\n"
            ),
            // An array of tables after a table at its path, a table below one, an array inside
            // one, one extending an inline table or an inline array.
            format!(
                "{HEAD}[hosts.a]\n{host}\n[hosts.a.deploy.health]\nunit = \"sshd\"\n[[hosts.a.deploy.health]]\nunit = \"sshd\"\n"
            ),
            format!(
                "{HEAD}[hosts.a]\n{host}\n[[hosts.a.deploy.health]]\nunit = \"sshd\"\n[hosts.a.deploy.health.x]\ny = 1\n"
            ),
            format!(
                "{HEAD}[hosts.a]\n{host}\n[[hosts.a.deploy.health]]\nunit = \"sshd\"\n[[hosts.a.deploy.health.x]]\ny = 1\n"
            ),
            format!(
                "{HEAD}[hosts.a]\n{host}deploy = {{ user = \"root\" }}\n[[hosts.a.deploy.health]]\nunit = \"sshd\"\n"
            ),
            format!(
                "{HEAD}[hosts.a.deploy]\nhealth = [{{ unit = \"a\" }}]\n[[hosts.a.deploy.health]]\nunit = \"sshd\"\n[hosts.a]\n{host}"
            ),
            format!("{HEAD}[hosts.a]\n{host}\n[[hosts.a]]\nboard = \"rpi4\"\n"),
            // A table defined in a body where an array of tables put one already.
            format!(
                "{HEAD}[[hosts.a.deploy.health]]\nunit = \"sshd\"\n[hosts.a]\n{host}deploy = {{ user = \"root\" }}\n"
            ),
            format!(
                "{HEAD}[[hosts.a.deploy.health]]\nunit = \"sshd\"\n[hosts.a]\n{host}deploy.user = \"root\"\n"
            ),
            // `[hosts]` itself, hosts outside their headers.
            format!("{HEAD}[hosts]\na.board = \"rpi4\"\na.address = \"10.0.0.2\"\n"),
            format!("hosts.a.board = \"rpi4\"\nhosts.a.address = \"10.0.0.2\"\n{HEAD}"),
            // A host whose tables are not contiguous.
            format!(
                "{HEAD}[hosts.a]\n{host}\n[hosts.b]\n{host}\n[hosts.a.containers.web]\nimage = \"nginx:1\"\n"
            ),
            // A line starting with `[` inside a multi-line array splits it: the piece before does
            // not parse on its own.
            format!(
                "{HEAD}[hosts.a]\n{host}kernel_params = [\n\"quiet\",\n]\n[hosts.a.ssh]\nport = 22\nextra_settings.AcceptEnv = [\n[\"LANG\"],\n]\n"
            ),
            // Invalid hosts are reported by the whole path, with positions.
            format!("{HEAD}[hosts.a]\nboard = \"pi\"\naddress = \"10.0.0.2\"\n"),
        ] {
            assert!(load(&text).is_none(), "{text}");
        }
    }

    /// Pieces a host's part of an inventory is made of: tables, arrays of tables, and the ways
    /// TOML also defines tables (dotted keys, inline tables), which clash with some of them.
    const PIECES: &[&str] = &[
        "[hosts.{h}]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\n",
        "[hosts.{h}]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\ndeploy = { user = \"root\" }\n",
        "[hosts.{h}]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\ndeploy.user = \"root\"\n",
        "[hosts.{h}.deploy]\nuser = \"root\"\n",
        "[hosts.{h}.deploy]\nhealth = [{ unit = \"a.service\" }]\n",
        "[[hosts.{h}.deploy.health]]\nunit = \"sshd.service\"\n",
        "[[hosts.{h}.deploy.health]]\ntcp = 22\n",
        "[hosts.{h}.deploy.health]\nunit = \"x\"\n",
        "[[hosts.{h}.deploy.health.x]]\ny = 1\n",
        "[hosts.{h}.containers.web]\nimage = \"nginx:1.27\"\n",
        "[hosts.{h}.containers]\nweb = { image = \"nginx:1.27\" }\n",
        "[[hosts.{h}.containers]]\nimage = \"nginx:1.27\"\n",
        "[users.carol]\nssh_keys = []\n",
    ];

    /// A host's pieces: one of the first three (its own table) at `at` among `rest`, in order.
    fn host_text(host: &str, base: usize, at: usize, rest: &[usize]) -> String {
        let mut order: Vec<usize> = rest.iter().map(|i| 3 + i % (PIECES.len() - 4)).collect();
        order.insert(at.min(order.len()), base % 3);
        order
            .iter()
            .map(|&i| format!("{}\n", PIECES[i].replace("{h}", host)))
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        /// Whatever it reads, it reads as serde over the whole text does: never a fleet the
        /// whole-document path refuses, never a different one. Hosts are mostly contiguous
        /// (most texts are then in the shape it reads), sometimes not.
        #[test]
        fn what_it_reads_the_whole_document_reads_the_same(
            a in (0..3usize, 0..4usize, proptest::collection::vec(0..16usize, 0..4)),
            b in (0..3usize, 0..4usize, proptest::collection::vec(0..16usize, 0..4)),
            users_at in 0..3usize,
            stray in proptest::option::of((0..PIECES.len(), 0..2usize)),
        ) {
            let mut parts = vec![host_text("a", a.0, a.1, &a.2), host_text("b", b.0, b.1, &b.2)];
            parts.insert(users_at, PIECES[PIECES.len() - 1].to_owned() + "\n");
            if let Some((piece, host)) = stray {
                parts.push(PIECES[piece].replace("{h}", ["a", "b"][host]));
            }
            let text = format!("{HEAD}{}", parts.concat());
            if let Some(fleet) = load(&text) {
                let whole: Result<Fleet, _> = ::toml::from_str(&text);
                proptest::prop_assert!(whole.is_ok(), "whole path refuses:\n{text}\n{:?}", whole.err());
                proptest::prop_assert_eq!(&fleet, &whole.unwrap(), "{}", text);
            }
        }
    }

    #[test]
    fn a_legal_inventory_it_is_not_sure_of_still_loads() {
        let text = format!(
            "{HEAD}[hosts.a]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\n\n\
             [hosts.b]\nboard = \"rpi4\"\naddress = \"10.0.0.3\"\n\n\
             [hosts.a.containers.web]\nimage = \"nginx:1.27\"\n"
        );
        assert!(load(&text).is_none());
        let loaded = crate::load_str(&text, "fleet.toml").expect("valid");
        assert_eq!(loaded.fleet, whole(&text));
    }

    /// Health checks are written as arrays of tables: read host by host, in order, with the
    /// host's other tables around them.
    #[test]
    fn arrays_of_tables_read_the_same_as_whole() {
        let text = format!(
            "{HEAD}[hosts.a]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\n\n\
             [[hosts.a.deploy.health]]\nunit = \"sshd.service\"\n\n\
             [hosts.a.containers.web]\nimage = \"nginx:1.27\"\n\n\
             [[hosts.a.deploy.health]]\ntcp = 22\n\n\
             [[hosts.a.deploy.health]]\ncontainer = \"web\"\n\n\
             [hosts.a.deploy]\nuser = \"root\"\n\n\
             [hosts.b]\nboard = \"rpi3\"\naddress = \"10.0.0.3\"\n\n\
             [[hosts.b.deploy.health]]\nunit = \"nginx.service\"\n"
        );
        let fleet = load(&text).expect("arrays of tables are read host by host");
        assert_eq!(fleet, whole(&text));
        let a = &fleet.hosts[&crate::names::HostName::new("a").unwrap()];
        assert_eq!(a.deploy.health.len(), 3);
        assert_eq!(a.deploy.user.as_str(), "root");
    }
}
