//! The committed `schema/fleet.schema.json` must be what the types generate: editors read the file, the loader
//! uses the generated one, and the two must never disagree. The fleet template carries a copy
//! (`templates/default/schema/`, for the `#:schema` line of a new repo's fleet.toml), held to the same.

use std::path::PathBuf;

/// Every committed copy of the schema, from the repository root.
const COPIES: [&str; 2] = [
    "schema/fleet.schema.json",
    "templates/default/schema/fleet.schema.json",
];

fn committed_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

#[test]
fn committed_schema_matches_the_types() {
    let fresh = model::schema_string();
    for rel in COPIES {
        let path = committed_path(rel);
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &fresh).unwrap_or_else(|e| panic!("write {rel}: {e}"));
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{rel} is out of date with the model types.\n\
             Regenerate it with `UPDATE_SCHEMA=1 cargo test -p model --test schema` \
             (or `cargo run -p pifleet -- schema > {rel}`) and commit the result."
        );
    }
}

#[test]
fn schema_describes_every_field() {
    // Editors show descriptions as tooltips: every property of every table must have one.
    let schema = model::schema();
    let defs = schema["$defs"].as_object().expect("$defs");
    let mut missing = Vec::new();
    let mut tables = vec![("(root)".to_owned(), &schema)];
    tables.extend(defs.iter().map(|(k, v)| (k.clone(), v)));
    for (name, def) in tables {
        if let Some(props) = def.get("properties").and_then(|p| p.as_object()) {
            for (field, prop) in props {
                if prop.get("description").is_none() {
                    missing.push(format!("{name}.{field}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields without a doc comment: {missing:?}"
    );
}
