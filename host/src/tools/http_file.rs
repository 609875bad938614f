//! The text files `plugboard plugins run` reads an HTTP request or a
//! recorded response from, in the shape of HTTP/1.1 on the wire:
//!
//! ```text
//! POST /events/acme/1?source=test        (request: method and path[?query])
//! content-type: application/json         (headers, one `name: value` a line)
//! x-acme-signature: 5d41402abc4b2a76
//!                                        (one empty line)
//! {"id": "evt_1", "type": "ticket.updated"}   (the body, byte for byte)
//! ```
//!
//! A response file starts with its status instead (`200`, or `HTTP/1.1 200
//! OK`). Header names are lower-cased as the host does for inbound
//! requests; lines may end in `\r\n`; a file without an empty line has no
//! body. The body is everything after the empty line, unchanged (a final
//! newline included, if the file has one).

use anyhow::{bail, Context as _};

use crate::runtime::{Header, HttpRequest, HttpResponse};

/// The head (first line and headers) and body of a file.
fn split(text: &[u8]) -> anyhow::Result<(String, Vec<Header>, Vec<u8>)> {
    let (head, body) = match find_blank_line(text) {
        Some((end, body_start)) => (&text[..end], text[body_start..].to_vec()),
        None => (text, Vec::new()),
    };
    let head =
        std::str::from_utf8(head).context("the head (first line and headers) is not UTF-8")?;
    let mut lines = head.lines().map(|line| line.trim_end_matches('\r'));
    let first = lines
        .next()
        .filter(|line| !line.trim().is_empty())
        .context("the file is empty: its first line must be the request line or the status")?
        .to_owned();
    let mut headers = Vec::new();
    for (n, line) in lines.enumerate() {
        let (name, value) = line.split_once(':').with_context(|| {
            format!(
                "line {}: a header must be `name: value`, got {line:?}",
                n + 2
            )
        })?;
        if name.trim().is_empty() || name.contains(char::is_whitespace) {
            bail!("line {}: {name:?} is not a header name", n + 2);
        }
        headers.push(Header {
            name: name.to_ascii_lowercase(),
            value: value.trim().to_owned(),
        });
    }
    Ok((first, headers, body))
}

/// Where the head ends and the body starts: after the first empty line
/// (`\n\n` or `\r\n\r\n`).
fn find_blank_line(text: &[u8]) -> Option<(usize, usize)> {
    let mut at = 0;
    while let Some(offset) = text[at..].iter().position(|&b| b == b'\n') {
        let end = at + offset;
        let next = end + 1;
        if text[next..].starts_with(b"\n") {
            return Some((end, next + 1));
        }
        if text[next..].starts_with(b"\r\n") {
            return Some((end, next + 2));
        }
        at = next;
    }
    None
}

/// Parses a request file: `METHOD /path[?query]`, headers, body.
pub fn parse_request(text: &[u8]) -> anyhow::Result<HttpRequest> {
    let (first, headers, body) = split(text)?;
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        bail!("line 1: a request starts with `METHOD /path`, e.g. `POST /events/acme/1`; got {first:?}");
    };
    if !target.starts_with('/') {
        bail!("line 1: the path must start with '/', got {target:?}");
    }
    let (url, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(HttpRequest {
        method: method.to_ascii_uppercase(),
        url: url.to_owned(),
        query: query.to_owned(),
        headers,
        body,
    })
}

/// Parses a response file: `200` (or `HTTP/1.1 200 OK`), headers, body.
pub fn parse_response(text: &[u8]) -> anyhow::Result<HttpResponse> {
    let (first, headers, body) = split(text)?;
    let status = first
        .split_whitespace()
        .find(|word| !word.starts_with("HTTP/"))
        .and_then(|word| word.parse::<u16>().ok())
        .filter(|status| (100..=599).contains(status))
        .with_context(|| {
            format!("line 1: a response starts with its status, e.g. `200`; got {first:?}")
        })?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_file_reads_as_on_the_wire() {
        let request = parse_request(
            b"post /events/acme/1?a=1&b=2\r\nContent-Type: application/json\r\nX-Sig:  abc \r\n\r\n{\"x\":1}\n",
        )
        .unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "/events/acme/1");
        assert_eq!(request.query, "a=1&b=2");
        assert_eq!(request.headers.len(), 2);
        assert_eq!(request.headers[0].name, "content-type");
        assert_eq!(request.headers[1].value, "abc");
        assert_eq!(request.body, b"{\"x\":1}\n");
        let bare = parse_request(b"GET /x").unwrap();
        assert!(bare.headers.is_empty() && bare.body.is_empty());
    }

    #[test]
    fn a_response_file_starts_with_its_status() {
        let response = parse_response(b"HTTP/1.1 404 Not Found\nx: 1\n\nnope").unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (404, &b"nope"[..])
        );
        assert_eq!(parse_response(b"200\n\n{}").unwrap().status, 200);
    }

    #[test]
    fn mistakes_are_named_with_their_line() {
        let error = |text: &[u8]| format!("{:#}", parse_request(text).unwrap_err());
        assert!(error(b"").contains("empty"));
        assert!(error(b"POST events").contains("must start with '/'"));
        assert!(error(b"POST /x\nno colon here\n\nbody").contains("line 2"));
        let status = format!("{:#}", parse_response(b"OK\n\n").unwrap_err());
        assert!(status.contains("status"), "{status}");
    }
}
