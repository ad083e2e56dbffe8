//! The routes. Each data call runs on a blocking thread: it authenticates the key, records
//! the access in the ledger (fail closed), then reads through the reader pool or writes
//! through the batching writer.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Path, Query, Request, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
use custody_vault::{
    Access, ApiKeyInfo, AuthFailure, Budget, ReadField, ReadMode, Refused, TOKENS_COLLECTION,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::state::{App, Secret};
use custody_vault::{Done, Op, Pool as Unsealed};

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Most records a search returns.
const SEARCH_LIMIT: usize = 100;

type Answer = Result<(StatusCode, Value), ApiError>;

/// Declares the route table once: [`ROUTES`] (what the OpenAPI test checks) and the router
/// are both made from it, so a route cannot be served without being documented.
macro_rules! routes {
    ($($path:literal => $($method:ident $handler:ident),+;)*) => {
        /// Every route the server has, as (method, path pattern).
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),*];

        fn with_routes(router: Router<Arc<App>>) -> Router<Arc<App>> {
            router$(.route($path, MethodRouter::new()$(.$method($handler))+))*
        }
    };
}

routes! {
    "/v1/health" => get health;
    "/v1/openapi.json" => get openapi;
    "/v1/sys/unseal" => post unseal;
    "/v1/sys/rotate" => post rotate;
    "/v1/sys/rotate-root" => post rotate_root;
    "/v1/sys/keys" => post create_key, get list_keys;
    "/v1/sys/keys/{id}" => delete revoke_key;
    "/v1/collections/{collection}/records" => post create, get search;
    "/v1/collections/{collection}/records/{id}" => get read, patch update, delete erase;
    "/v1/collections/{collection}/records/{id}/export" => get export;
    "/v1/tokens" => post tokenize;
    "/v1/tokens/reveal" => post reveal;
}

/// The routes, over `app`.
pub fn router(app: Arc<App>) -> Router {
    let body_limit = app.config().limits.max_body_bytes;
    with_routes(Router::new())
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(access_log))
        .with_state(app)
}

