//! Every error of the HTTP surface is the API's JSON
//! `{"code","message","field"?}` with the right status: unknown query
//! parameters and filters, values that do not parse, malformed and
//! oversized bodies, unknown routes and methods.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::host::{HostOptions, TestHost};

/// Sends a request with the host's credentials and checks that the answer
/// is the API's JSON error with `status`; returns it.
async fn json_error(
    host: &TestHost,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    status: StatusCode,
) -> Value {
    let mut request = reqwest::Client::new()
        .request(method.clone(), format!("{}{path}", host.base))
        .header("authorization", &host.auth);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    let got = response.status();
    let content_type = response.headers().get("content-type").cloned();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{method} {path} -> {text}");
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{method} {path} -> {text}"
    );
    let error: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
    assert!(
        error["code"].is_string() && error["message"].is_string(),
        "{method} {path} -> {error}"
    );
    error
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_query_parameters_and_filters_are_named() {
    let host = TestHost::start(HostOptions::default()).await;
    let bad = StatusCode::BAD_REQUEST;
    let error = json_error(
        &host,
        Method::GET,
        "/instances/events?objectName=9001",
        None,
        bad,
    )
    .await;
    assert_eq!(error["field"], "objectName", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("`objectName`") && message.contains("`objectId`"),
        "{message}"
    );

    let error = json_error(
        &host,
        Method::GET,
        "/instances/1/events?status=FAILED&objectName=1&elementName=x",
        None,
        bad,
    )
    .await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("unknown query parameters `objectName`, `elementName`"),
        "{message}"
    );
    for path in ["/instances?foo=1", "/plugins?element=github"] {
        let error = json_error(&host, Method::GET, path, None, bad).await;
        let name = path.split_once('?').unwrap().1.split('=').next().unwrap();
        assert_eq!(error["field"], name, "{path}: {error}");
    }

    // The filters a route does take still work.
    let (status, page) = host
        .api(
            Method::GET,
            "/instances/events?status=FAILED&pageSize=5&from=2024-01-01T00:00:00Z&objectId=9001",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["events"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_frameworks_own_rejections_are_json() {
    let host = TestHost::start(HostOptions::default()).await;
    let bad = StatusCode::BAD_REQUEST;
    let get = Method::GET;

    // Query values and path parameters that do not parse.
    let error = json_error(
        &host,
        get.clone(),
        "/instances/events?pageSize=-1",
        None,
        bad,
    )
    .await;
    assert_eq!(error["field"], "pageSize", "{error}");
    for path in [
        "/instances/abc",
        "/instances/abc/events",
        "/instances/abc/events/e1",
    ] {
        let error = json_error(&host, get.clone(), path, None, bad).await;
        assert_eq!(error["field"], "id", "{path}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains("\"abc\""),
            "{path}: {error}"
        );
    }

    // Bodies that are not the JSON expected.
    let post = Method::POST;
    let error = json_error(&host, post.clone(), "/instances", Some(b"{".to_vec()), bad).await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{error}"
    );
    let body = json!({"element": {"key": "probe"}, "tags": [1]});
    let error = json_error(
        &host,
        post.clone(),
        "/instances",
        Some(body.to_string().into()),
        bad,
    )
    .await;
    assert_eq!(error["field"], "tags[0]", "{error}");
    let created = host
        .create_instance(json!({"element": {"key": "probe"}}))
        .await;
    let switch = format!("/instances/{}/events/enabled", created["id"]);
    let body = br#"{"enabled": "yes"}"#.to_vec();
    let error = json_error(&host, Method::PUT, &switch, Some(body), bad).await;
    assert_eq!(error["field"], "enabled", "{error}");

    // A management body over the limit.
    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(3 * 1024 * 1024)).into_bytes();
    let too_large = StatusCode::PAYLOAD_TOO_LARGE;
    let error = json_error(&host, post.clone(), "/instances", Some(huge), too_large).await;
    assert_eq!(error["code"], "payload_too_large", "{error}");

    // Routes and methods nobody serves.
    let not_found = StatusCode::NOT_FOUND;
    for path in ["/nothing-here", "/instances/1/nothing"] {
        let error = json_error(&host, get.clone(), path, None, not_found).await;
        assert_eq!(error["code"], "not_found", "{path}: {error}");
    }
    let not_allowed = StatusCode::METHOD_NOT_ALLOWED;
    for (method, path) in [(Method::DELETE, "/instances"), (Method::POST, "/healthz")] {
        let error = json_error(&host, method.clone(), path, None, not_allowed).await;
        assert_eq!(
            error["code"], "method_not_allowed",
            "{method} {path}: {error}"
        );
    }
    let response = reqwest::Client::new()
        .delete(format!("{}/instances", host.base))
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}
