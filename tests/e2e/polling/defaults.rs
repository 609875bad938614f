//! An element's default poll configuration: a ConnectWise polling instance
//! that names no resources polls tickets, companies and contacts, and shows
//! that it does.

use reqwest::Method;
use serde_json::{json, Value};

use super::{
    after, create, host, instance, poll_now, resource, wait_delivered, wait_past, BY_HAND,
};
use crate::support::connectwise_rest::{record, ConnectWiseRest};
use crate::support::receiver::Receiver;

#[tokio::test]
async fn an_instance_naming_no_resources_polls_the_element_s_defaults() {
    let (cw, receiver, host) = (
        ConnectWiseRest::start().await,
        Receiver::start().await,
        host().await,
    );
    let mut body = instance(&cw, &receiver, BY_HAND, Value::Null);
    body["configuration"]
        .as_object_mut()
        .unwrap()
        .remove("event.poller.configuration");
    let (id, since) = create(&host, body).await;

    let (_, shown) = host
        .api(Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert!(
        shown["configuration"]
            .get("event.poller.configuration")
            .is_none(),
        "the defaults are not copied into the instance: {shown}"
    );
    assert_eq!(
        shown["pollerConfiguration"],
        json!({"source": "element", "resources": {
            "tickets": {"url": "/service/tickets"},
            "companies": {"url": "/company/companies"},
            "contacts": {"url": "/company/contacts"},
        }}),
        "{shown}"
    );

    let t1 = after(since);
    let day = std::time::Duration::from_secs(86_400);
    cw.add("tickets", record(1, t1, t1));
    cw.add("companies", record(2, t1 - day, t1));
    cw.add("contacts", record(3, t1, t1));
    wait_past(t1).await;
    let status = poll_now(&host, id).await;
    for name in ["tickets", "companies", "contacts"] {
        let polled = resource(&status, name);
        assert_eq!(polled["lastError"], Value::Null, "{name}: {status}");
        assert_eq!(polled["eventsFound"], 1, "{name}: {status}");
        let seen = cw.seen(name);
        assert!(
            !seen.is_empty() && seen.iter().all(|s| s.authorized),
            "{name}: {seen:?}"
        );
    }

    let mut events: Vec<(String, String, String)> = wait_delivered(&receiver, 3)
        .await
        .into_iter()
        .map(|(kind, object_type, object_id, _)| (kind, object_type, object_id))
        .collect();
    events.sort_by(|a, b| a.2.cmp(&b.2));
    let expected = [
        ("CREATED", "ticket", "1"),
        ("UPDATED", "company", "2"),
        ("CREATED", "contact", "3"),
    ]
    .map(|(k, t, i)| (k.to_string(), t.to_string(), i.to_string()));
    assert_eq!(events, expected);
}