/// One line per request on standard error: method, route *pattern* (never the query or
/// the ids), status and time. Search values travel in the query, so it is never logged.
async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    if std::env::var_os("CUSTODY_QUIET_ACCESS_LOG").is_none() {
        eprintln!(
            "{method} {route} {} {:.1}ms",
            response.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    response
}

fn respond(answer: Answer) -> Response {
    match answer {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The authenticated caller of one request.
struct Caller {
    actor: String,
    role: String,
    purpose: Option<String>,
    request_id: String,
}

impl Caller {
    fn access(&self) -> Access<'_> {
        Access {
            actor: &self.actor,
            role: &self.role,
            purpose: self.purpose.as_deref(),
            request_id: Some(&self.request_id),
        }
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The client's address, when the server was started with connection info (it always is;
/// a router driven directly in tests has none).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// The caller's API key, or 401 after one `auth.failed` event (the reason, the source's
/// pseudonym and a keyed fingerprint of what was presented; never the key).
fn authenticate(
    app: &App,
    vault: &Unsealed,
    headers: &HeaderMap,
    peer: Peer,
) -> Result<Caller, ApiError> {
    let request_id = header_text(headers, "x-request-id").map_or_else(
        || custody_crypto::random_token().unwrap_or_default(),
        |r| r.chars().take(64).collect(),
    );
    let presented = header_text(headers, header::AUTHORIZATION.as_str());
    let credential = presented.map(|v| v.strip_prefix("Bearer ").map(str::trim));
    let checked = match credential {
        None => Err(Refused::Missing),
        Some(None) => Err(Refused::Malformed),
        Some(Some(c)) => vault.read(|v| v.authenticate(c))?,
    };
    let key: ApiKeyInfo = match checked {
        Ok(key) => key,
        Err(reason) => {
            app.gate().auth_failed(&AuthFailure {
                via: "api",
                reason,
                source: peer.0,
                // Only what is shaped like an API key is fingerprinted: anything else after
                // `Bearer ` could be a password pasted by mistake.
                presented_key: credential
                    .flatten()
                    .filter(|c| custody_crypto::ApiKeyMac::id_of(c).is_some()),
                // The caller's own request id is not recorded for a caller nobody knows:
                // it would let anyone write text of their choosing into the ledger.
                request_id: None,
            })?;
            return Err(ApiError::unauthorized());
        }
    };
    let purpose = header_text(headers, "x-custody-purpose").map(str::to_string);
    if let Some(p) = &purpose
        && !app.config().purposes.contains(p)
    {
        // The header is not echoed: an error body repeats nothing the caller sent.
        return Err(ApiError::bad_request(format!(
            "unknown purpose in X-Custody-Purpose: use one of {}",
            app.config().purposes.join(", ")
        )));
    }
    Ok(Caller { actor: format!("key:{}", key.id), role: key.role, purpose, request_id })
}

/// Runs `work` for an authenticated caller on a blocking thread.
async fn call(
    app: Arc<App>,
    peer: Peer,
    headers: HeaderMap,
    work: impl FnOnce(&App, &Unsealed, &Caller) -> Answer + Send + 'static,
) -> Response {
    let answer = tokio::task::spawn_blocking(move || {
        let vault = app.unsealed().ok_or_else(ApiError::sealed)?;
        let caller = authenticate(&app, &vault, &headers, peer)?;
        work(&app, &vault, &caller)
    })
    .await
    .unwrap_or_else(|_| {
        Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the request failed"))
    });
    respond(answer)
}

/// Refuses field names the collection does not have, before anything is recorded: a name
/// is client text and could be a value sent by mistake, so it is neither recorded in the
/// ledger nor echoed back.
fn fields_ok<'a>(
    app: &App,
    collection: &str,
    names: impl IntoIterator<Item = &'a String>,
    searchable_only: bool,
) -> Result<(), ApiError> {
    let fields: Vec<&str> = app.config().collections[collection]
        .fields
        .iter()
        .filter(|f| !searchable_only || f.searchable)
        .map(|f| f.name.as_str())
        .collect();
    if names.into_iter().any(|n| !fields.contains(&n.as_str())) {
        let kind = if searchable_only { "searchable fields" } else { "fields" };
        return Err(ApiError::bad_request(format!(
            "unknown field name; the {kind} of '{collection}' are: {}",
            fields.join(", ")
        )));
    }
    Ok(())
}

/// A collection the API may name: configured and not internal.
fn collection_ok(app: &App, collection: &str) -> Result<(), ApiError> {
    if collection.starts_with('_') || !app.config().collections.contains_key(collection) {
        return Err(ApiError::not_found(&format!(
            "collection '{}'",
            collection.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}

/// Plain values are rate-limited per key, counted per record: a purpose is what makes a
/// read plain.
fn limit_reveals(app: &App, caller: &Caller, records: usize) -> Result<(), ApiError> {
    if caller.purpose.is_none() {
        return Ok(());
    }
    limit(app, caller, Budget::Reveals, records)
}

/// Counts `n` against the caller's `budget`; past it, the refusal is recorded (a key trying
/// to read, search or write more than it should is evidence) and answered 429.
fn limit(app: &App, caller: &Caller, budget: Budget, n: usize) -> Result<(), ApiError> {
    let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    if app.allow(budget, &caller.actor, n) {
        return Ok(());
    }
    app.gate().note(
        &caller.access(),
        budget.refusal(),
        "vault",
        custody_ledger::Outcome::Denied,
    )?;
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "this key has made {} {} this minute; try again in a minute",
            budget.per_minute(&app.config().limits),
            budget.counts()
        ),
    ))
}

/// The answer to a create or update: the record, the names of the fields written, and
/// tokens only for written fields the caller could have tokenised itself (a role that
/// writes and reads the field plain for the purpose). Nothing else of the record is read:
/// a token for a role without plain access would let it test guesses (review item 4), and
/// reading the other fields would be an unaudited read (item 16).
fn written_json(
    vault: &Unsealed,
    permit: &custody_vault::Permit,
    caller: &Caller,
    collection: &str,
    id: &str,
    written: &[String],
) -> Result<Value, ApiError> {
    let mut tokens = Map::new();
    for field in written {
        if !vault.config().may_tokenize(&caller.role, collection, field, caller.purpose.as_deref())
        {
            continue;
        }
        match vault.read(|v| v.token_of(permit, collection, id, field)) {
            Ok(token) => {
                tokens.insert(field.clone(), Value::String(token));
            }
            Err(custody_vault::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(json!({"id": id, "collection": collection, "written": written, "tokens": tokens}))
}

fn fields_json(fields: &BTreeMap<String, ReadField>, only: Option<&[String]>) -> Value {
    let mut out = Map::new();
    for (name, field) in fields {
        if only.is_some_and(|only| !only.iter().any(|f| f == name)) {
            continue;
        }
        out.insert(name.clone(), json!({"value": field.value, "mode": field.mode.as_str()}));
    }
    Value::Object(out)
}

/// The JSON body, or 413 when too large and 400 with `hint` otherwise (never the parser's
/// text: it can quote the input).
fn json_value(body: Result<Json<Value>, JsonRejection>, hint: &str) -> Result<Value, ApiError> {
    body.map(|Json(value)| value).map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the request body is too large",
            )
        } else {
            ApiError::bad_request(hint)
        }
    })
}

/// The values of a create or update body: strings, or numbers written as text. An address
/// field takes an object of parts (`{"street": …, "region": "OR", …}`) or one line of text
/// (read into parts as well as it can be); either becomes its part fields.
fn body_values(
    app: &App,
    collection: &str,
    body: Result<Json<Value>, JsonRejection>,
    replacing: bool,
) -> Result<BTreeMap<String, String>, ApiError> {
    let body = json_value(
        body,
        "the body must be JSON: {\"fields\": {\"name\": \"value\", …}} with Content-Type: application/json",
    )?;
    let fields = body
        .get("fields")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::bad_request("the body needs a \"fields\" object"))?;
    let text_of = |name: &str, value: &Value| match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(ApiError::bad_request(format!(
            "field '{}': the value must be a string or a number",
            name.chars().take(64).collect::<String>()
        ))),
    };
    let mut values = BTreeMap::new();
    for (name, value) in fields {
        let is_address =
            !custody_vault::address::part_fields(app.config(), collection, name).is_empty();
        if is_address {
            let texts: Vec<(String, String)> = match value {
                Value::Object(parts) => parts
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), text_of(&format!("{name}.{k}"), v)?)))
                    .collect::<Result<_, ApiError>>()?,
                other => vec![(String::new(), text_of(name, other)?)],
            };
            let given = if matches!(value, Value::Object(_)) {
                custody_vault::address::Given::Parts(
                    texts.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
                )
            } else {
                custody_vault::address::Given::Text(&texts[0].1)
            };
            let mut parts = custody_vault::address::expand(app.config(), collection, name, &given)?;
            if replacing && !matches!(value, Value::Object(_)) {
                // An address given as one line replaces the stored one: the parts it leaves
                // out are cleared (a customer who moved keeps no old unit or state). An
                // object changes the parts it names ("" clears one).
                parts = custody_vault::address::with_cleared(app.config(), collection, name, parts);
            }
            for (field, text) in parts {
                values.insert(field, text);
            }
            continue;
        }
        values.insert(name.clone(), text_of(name, value)?);
    }
    if values.is_empty() {
        return Err(ApiError::bad_request("\"fields\" is empty"));
    }
    Ok(values)
}

