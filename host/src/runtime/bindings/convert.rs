//! Conversions between the 0.1.0 bindings and the runtime's internal
//! (0.2.0) types, for calls into 0.1.0 components: arguments go down,
//! results and guest-called imports come up. Types 0.2.0 left unchanged
//! convert field by field; a 0.1.0 `element-info` becomes one without a
//! default poll configuration.

use super::v0_1::plugboard::element::{host as old_host, types as old};
use super::v0_2::plugboard::element::{host as new_host, types as new};

/// A conversion between two versions of one WIT type. (Not `From`: these
/// impls cover `Vec`, `Option` and `Result`, which `From` cannot.)
pub trait Cast<T> {
    /// The value as the other version's type.
    fn cast(self) -> T;
}

/// Types both versions represent with the same Rust type.
macro_rules! same {
    ($($t:ty),*) => {$(
        impl Cast<$t> for $t {
            fn cast(self) -> $t {
                self
            }
        }
    )*};
}

same!(String, bool, u8, u16, u32);

impl<A: Cast<B>, B> Cast<Vec<B>> for Vec<A> {
    fn cast(self) -> Vec<B> {
        self.into_iter().map(Cast::cast).collect()
    }
}

impl<A: Cast<B>, B> Cast<Option<B>> for Option<A> {
    fn cast(self) -> Option<B> {
        self.map(Cast::cast)
    }
}

impl<A: Cast<C>, B: Cast<D>, C, D> Cast<Result<C, D>> for Result<A, B> {
    fn cast(self) -> Result<C, D> {
        self.map(Cast::cast).map_err(Cast::cast)
    }
}

/// A record whose fields are the same in both versions, converted field by
/// field in the direction given.
macro_rules! record {
    ($from:ident::$name:ident => $to:ident { $($field:ident),* }) => {
        impl Cast<$to::$name> for $from::$name {
            fn cast(self) -> $to::$name {
                $to::$name { $($field: self.$field.cast()),* }
            }
        }
    };
}

record!(new::Header => old { name, value });
record!(old::Header => new { name, value });
record!(new::HttpRequest => old { method, url, query, headers, body });
record!(old::HttpRequest => new { method, url, query, headers, body });
record!(new::HttpResponse => old { status, headers, body });
record!(old::HttpResponse => new { status, headers, body });
record!(new::PollContext => old { resource_name, resource_config, since, until, page });
record!(old::NormalizedEvent => new { event_type, object_type, object_id, date, raw });
record!(old::WebhookEvents => new { message_id, events, raw });
record!(old::PollPage => new { events, next });
record!(old::ConfigKey => new { name, required, secret, description });

impl Cast<new::ElementInfo> for old::ElementInfo {
    fn cast(self) -> new::ElementInfo {
        new::ElementInfo {
            key: self.key,
            aliases: self.aliases,
            name: self.name,
            version: self.version,
            modes: self.modes.cast(),
            config_keys: self.config_keys.cast(),
            fetch_hosts: self.fetch_hosts,
            fetch_host_config_keys: self.fetch_host_config_keys,
            default_poll_configuration: None,
            stateless: false,
        }
    }
}

impl Cast<new::EventModes> for old::EventModes {
    fn cast(self) -> new::EventModes {
        let mut modes = new::EventModes::empty();
        if self.contains(old::EventModes::WEBHOOKS) {
            modes |= new::EventModes::WEBHOOKS;
        }
        if self.contains(old::EventModes::POLLING) {
            modes |= new::EventModes::POLLING;
        }
        modes
    }
}

impl Cast<new::EventType> for old::EventType {
    fn cast(self) -> new::EventType {
        match self {
            old::EventType::Created => new::EventType::Created,
            old::EventType::Updated => new::EventType::Updated,
            old::EventType::Deleted => new::EventType::Deleted,
            old::EventType::Unknown => new::EventType::Unknown,
        }
    }
}

