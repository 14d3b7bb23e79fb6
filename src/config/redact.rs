//! Secrets kept out of what is shown: URLs without their user, password
//! and query string, in a value or anywhere in a text.

/// A URL (or URL-like text such as `user:pass@host:port`) as it may be
/// shown in logs and messages: without its user name, password and query
/// string (which may carry a token; `?…` says there was one).
pub fn redacted(raw: &str) -> String {
    if let Ok(mut u) = url::Url::parse(raw) {
        if u.has_host() {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            let query = u.query().is_some();
            u.set_query(None);
            u.set_fragment(None);
            return format!("{u}{}", if query { "?…" } else { "" });
        }
    }
    match (raw.find("://"), raw.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &raw[..s + 3], &raw[at + 1..]),
        (None, Some(at)) => raw[at + 1..].to_string(),
        _ => raw.to_string(),
    }
}

/// `text` with every URL in it (`scheme://…`, up to a space or a quote)
/// [`redacted`]: for text that leaves the process's own log, such as the
/// live page's list of warnings.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.');
        let start = rest[..at]
            .char_indices()
            .rev()
            .find(|&(_, c)| !scheme(c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        let found = &rest[start..end];
        // A URL ends before the punctuation that closes the sentence
        // around it.
        let url = found.trim_end_matches([')', ']', ',', ';', '.', ':']);
        out.push_str(&redacted(url));
        out.push_str(&found[url.len()..]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_no_user_or_password() {
        assert_eq!(
            redacted("https://reader:s3cr%40t@es.internal:9200/x"),
            "https://es.internal:9200/x"
        );
        assert_eq!(
            redacted("reader:s3cr3t@es.internal:9200"),
            "es.internal:9200"
        );
        assert_eq!(
            redacted("mysql://loader:pw@db:3306/shop"),
            "mysql://db:3306/shop"
        );
        assert_eq!(redacted("http://a:9200"), "http://a:9200/");
        assert_eq!(
            redacted("http://u:p@a:9200/?token=QTOKEN#f"),
            "http://a:9200/?…"
        );
    }

    #[test]
    fn urls_in_text_are_redacted_wherever_they_are() {
        assert_eq!(
            redact_urls(
                "error sending request for url (http://elastic:S3cret@127.0.0.1:1/idx/_search?token=QTOKEN): refused; see https://x.example/doc."
            ),
            "error sending request for url (http://127.0.0.1:1/idx/_search?…): refused; see https://x.example/doc."
        );
        assert_eq!(redact_urls("no url here"), "no url here");
        assert_eq!(
            redact_urls("é mysql://root:pw@db:3306/t \"x\""),
            "é mysql://db:3306/t \"x\""
        );
    }
}