fn json_body<T: for<'de> Deserialize<'de>>(
    body: Result<Json<Value>, JsonRejection>,
) -> Result<T, ApiError> {
    let value = json_value(body, "the body must be JSON with Content-Type: application/json")?;
    serde_json::from_value(value).map_err(|_| {
        ApiError::bad_request(
            "the body does not have the fields this call needs (see /v1/openapi.json)",
        )
    })
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let status = if app.unsealed().is_some() { "ready" } else { "sealed" };
    Json(json!({"status": status})).into_response()
}

/// The OpenAPI document, with this installation's collections and purposes filled in
/// (`config.toml` decides them), so a client generator or a fuzzer knows the real names.
async fn openapi(State(app): State<Arc<App>>) -> Response {
    let mut doc: Value = serde_json::from_str(OPENAPI).expect("the shipped document parses");
    let config = app.config();
    let collections: Vec<&str> =
        config.collections.keys().map(String::as_str).filter(|c| *c != TOKENS_COLLECTION).collect();
    doc["components"]["parameters"]["Collection"]["schema"]["enum"] = json!(collections);
    doc["components"]["parameters"]["Purpose"]["schema"]["enum"] = json!(config.purposes);
    ([(header::CONTENT_TYPE, "application/json")], doc.to_string()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsealBody {
    passphrase: Option<String>,
    shares: Option<Vec<String>>,
}

/// The passphrase and shares are zeroed once the attempt is over (review item 20); the
/// request's raw bytes, which hyper owns, are not.
impl Drop for UnsealBody {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.passphrase.zeroize();
        self.shares.zeroize();
    }
}

async fn unseal(
    State(app): State<Arc<App>>,
    peer: Peer,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let answer = tokio::task::spawn_blocking(move || -> Answer {
        let body: UnsealBody = json_body(body)?;
        let shares: Vec<&str> = body.shares.iter().flatten().map(String::as_str).collect();
        let secret = match (&body.passphrase, shares.is_empty()) {
            (Some(p), true) => Secret::Passphrase(p),
            (None, false) => Secret::Shares(&shares),
            _ => {
                return Err(ApiError::bad_request(
                    "send either {\"passphrase\": …} or {\"shares\": [two shares]}",
                ));
            }
        };
        app.unseal(&secret, peer.0)?;
        Ok((StatusCode::OK, json!({"status": "ready"})))
    })
    .await
    .unwrap_or_else(|_| {
        Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "unseal failed"))
    });
    respond(answer)
}

