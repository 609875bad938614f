//! Reading `/metrics`: a small parser of the Prometheus / OpenMetrics text
//! format (samples only; `#` lines skipped), enough to assert on values.

use std::collections::BTreeMap;

/// One sample line: `name{label="value",…} number`.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Metric name, with any `_total` / `_bucket` / `_count` suffix.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// Every sample in an exposition.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("unparsable sample: {line}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i..]),
        None => line.split_once(' ')?,
    };
    let mut labels = BTreeMap::new();
    let mut rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let (_, c) = chars.next()?;
            match c {
                '}' => break,
                ',' => {}
                '=' => {
                    chars.next()?; // opening quote
                    let mut value = String::new();
                    loop {
                        let (_, c) = chars.next()?;
                        match c {
                            '\\' => value.push(match chars.next()?.1 {
                                'n' => '\n',
                                other => other,
                            }),
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                other => key.push(other),
            }
        }
        let consumed = chars.next().map(|(i, _)| i).unwrap_or(inner.len());
        rest = &inner[consumed..];
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The sum of the samples named `name` whose labels include all of `with`.
pub fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// Scrapes `url` and parses it.
pub async fn scrape(url: &str) -> Vec<Sample> {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    parse(&text)
}

#[test]
fn parses_labels_with_escapes() {
    let s = parse("# TYPE a counter\na_total{x=\"1\",y=\"q\\\"z\"} 3\nb 2.5\n# EOF\n");
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].labels["y"], "q\"z");
    assert_eq!(sum(&s, "a_total", &[("x", "1")]), 3.0);
    assert_eq!(sum(&s, "b", &[]), 2.5);
}
