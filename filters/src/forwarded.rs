//! The client address and the `X-Forwarded-*` headers Odoo's proxy mode reads.
//!
//! Odoo (werkzeug `ProxyFix` with `x_for=1`) takes the LAST entry of `X-Forwarded-For` as the
//! client, and only when `X-Forwarded-Host` is present (odoo-protocol.md §9). Its login
//! brute-force cooldown is keyed on that address, so it must be the real client: BridgeCore
//! appends the peer to the list (nginx's `$proxy_add_x_forwarded_for`) and believes what a
//! client sent only when the peer is a trusted proxy.

use std::net::IpAddr;

/// A set of networks whose `X-Forwarded-For` is believed.
pub trait TrustedNets {
    /// Whether `ip` belongs to a trusted proxy.
    fn trusts(&self, ip: IpAddr) -> bool;
}

impl<F: Fn(IpAddr) -> bool> TrustedNets for F {
    fn trusts(&self, ip: IpAddr) -> bool {
        self(ip)
    }
}

/// The client address BridgeCore acts on (rate limits, logs, `X-Real-IP`): the peer, unless the
/// peer is a trusted proxy, in which case the right-most address of `X-Forwarded-For` that is
/// not itself a trusted proxy (entries that do not parse stop the walk).
pub fn client_ip(peer: IpAddr, xff: Option<&str>, trusted: &dyn TrustedNets) -> IpAddr {
    if !trusted.trusts(peer) {
        return peer;
    }
    let Some(list) = xff else { return peer };
    let mut client = peer;
    for entry in list.rsplit(',') {
        match parse_ip(entry) {
            Some(ip) => {
                client = ip;
                if !trusted.trusts(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// The `X-Forwarded-For` value to send upstream: the client-sent list followed by the peer when
/// the peer is trusted, else just the peer (a list from an untrusted client is dropped, so
/// Odoo's right-most entry is always an address BridgeCore vouches for).
pub fn x_forwarded_for(peer: IpAddr, xff: Option<&str>, trusted: &dyn TrustedNets) -> String {
    match xff.map(str::trim).filter(|s| !s.is_empty()) {
        Some(list) if trusted.trusts(peer) => {
            let mut out = String::with_capacity(list.len() + 2 + 39);
            out.push_str(list);
            out.push_str(", ");
            push_ip(&mut out, peer);
            out
        }
        _ => ip_text(peer),
    }
}

/// `ip` as text, as `Display` writes it. IPv4 is written by hand: `Display` goes through the
/// formatter's padding machinery (~1k instructions), and two addresses are written into the
/// forwarded headers of every request.
pub fn ip_text(ip: IpAddr) -> String {
    let mut out = String::with_capacity(39);
    push_ip(&mut out, ip);
    out
}

fn push_ip(out: &mut String, ip: IpAddr) {
    let mut bytes = std::mem::take(out).into_bytes();
    push_ip_bytes(&mut bytes, ip);
    // Only ASCII digits, dots, colons and hex letters were added.
    *out = String::from_utf8(bytes).unwrap_or_default();
}

/// Appends `ip` as [`ip_text`] writes it (for the access log's JSON line).
pub fn push_ip_bytes(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

fn parse_ip(entry: &str) -> Option<IpAddr> {
    let s = entry.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    // "[::1]:1234", "1.2.3.4:5678"
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_is_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "9.10.99.100",
            "255.255.255.255",
            "192.168.1.20",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
        for n in 0..=255u8 {
            let ip = IpAddr::from([n, n / 3, 255 - n, n % 10]);
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn loopback_trusted(ip: IpAddr) -> bool {
        ip.is_loopback()
    }

    #[test]
    fn untrusted_peer_is_the_client_and_its_list_is_dropped() {
        let peer = ip("203.0.113.9");
        assert_eq!(client_ip(peer, Some("1.1.1.1"), &loopback_trusted), peer);
        assert_eq!(
            x_forwarded_for(peer, Some("1.1.1.1"), &loopback_trusted),
            "203.0.113.9"
        );
    }

    #[test]
    fn trusted_peer_forwards_the_list_and_appends_itself() {
        let peer = ip("127.0.0.1");
        assert_eq!(
            client_ip(peer, Some("198.51.100.7, 127.0.0.2"), &loopback_trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            x_forwarded_for(peer, Some("198.51.100.7"), &loopback_trusted),
            "198.51.100.7, 127.0.0.1"
        );
    }

    #[test]
    fn garbage_in_the_list_stops_the_walk() {
        let peer = ip("127.0.0.1");
        assert_eq!(
            client_ip(peer, Some("9.9.9.9, junk"), &loopback_trusted),
            peer
        );
        assert_eq!(client_ip(peer, None, &loopback_trusted), peer);
        assert_eq!(
            client_ip(peer, Some("[2001:db8::1]:443"), &loopback_trusted),
            ip("2001:db8::1")
        );
    }
}