async fn rotate(State(app): State<Arc<App>>, peer: Peer, headers: HeaderMap) -> Response {
    call(app, peer, headers, move |app, vault, caller| {
        let permit = app.gate().rotate(vault.config(), &caller.access())?;
        let Done::Rotated(rewrapped, version) = vault.write(Op::Rotate { permit })? else {
            unreachable!("a rotation answers Rotated")
        };
        Ok((StatusCode::OK, json!({"rewrapped": rewrapped, "kek_version": version})))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRootBody {
    new_passphrase: String,
}

impl Drop for RotateRootBody {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.new_passphrase.zeroize();
    }
}

/// `POST /v1/sys/rotate-root`: replaces the root key (review item 2), for an admin role.
/// The new root is sealed under `new_passphrase`; the answer carries the new recovery
/// kit's three shares, once.
async fn rotate_root(
    State(app): State<Arc<App>>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    call(app, peer, headers, move |app, _vault, caller| {
        let body: RotateRootBody = json_body(body)?;
        if body.new_passphrase.chars().count() < custody_vault::layout::MIN_PASSPHRASE {
            return Err(ApiError::bad_request(format!(
                "new_passphrase must have at least {} characters",
                custody_vault::layout::MIN_PASSPHRASE
            )));
        }
        let (done, mut kit) = app.rotate_root(&caller.access(), &body.new_passphrase)?;
        let shares: Vec<String> =
            kit.lines().filter(|l| l.starts_with("custody-share-")).map(str::to_string).collect();
        zeroize::Zeroize::zeroize(&mut kit);
        Ok((
            StatusCode::OK,
            json!({"rewrapped": done.rewrapped, "reindexed": done.reindexed,
                "kek_version": done.kek_version, "legacy_keys": done.legacy_keys,
                "recovery_shares": shares}),
        ))
    })
    .await
}

fn key_json(k: &ApiKeyInfo) -> Value {
    json!({"id": k.id, "name": k.name, "role": k.role, "created_at": k.created_at,
        "revoked_at": k.revoked_at})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKeyBody {
    name: String,
    role: String,
}

/// `POST /v1/sys/keys`: a new API key, for an admin role (the owner). The credential is in
/// the answer once; the vault keeps only its keyed hash.
async fn create_key(
    State(app): State<Arc<App>>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    call(app, peer, headers, move |app, vault, caller| {
        let body: CreateKeyBody = json_body(body)?;
        let access = caller.access();
        let action = custody_ledger::Action::ApiKeyCreate;
        // Decided (and recorded) first: a role that may not manage keys learns nothing more.
        let role = vault.config().roles.contains_key(&body.role).then_some(body.role.as_str());
        let permit = app.gate().manage_keys(vault.config(), &access, action, &body.name, role)?;
        if role.is_none() {
            let roles: Vec<&str> = vault.config().roles.keys().map(String::as_str).collect();
            return Err(ApiError::bad_request(format!(
                "role must be one of: {}",
                roles.join(", ")
            )));
        }
        let Done::KeyCreated(info, key) =
            vault.write(Op::CreateKey { permit, name: body.name, role: body.role })?
        else {
            unreachable!("a key creation answers KeyCreated")
        };
        let mut answer = key_json(&info);
        answer["key"] = key.into();
        Ok((StatusCode::CREATED, answer))
    })
    .await
}

/// `GET /v1/sys/keys`: every API key (never a secret), for an admin role.
async fn list_keys(State(app): State<Arc<App>>, peer: Peer, headers: HeaderMap) -> Response {
    call(app, peer, headers, move |app, vault, caller| {
        let action = custody_ledger::Action::ApiKeyList;
        let permit = app.gate().manage_keys(vault.config(), &caller.access(), action, "*", None)?;
        let keys = vault.read(|v| v.list_api_keys(&permit))?;
        Ok((StatusCode::OK, json!({"keys": keys.iter().map(key_json).collect::<Vec<_>>()})))
    })
    .await
}

/// `DELETE /v1/sys/keys/{id}`: revokes a key (by id or name) at once, for an admin role.
/// The last working admin key is kept, so the owner cannot lock themselves out.
async fn revoke_key(
    State(app): State<Arc<App>>,
    peer: Peer,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    call(app, peer, headers, move |app, vault, caller| {
        let access = caller.access();
        let action = custody_ledger::Action::ApiKeyRevoke;
        let id = custody_vault::key_ref(&id);
        // Decided (and recorded) first: a role that may not manage keys learns nothing more.
        let permit = app.gate().manage_keys(vault.config(), &access, action, id, None)?;
        let keys = vault.read(|v| v.list_api_keys(&permit))?;
        let Some(target) =
            keys.iter().find(|k| k.id == id).or_else(|| keys.iter().find(|k| k.name == id))
        else {
            return Err(ApiError::not_found("API key"));
        };
        let is_admin = |k: &ApiKeyInfo| {
            k.revoked_at.is_none() && vault.config().roles.get(&k.role).is_some_and(|r| r.admin)
        };
        if is_admin(target) && keys.iter().filter(|k| is_admin(k)).count() == 1 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "last_admin_key",
                "this is the last working owner key: create another owner key first",
            ));
        }
        let Done::KeyRevoked(info) =
            vault.write(Op::RevokeKey { permit, id: target.id.clone() })?
        else {
            unreachable!("a revocation answers KeyRevoked")
        };
        Ok((StatusCode::OK, key_json(&info)))
    })
    .await
}

