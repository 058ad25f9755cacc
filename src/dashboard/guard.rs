//! Which requests the dashboard answers, and what every answer carries.
//!
//! A page on any site can make a browser ask the dashboard for its data through DNS rebinding: a
//! name of theirs, resolved first to their server and then to this address. Such a request carries
//! their name in its `Host` header. So the dashboard answers only under a host it knows: an IP
//! address, `localhost`, or a name given with `--allowed-host` (`*` for any, behind a proxy that
//! checks it). `/livez` answers under any host: it says nothing but "ok".
//!
//! Every response says not to guess content types (`X-Content-Type-Options`), and the pages may
//! load scripts, styles, workers and data from their own origin only (`Content-Security-Policy`),
//! be framed by no one, and send no referrer.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The content security policy of every response: own assets only; charts are inline SVG.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// The host names the dashboard answers under, besides IP addresses and `localhost`.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts {
    /// Lowercase names, without a trailing dot.
    names: Arc<Vec<String>>,
    /// `*` was given: any host.
    any: bool,
}

impl AllowedHosts {
    /// The names given with `--allowed-host` (`*` for any).
    pub fn new(names: &[String]) -> AllowedHosts {
        let names: Vec<String> = names
            .iter()
            .map(|name| name.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect();
        AllowedHosts {
            any: names.iter().any(|name| name == "*"),
            names: Arc::new(names),
        }
    }

    /// Whether a request with this `Host` header (name or address, with or without a port) is
    /// answered.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let host = host.trim();
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        if let Some(rest) = host.strip_prefix('[') {
            return rest
                .split_once(']')
                .is_some_and(|(address, _)| address.parse::<Ipv6Addr>().is_ok());
        }
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name.parse::<Ipv4Addr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
    }
}

/// The middleware: refuses a request under an unknown host, and adds the security headers.
pub async fn guard(State(allowed): State<AllowedHosts>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|host| String::from_utf8_lossy(host.as_bytes()).into_owned());
    let mut response = match host {
        Some(host) if request.uri().path() != "/livez" && !allowed.allows(&host) => {
            let shown = super::bounds::excerpt(&host, 100);
            (
                StatusCode::FORBIDDEN,
                format!(
                    "This dashboard does not answer under the host `{shown}`. If that is its \
                     name, start it with --allowed-host {shown} (ROOMFLOW_ALLOWED_HOSTS).\n"
                ),
            )
                .into_response()
        }
        _ => next.run(request).await,
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_localhost_and_given_names_are_answered() {
        let allowed = AllowedHosts::new(&["Dashboard.example.org.".into()]);
        for host in [
            "127.0.0.1:8080",
            "10.1.2.3",
            "[::1]:8080",
            "[fe80::1]",
            "localhost:8080",
            "LOCALHOST",
            "app.localhost:1",
            "dashboard.example.org",
            "dashboard.example.org.:8080",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in [
            "attacker.example",
            "attacker.example:8080",
            "127.0.0.1.attacker.example",
            "localhost.attacker.example",
            "[not-an-address]",
            "",
        ] {
            assert!(!allowed.allows(host), "{host}");
        }
        assert!(AllowedHosts::new(&["*".into()]).allows("attacker.example"));
    }
}
