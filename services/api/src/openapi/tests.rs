use super::*;
use crate::routes::ANY;
use std::collections::BTreeSet;

/// Served paths the document leaves out on purpose: the document itself and its pages.
const UNDOCUMENTED: &[&str] = &[
    "/api/openapi.json",
    "/api/swagger/.json",
    "/api/swagger/",
    "/api/redoc/",
];

fn served_and_documented() -> (Vec<Served>, Value) {
    let (_, api, served) = crate::resources::routes().finish();
    (served, document(api))
}

/// Every route the router serves is in the document with exactly its methods, and every
/// documented operation is served; the exceptions are named: the pages above, the router
/// paths' no-slash twins (same methods as the documented path with the slash), and the
/// `APPEND_SLASH` redirects (any method, to a served path with the slash). Any other
/// path, with or without the slash, must be documented.
#[test]
fn every_route_is_documented_with_its_methods_and_nothing_else_is() {
    let (served, doc) = served_and_documented();
    let by_path = |p: &str| served.iter().find(|s| s.path == p);
    assert!(served.len() > 50, "{} routes", served.len());
    let mut routes = BTreeSet::new();
    for s in &served {
        if UNDOCUMENTED.contains(&s.path.as_str()) {
            continue;
        }
        let twin = (!s.path.ends_with('/'))
            .then(|| by_path(&format!("{}/", s.path)))
            .flatten();
        if let Some(twin) = twin {
            assert!(
                s.methods == [ANY] || s.methods == twin.methods,
                "{} answers {:?}, its twin {:?}",
                s.path,
                s.methods,
                twin.methods
            );
            continue;
        }
        for m in &s.methods {
            routes.insert((doc_path(s), m.to_lowercase()));
        }
    }
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("path item") {
            documented.insert((path.clone(), method.clone()));
        }
    }
    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "served but not documented: {missing:?}\ndocumented but not served: {extra:?}"
    );
    for must in [
        "/api/taskinstances/{uuid}/results/",
        "/api/taskinstances/{uuid}/results/{name}",
        "/api/auth/login/",
        "/api/auth/logout/",
    ] {
        assert!(doc["paths"][must].is_object(), "{must} not documented");
    }
}

#[test]
fn the_document_names_every_schema_it_references_and_describes_lists() {
    let (_, doc) = served_and_documented();
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for piece in text.split("#/components/schemas/").skip(1) {
        let name: String = piece.chars().take_while(|c| *c != '"').collect();
        assert!(schemas.contains_key(&name), "missing schema {name}");
    }
    let instance = &schemas["TaskInstance"]["properties"];
    let keys: Vec<&String> = instance.as_object().expect("properties").keys().collect();
    assert_eq!(keys.len(), 9, "{keys:?}");
    assert!(
        doc["paths"]["/api/executabletaskinstances/{uuid}/terminate/"]["post"]["responses"]["202"]
            .is_object()
    );
    let list = &doc["paths"]["/api/executabletaskinstances/"]["get"]["parameters"];
    assert!(list.to_string().contains("\"state__in\""), "{list}");
    let create = &doc["paths"]["/api/taskqueues/"]["post"];
    assert!(create["responses"]["201"].is_object(), "{create}");
    assert!(create["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
    assert_eq!(doc["paths"]["/api/token/"]["post"]["security"], json!([{}]));
    // Every path parameter is declared, also where the handler does not read it.
    let options = &doc["paths"]["/api/updatetaskinstancestatus/{uuid}/"]["options"];
    assert_eq!(options["parameters"][0]["name"], "uuid", "{options}");
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
}

#[test]
fn partial_updates_require_no_field_and_full_ones_do() {
    let (_, doc) = served_and_documented();
    let body = |path: &str, method: &str| {
        doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"].clone()
    };
    for path in ["/api/taskqueues/{id}/", "/api/taskwhitelists/{id}/"] {
        let patch = body(path, "patch");
        assert!(patch["properties"]["name"].is_object(), "{patch}");
        assert!(patch.get("required").is_none(), "{patch}");
        let put = body(path, "put");
        let name = put["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or_default();
        let required = &doc["components"]["schemas"][name]["required"];
        assert!(
            required
                .as_array()
                .is_some_and(|r| r.contains(&Value::from("name"))),
            "{path}: {put} {required}"
        );
    }
}