async fn create(
    State(app): State<Arc<App>>,
    peer: Peer,
    Path(collection): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    call(app, peer, headers, move |app, vault, caller| {
        collection_ok(app, &collection)?;
        let values = body_values(app, &collection, body, false)?;
        fields_ok(app, &collection, values.keys(), false)?;
        limit(app, caller, Budget::Writes, 1)?;
        let written: Vec<String> = values.keys().cloned().collect();
        let access = caller.access();
        let permit = app.gate().create(
            vault.config(),
            &access,
            &collection,
            values.keys().cloned().collect(),
        )?;
        let Done::Created(id, permit) =
            vault.write(Op::Insert { permit, collection: collection.clone(), values })?
        else {
            unreachable!("an insert answers Created")
        };
        Ok((StatusCode::CREATED, written_json(vault, &permit, caller, &collection, &id, &written)?))
    })
    .await
}

#[derive(Deserialize)]
struct FieldsQuery {
    fields: Option<String>,
}

fn field_list(query: Option<&str>) -> Option<Vec<String>> {
    query.map(|f| f.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

async fn read(
    State(app): State<Arc<App>>,
    peer: Peer,
    Path((collection, id)): Path<(String, String)>,
    Query(query): Query<FieldsQuery>,
    headers: HeaderMap,
) -> Response {
    call(app, peer, headers, move |app, vault, caller| {
        collection_ok(app, &collection)?;
        limit_reveals(app, caller, 1)?;
        let permit = app.gate().read(vault.config(), &caller.access(), &collection, &id)?;
        let fields = vault.read(|v| v.read(&permit, &collection, &id))?;
        let only = field_list(query.fields.as_deref());
        Ok((StatusCode::OK, json!({"id": id, "collection": collection, "fields": fields_json(&fields, only.as_deref())})))
    })
    .await
}

async fn update(
    State(app): State<Arc<App>>,
    peer: Peer,
    Path((collection, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    call(app, peer, headers, move |app, vault, caller| {
        collection_ok(app, &collection)?;
        let values = body_values(app, &collection, body, true)?;
        fields_ok(app, &collection, values.keys(), false)?;
        limit(app, caller, Budget::Writes, 1)?;
        let written: Vec<String> = values.keys().cloned().collect();
        let permit = app.gate().update(
            vault.config(),
            &caller.access(),
            &collection,
            &id,
            written.clone(),
        )?;
        let Done::Updated(permit) = vault.write(Op::Update {
            permit,
            collection: collection.clone(),
            record: id.clone(),
            values,
        })?
        else {
            unreachable!("an update answers Updated")
        };
        Ok((StatusCode::OK, written_json(vault, &permit, caller, &collection, &id, &written)?))
    })
    .await
}

async fn erase(
    State(app): State<Arc<App>>,
    peer: Peer,
    Path((collection, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    call(app, peer, headers, move |app, vault, caller| {
        collection_ok(app, &collection)?;
        let permit = app.gate().erase(vault.config(), &caller.access(), &collection, &id)?;
        let Done::Erased(linked) = vault.write(Op::Erase {
            permit,
            collection: collection.clone(),
            record: id.clone(),
        })?
        else {
            unreachable!("an erase answers Erased")
        };
        Ok((
            StatusCode::OK,
            json!({"id": id, "collection": collection, "erased": true, "linked_erased": linked}),
        ))
    })
    .await
}

async fn search(
    State(app): State<Arc<App>>,
    peer: Peer,
    Path(collection): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    call(app, peer, headers, move |app, vault, caller| {
        collection_ok(app, &collection)?;
        let only = field_list(query.get("fields").map(String::as_str));
        let mut terms = query.iter().filter(|(k, _)| k.as_str() != "fields");
        let (Some((field, value)), None) = (terms.next(), terms.next()) else {
            return Err(ApiError::bad_request(
                "search on exactly one field: ?email=… (plus an optional fields=a,b)",
            ));
        };
        fields_ok(app, &collection, [field], true)?;
        limit(app, caller, Budget::Searches, 1)?;
        let access = caller.access();
        let permit = app.gate().search(vault.config(), &access, &collection, field)?;
        let ids = vault.read(|v| v.search(&permit, &collection, field, value))?;
        limit_reveals(app, caller, ids.len().min(SEARCH_LIMIT))?;
        let mut records = Vec::new();
        for id in ids.iter().take(SEARCH_LIMIT) {
            let permit = app.gate().read(vault.config(), &access, &collection, id)?;
            let fields = vault.read(|v| v.read(&permit, &collection, id))?;
            records.push(json!({"id": id, "fields": fields_json(&fields, only.as_deref())}));
        }
        Ok((
            StatusCode::OK,
            json!({"collection": collection, "count": ids.len(), "records": records}),
        ))
    })
    .await
}

async fn export(
    State(app): State<Arc<App>>,
    peer: Peer,
    Path((collection, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    call(app, peer, headers, move |app, vault, caller| {
        collection_ok(app, &collection)?;
        limit_reveals(app, caller, 1)?;
        let permit = app.gate().export(vault.config(), &caller.access(), &collection, &id)?;
        let (main, linked) =
            vault.read(|v| v.export(&permit, &collection, &id))?;
        limit_reveals(app, caller, linked.len())?;
        let mut by_collection: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (c, r, fields) in &linked {
            by_collection.entry(c.clone()).or_default().push(json!({"id": r, "fields": fields_json(fields, None)}));
        }
        Ok((StatusCode::OK, json!({"id": id, "collection": collection, "fields": fields_json(&main, None), "linked": by_collection})))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenizeBody {
    kind: String,
    value: String,
}

async fn tokenize(
    State(app): State<Arc<App>>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    call(app, peer, headers, move |app, vault, caller| {
        let body: TokenizeBody = json_body(body)?;
        let kinds: Vec<&str> = vault
            .config()
            .collections
            .get(TOKENS_COLLECTION)
            .map(|c| c.fields.iter().map(|f| f.name.as_str()).collect())
            .unwrap_or_default();
        if !kinds.contains(&body.kind.as_str()) {
            return Err(ApiError::bad_request(format!(
                "kind must be one of the tokenised fields: {}",
                kinds.join(", ")
            )));
        }
        limit_reveals(app, caller, 1)?;
        let values = BTreeMap::from([(body.kind.clone(), body.value)]);
        let permit = app.gate().tokenize(vault.config(), &caller.access(), &body.kind)?;
        let Done::Created(id, permit) =
            vault.write(Op::Insert { permit, collection: TOKENS_COLLECTION.into(), values })?
        else {
            unreachable!("an insert answers Created")
        };
        let token = vault.read(|v| v.token_of(&permit, TOKENS_COLLECTION, &id, &body.kind))?;
        Ok((StatusCode::CREATED, json!({"token": token, "kind": body.kind})))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevealBody {
    token: String,
}

async fn reveal(
    State(app): State<Arc<App>>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    call(app, peer, headers, move |app, vault, caller| {
        let body: RevealBody = json_body(body)?;
        if caller.purpose.is_none() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "purpose_required",
                "a reveal needs a purpose: send X-Custody-Purpose",
            ));
        }
        limit_reveals(app, caller, 1)?;
        let access = caller.access();
        let target = vault.read(|v| v.token_target(&body.token))?;
        // Decrypted only once the event (with the record and field) is durable.
        let permit = app.gate().reveal(vault.config(), &access, target.as_ref())?;
        let (collection, record, field) = target.expect("the gate refuses a missing token");
        let value = vault.read(|v| v.reveal_field(&permit, &collection, &record, &field))?;
        Ok((StatusCode::OK, json!({"value": value, "mode": ReadMode::Plain.as_str()})))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route served is in the OpenAPI document with its method, and the document
    /// names no route the server does not have.
    #[test]
    fn the_openapi_document_matches_the_route_table() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} is served but not in openapi.json"
            );
        }
        for (path, methods) in paths {
            for method in methods.as_object().unwrap().keys() {
                assert!(
                    ROUTES.contains(&(method.as_str(), path.as_str())),
                    "openapi.json documents {method} {path}, which the server does not have"
                );
            }
        }
    }
}