impl Cast<new::ElementError> for old::ElementError {
    fn cast(self) -> new::ElementError {
        match self {
            old::ElementError::BadRequest(m) => new::ElementError::BadRequest(m),
            old::ElementError::Unauthorized(m) => new::ElementError::Unauthorized(m),
            old::ElementError::Unsupported(m) => new::ElementError::Unsupported(m),
            old::ElementError::Internal(m) => new::ElementError::Internal(m),
        }
    }
}

impl Cast<new::WebhookOutcome> for old::WebhookOutcome {
    fn cast(self) -> new::WebhookOutcome {
        match self {
            old::WebhookOutcome::Accepted(events) => new::WebhookOutcome::Accepted(events.cast()),
            old::WebhookOutcome::Respond(response) => new::WebhookOutcome::Respond(response.cast()),
        }
    }
}

impl Cast<old::FetchError> for new::FetchError {
    fn cast(self) -> old::FetchError {
        match self {
            new::FetchError::Denied(why) => old::FetchError::Denied(why),
            new::FetchError::Timeout => old::FetchError::Timeout,
            new::FetchError::TooLarge => old::FetchError::TooLarge,
            new::FetchError::Failed(why) => old::FetchError::Failed(why),
        }
    }
}

impl Cast<new_host::LogLevel> for old_host::LogLevel {
    fn cast(self) -> new_host::LogLevel {
        match self {
            old_host::LogLevel::Trace => new_host::LogLevel::Trace,
            old_host::LogLevel::Debug => new_host::LogLevel::Debug,
            old_host::LogLevel::Info => new_host::LogLevel::Info,
            old_host::LogLevel::Warn => new_host::LogLevel::Warn,
            old_host::LogLevel::Error => new_host::LogLevel::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_0_1_0_description_has_no_default_poll_configuration() {
        let info = old::ElementInfo {
            key: "legacy".into(),
            aliases: vec!["old".into()],
            name: "Legacy".into(),
            version: "1.0.0".into(),
            modes: old::EventModes::WEBHOOKS | old::EventModes::POLLING,
            config_keys: vec![old::ConfigKey {
                name: "legacy.secret".into(),
                required: true,
                secret: true,
                description: "d".into(),
            }],
            fetch_hosts: vec!["api.example.com".into()],
            fetch_host_config_keys: vec![],
        };
        let info: new::ElementInfo = info.cast();
        assert_eq!(info.default_poll_configuration, None);
        assert_eq!(
            info.modes,
            new::EventModes::WEBHOOKS | new::EventModes::POLLING
        );
        assert_eq!(info.config_keys[0].name, "legacy.secret");
        assert!(info.config_keys[0].secret);
    }

    #[test]
    fn requests_and_outcomes_cross_versions_unchanged() {
        let request = new::HttpRequest {
            method: "POST".into(),
            url: "/events/x".into(),
            query: "a=1".into(),
            headers: vec![new::Header {
                name: "x-sig".into(),
                value: "abc".into(),
            }],
            body: b"{}".to_vec(),
        };
        let down: old::HttpRequest = request.clone().cast();
        let up: new::HttpRequest = down.cast();
        assert_eq!(
            (up.method, up.url, up.query, up.body),
            (request.method, request.url, request.query, request.body)
        );
        assert_eq!(
            (&up.headers[0].name, &up.headers[0].value),
            (&"x-sig".to_string(), &"abc".to_string())
        );
        let outcome = old::WebhookOutcome::Accepted(old::WebhookEvents {
            message_id: Some("m".into()),
            events: vec![old::NormalizedEvent {
                event_type: old::EventType::Deleted,
                object_type: "ticket".into(),
                object_id: "7".into(),
                date: String::new(),
                raw: "{}".into(),
            }],
            raw: None,
        });
        let result: Result<new::WebhookOutcome, new::ElementError> =
            Ok::<_, old::ElementError>(outcome).cast();
        let Ok(new::WebhookOutcome::Accepted(events)) = result else {
            panic!("accepted stays accepted");
        };
        assert_eq!(events.events[0].event_type, new::EventType::Deleted);
        assert_eq!(events.message_id.as_deref(), Some("m"));
    }
}
