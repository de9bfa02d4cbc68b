//! Response compression policy: which coding a client gets, and which answers are worth it.
//!
//! Pingora's compression module picks the first coding it recognises in `Accept-Encoding` and
//! ignores q-values (pingora-notes.md §4). BridgeCore therefore negotiates here, honouring
//! q-values, `identity` and `*`, and hands the module a single token. What is compressed follows
//! Odoo's deployment doc (`gzip_types`) plus JSON; PDFs, spreadsheets, images and anything
//! already encoded are left alone.

/// A content coding BridgeCore can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip`
    Gzip,
    /// `br`
    Brotli,
    /// `zstd`
    Zstd,
}

impl Coding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }
}

/// Which codings are switched on (the `compression:` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enabled {
    /// gzip on.
    pub gzip: bool,
    /// brotli on.
    pub brotli: bool,
    /// zstd on.
    pub zstd: bool,
}

/// Picks the coding for an `Accept-Encoding` header value: the highest q-value among the
/// enabled codings; on a tie, BridgeCore's preference (zstd, then br, then gzip: smallest output
/// for the CPU spent on JSON). `None` means send the answer as it is.
pub fn negotiate(accept_encoding: &str, enabled: Enabled) -> Option<Coding> {
    let mut q_gzip: Option<f32> = None;
    let mut q_br: Option<f32> = None;
    let mut q_zstd: Option<f32> = None;
    let mut q_star: Option<f32> = None;
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let token = parts.next().unwrap_or("").trim();
        if token.is_empty() {
            continue;
        }
        let mut q = 1.0_f32;
        for param in parts {
            let param = param.trim();
            if let Some(v) = param
                .strip_prefix("q=")
                .or_else(|| param.strip_prefix("Q="))
            {
                q = v.trim().parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
            }
        }
        let slot = if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
            &mut q_gzip
        } else if token.eq_ignore_ascii_case("br") {
            &mut q_br
        } else if token.eq_ignore_ascii_case("zstd") {
            &mut q_zstd
        } else if token == "*" {
            &mut q_star
        } else {
            continue;
        };
        // A repeated token keeps its highest weight.
        *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
    }
    let weight = |explicit: Option<f32>| explicit.or(q_star).unwrap_or(0.0);
    let candidates = [
        (Coding::Zstd, enabled.zstd, weight(q_zstd)),
        (Coding::Brotli, enabled.brotli, weight(q_br)),
        (Coding::Gzip, enabled.gzip, weight(q_gzip)),
    ];
    let mut best: Option<(Coding, f32)> = None;
    for (coding, on, q) in candidates {
        if on && q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((coding, q));
        }
    }
    best.map(|(c, _)| c)
}

/// Whether an answer of this `Content-Type` is worth compressing: the deploy doc's
/// `gzip_types` (`text/css text/scss text/plain text/xml application/xml application/json
/// application/javascript`), plus `text/html`, `text/javascript`, `image/svg+xml` and any
/// `+json`/`+xml` type. Never PDFs, spreadsheets, archives or raster images.
pub fn compressible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "text/css"
            | "text/scss"
            | "text/plain"
            | "text/xml"
            | "text/html"
            | "text/javascript"
            | "application/xml"
            | "application/json"
            | "application/json-rpc"
            | "application/javascript"
            | "application/x-javascript"
            | "image/svg+xml"
    ) || essence.ends_with("+json")
        || essence.ends_with("+xml") && essence.starts_with("application/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Enabled = Enabled {
        gzip: true,
        brotli: true,
        zstd: true,
    };

    #[test]
    fn browser_header_gets_the_best_coding() {
        assert_eq!(
            negotiate("gzip, deflate, br, zstd", ALL),
            Some(Coding::Zstd)
        );
        assert_eq!(negotiate("gzip, deflate, br", ALL), Some(Coding::Brotli));
        assert_eq!(negotiate("gzip", ALL), Some(Coding::Gzip));
    }

    #[test]
    fn q_values_are_honoured() {
        assert_eq!(negotiate("br;q=0.5, gzip;q=0.9", ALL), Some(Coding::Gzip));
        assert_eq!(negotiate("zstd;q=0, gzip", ALL), Some(Coding::Gzip));
        assert_eq!(negotiate("gzip;q=0", ALL), None);
        assert_eq!(negotiate("identity", ALL), None);
        assert_eq!(negotiate("", ALL), None);
        assert_eq!(negotiate("*", ALL), Some(Coding::Zstd));
        assert_eq!(negotiate("*;q=0.1, gzip;q=0.2", ALL), Some(Coding::Gzip));
        assert_eq!(negotiate("*;q=0", ALL), None);
        assert_eq!(negotiate("gzip;q=garbage", ALL), None);
    }

    #[test]
    fn disabled_codings_are_never_picked() {
        let only_gzip = Enabled {
            gzip: true,
            brotli: false,
            zstd: false,
        };
        assert_eq!(negotiate("zstd, br", only_gzip), None);
        assert_eq!(
            negotiate("zstd, br, gzip;q=0.1", only_gzip),
            Some(Coding::Gzip)
        );
    }

    #[test]
    fn only_text_like_types_are_compressed() {
        assert!(compressible("application/json; charset=utf-8"));
        assert!(compressible("text/css"));
        assert!(compressible("application/javascript"));
        assert!(compressible("application/vnd.api+json"));
        assert!(!compressible("application/pdf"));
        assert!(!compressible(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        ));
        assert!(!compressible("image/png"));
        assert!(!compressible("application/zip"));
        assert!(!compressible("application/octet-stream"));
    }
}
