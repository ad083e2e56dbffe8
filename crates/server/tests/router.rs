//! The router on its own (issue 12: the server's tests of its own): requests through
//! `tower::ServiceExt::oneshot`, no network, a real data directory made by
//! `custody_vault::layout::init`. The binary's end-to-end tests are in `cli/tests/server.rs`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use custody_crypto::Argon2Params;
use custody_server::{App, ROUTES, Secret, router};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const PASS: &str = "correct horse battery staple";

/// A data directory with a fast (test-only) passphrase seal; the owner's key.
fn setup(dir: &Path) -> String {
    let fast = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };
    custody_vault::layout::init(dir, PASS, fast, None).unwrap().owner_key.clone()
}

async fn send(
    app: &Arc<App>,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        request = request.header("authorization", format!("Bearer {k}"));
    }
    let body = match body {
        Some(b) => {
            request = request.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let mut request = request.body(body).unwrap();
    let peer: SocketAddr = "198.51.100.7:4242".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = router(Arc::clone(app)).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A concrete path for a route pattern.
fn concrete(pattern: &str) -> String {
    pattern.replace("{collection}", "customers").replace("{id}", "00000000000000000000000000000000")
}

#[tokio::test]
async fn every_route_in_the_table_is_served_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let app = Arc::new(App::open(dir.path()).unwrap());
    // Sealed: every route answers something of its own (never the fallback's 404).
    for (method, path) in ROUTES {
        let (status, body) = send(&app, &method.to_uppercase(), &concrete(path), None, None).await;
        assert_ne!(body["error"]["message"], "not found: no such route", "{method} {path}");
        assert!(status != StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {status}");
    }
    let (status, body) = send(&app, "GET", "/v1/nope", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = send(&app, "GET", "/v1/health", None, None).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("sealed")));
    let (status, body) = send(&app, "GET", "/v1/collections/customers/records/x", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    app.close();
}

#[tokio::test]
async fn refusals_are_recorded_with_the_peer_and_a_created_record_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let owner = setup(dir.path());
    let app = Arc::new(App::open(dir.path()).unwrap());
    let (status, _) =
        send(&app, "POST", "/v1/sys/unseal", None, Some(json!({"passphrase": "not it at all"})))
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        send(&app, "POST", "/v1/sys/unseal", None, Some(json!({"passphrase": PASS}))).await;
    assert_eq!(status, StatusCode::OK);
    let records = "/v1/collections/customers/records";
    let (status, _) = send(&app, "GET", records, Some("ck_nonsense"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let jane = json!({"fields": {"name": "Jane Roe", "address": {"street": "1 Main St",
        "city": "Salem", "region": "OR", "postal_code": "97301"}}});
    let (status, created) = send(&app, "POST", records, Some(&owner), Some(jane)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["written"].as_array().unwrap().contains(&json!("address_region")), "{created}");
    assert!(created.get("fields").is_none(), "a write answers no values: {created}");
    let (status, body) = send(
        &app,
        "POST",
        records,
        Some(&owner),
        Some(
            json!({"fields": {"name": "X", "address": {"postal_code": "ABCDE", "country": "US"}}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("'address_postal_code'"), "{body}");
    app.close();
    // The ledger has both refusals, with the peer's pseudonym.
    drop(app);
    let ledger =
        custody_ledger::Ledger::open(dir.path(), custody_ledger::LedgerOptions::default()).unwrap();
    let peer = ledger.pseudonym("198.51.100.7");
    let refused: Vec<custody_ledger::Event> = ledger
        .events(0)
        .map(|e| e.unwrap().1)
        .filter(|e| e.kind() == Some(custody_ledger::Action::AuthFailed))
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().all(|e| e.source.as_ref() == Some(&peer)));
    let reasons: Vec<String> = refused
        .iter()
        .map(|e| e.details_as::<custody_ledger::details::AuthFailed>().unwrap().reason)
        .collect();
    assert_eq!(reasons, ["wrong_passphrase", "malformed"]);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_bad_json_400() {
    let dir = tempfile::tempdir().unwrap();
    let owner = setup(dir.path());
    let app = Arc::new(App::open(dir.path()).unwrap());
    app.unseal(&Secret::Passphrase(PASS), None).unwrap();
    let records = "/v1/collections/customers/records";
    let big = json!({"fields": {"notes": "x".repeat(100_000)}});
    let (status, _) = send(&app, "POST", records, Some(&owner), Some(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = send(&app, "POST", records, Some(&owner), Some(json!(["no"]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    app.close();
}
