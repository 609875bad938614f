//! Replica ids: checked when given, generated when not.

/// Longest replica id.
const MAX_ID_LEN: usize = 64;

/// Checks a replica id: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
pub fn check_replica_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!(
            "must be 1 to {MAX_ID_LEN} characters, got {}",
            id.len()
        ));
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(format!(
            "{c:?} is not allowed (use letters, digits, '.', '_' and '-')"
        )),
        None => Ok(()),
    }
}

/// A fresh replica id: the host name (cut to fit, other characters
/// replaced by `-`) and six random hex digits, e.g. `web-7f9c-3a0b1c`.
pub fn generated_replica_id() -> String {
    let host: String = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_ID_LEN - 7)
        .collect();
    let host = if host.is_empty() {
        "plugboard".into()
    } else {
        host
    };
    format!("{host}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}
