//! A reader of the Prometheus text exposition format (and OpenMetrics text), enough to
//! pick series out of a model server's `/metrics`.
//!
//! One sample per line: `name{label="value",...} value [timestamp]`. Comments (`#`),
//! blank lines and lines that do not parse are skipped, so one odd line never loses
//! the rest of the page. Label values may hold escaped `\"`, `\\` and `\n`, and commas
//! or braces; values may be `NaN`, `+Inf`, `-Inf`; a timestamp or an OpenMetrics
//! exemplar after the value is ignored. One pass, O(length of the text).

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Vec<(&'a str, String)>,
    pub value: f64,
}

impl Sample<'_> {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of `text` that parses, in order.
pub fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines().filter_map(parse_line)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn parse_line(line: &str) -> Option<Sample<'_>> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut rest = line[name_end..].trim_start();
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }
    let value = rest.split_whitespace().next()?;
    Some(Sample {
        name,
        labels,
        value: parse_value(value)?,
    })
}

/// Parses `a="x",b="y"}` into `labels`; returns what follows the closing brace.
fn parse_labels<'a>(mut rest: &'a str, labels: &mut Vec<(&'a str, String)>) -> Option<&'a str> {
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Some(after);
        }
        let key_end = rest.find(|c: char| !is_name_char(c))?;
        let key = &rest[..key_end];
        rest = rest[key_end..].trim_start().strip_prefix('=')?;
        rest = rest.trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let close = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        if key.is_empty() {
            return None;
        }
        labels.push((key, value));
        rest = rest[close + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return None;
        }
    }
}

fn parse_value(text: &str) -> Option<f64> {
    // Rust's float parser already reads `NaN`, `inf`, `+Inf`, `-Inf` in any case.
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_labelled_samples_are_read() {
        let text = "up 1\nvllm:num_requests_running{model_name=\"llama\"} 3 1700000000000\n";
        let got: Vec<_> = samples(text).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "up");
        assert_eq!(got[0].value, 1.0);
        assert_eq!(got[1].name, "vllm:num_requests_running");
        assert_eq!(got[1].label("model_name"), Some("llama"));
        assert_eq!(got[1].value, 3.0);
    }

    #[test]
    fn comments_blank_and_broken_lines_are_skipped() {
        let text =
            "# HELP x help\n# TYPE x gauge\n\nx{a=\"1\" 5\n{oops} 1\n9lives 1\nx 2\ny notanumber\n";
        let got: Vec<_> = samples(text).map(|s| (s.name, s.value)).collect();
        assert_eq!(got, vec![("x", 2.0)]);
    }

    #[test]
    fn escaped_label_values_are_unescaped() {
        let text = r#"m{path="a\"b\\c\nd",other="x,y}z",} 7"#;
        let s = samples(text).next().unwrap();
        assert_eq!(s.label("path"), Some("a\"b\\c\nd"));
        assert_eq!(s.label("other"), Some("x,y}z"));
        assert_eq!(s.value, 7.0);
    }

    #[test]
    fn special_values_parse() {
        let text = "a NaN\nb +Inf\nc -Inf\nd 1.5e3\ne -0.25";
        let got: Vec<f64> = samples(text).map(|s| s.value).collect();
        assert!(got[0].is_nan());
        assert_eq!(
            &got[1..],
            &[f64::INFINITY, f64::NEG_INFINITY, 1500.0, -0.25]
        );
    }

    #[test]
    fn openmetrics_exemplars_and_spacing_are_tolerated() {
        let text = "  h_bucket{le=\"0.5\"}   4 # {trace_id=\"abc\"} 0.3 1.0\n";
        let s = samples(text).next().unwrap();
        assert_eq!((s.name, s.value), ("h_bucket", 4.0));
        assert_eq!(s.label("le"), Some("0.5"));
    }
}
