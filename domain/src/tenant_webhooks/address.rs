//! Where Remit may post a tenant's events: the URL rules, and the one HTTP client that connects
//! only to addresses that pass them, checked at every connection (so a host whose DNS later
//! points inside the network is refused then, not only when the URL was saved).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use url::Url;

use crate::{
    Services,
    error::{Error, Result},
};

const MAX_URL_LENGTH: usize = 2048;

/// Where an address leads, for deciding whether Remit may post a tenant's events to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The public internet.
    Public,
    /// Loopback and private networks (RFC 1918, IPv6 unique-local): only in development
    /// (`APP_ENV=development`), where a developer's receiver runs on their own machine.
    Local,
    /// Never: link-local and cloud metadata (169.254.0.0/16, fe80::/10, fd00:ec2::254), NAT64
    /// (64:ff9b::/96), 6to4 (2002::/16), Teredo, carrier-grade NAT, unspecified, broadcast,
    /// multicast, documentation, benchmarking and other reserved ranges.
    Refused,
}

pub fn reach(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() || v4.is_private() {
                Reach::Local
            } else if v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (64..=127).contains(&o[1]))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 192 && o[1] == 88 && o[2] == 99)
            {
                Reach::Refused
            } else {
                Reach::Public
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return reach(IpAddr::V4(v4));
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Reach::Local
            } else if v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x64 && s[1] == 0xff9b)
                || s[0] == 0x2002
                || (s[0] == 0x2001 && s[1] == 0)
                || (s[0] == 0x2001 && s[1] == 0xdb8)
                || (s[0] == 0x2001 && s[1] < 0x200)
                || (s[0] == 0x100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
                || (s[0..6] == [0, 0, 0, 0, 0, 0])
            {
                Reach::Refused
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Reach::Local
            } else {
                Reach::Public
            }
        }
    }
}

/// Checks an endpoint URL and resolves it to the addresses Remit may connect to.
pub async fn check_url(services: &Services, raw: &str) -> Result<Url> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_LENGTH {
        return Err(Error::invalid("url", format!("The URL can be at most {MAX_URL_LENGTH} characters.")));
    }
    let url = Url::parse(raw)
        .map_err(|_| Error::invalid("url", "Enter a full URL, such as https://example.com/webhooks/remit."))?;
    let development = services.settings.is_development();
    match url.scheme() {
        "https" => {}
        "http" if development => {}
        _ => return Err(Error::invalid("url", "The webhook URL must use https://.")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid("url", "Put no user name or password in the URL; verify the signature instead."));
    }
    let host = url.host_str().ok_or_else(|| Error::invalid("url", "The URL needs a host name."))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|_| Error::invalid("url", format!("The host {host} could not be found.")))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::invalid("url", format!("The host {host} could not be found.")));
    }
    if addrs.iter().any(|a| reach(a.ip()) == Reach::Refused) {
        return Err(Error::invalid(
            "url",
            "The webhook URL points to a link-local, metadata, translated or reserved address, which Remit never sends to.",
        ));
    }
    if !development && addrs.iter().any(|a| reach(a.ip()) == Reach::Local) {
        return Err(Error::invalid(
            "url",
            "The webhook URL points to a private or loopback address, which Remit does not send to.",
        ));
    }
    Ok(url)
}

/// The address check every connection of the delivery client makes: refused addresses never,
/// local ones only in development.
pub(super) fn allowed(ip: IpAddr, development: bool) -> bool {
    match reach(ip) {
        Reach::Public => true,
        Reach::Local => development,
        Reach::Refused => false,
    }
}

/// Resolves host names for the delivery client, refusing any name with an address Remit may not
/// reach.
struct CheckedResolver {
    development: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let development = self.development;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if addrs.is_empty() || !addrs.iter().all(|a| allowed(a.ip(), development)) {
                return Err(format!("{} resolves to an address Remit does not send to", name.as_str()).into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The client every delivery goes through (one per process, so connections to a receiver are
/// kept and reused): no redirects, `timeout` per request, host names through the address check.
pub fn client(development: bool, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(CheckedResolver { development }))
        .build()
        .expect("the webhook client's settings are valid")
}

/// A saved URL checked again before each attempt without asking DNS (the client's resolver does
/// that for host names): an address written in the URL itself must pass the same rule.
pub fn check_literal(url: &Url, development: bool) -> Result<()> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if allowed(ip, development) {
        Ok(())
    } else {
        Err(Error::invalid("url", "The webhook URL points to an address Remit does not send to."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_private_addresses_are_local() {
        for ip in ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "::1", "fd12:3456::1", "::ffff:10.0.0.1"] {
            assert_eq!(reach(ip.parse().unwrap()), Reach::Local, "{ip}");
        }
    }

    #[test]
    fn link_local_and_cloud_metadata_addresses_are_refused() {
        for ip in ["169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254"] {
            assert_eq!(reach(ip.parse().unwrap()), Reach::Refused, "{ip}");
        }
    }

    #[test]
    fn nat64_addresses_are_refused() {
        for ip in ["64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b::808:808"] {
            assert_eq!(reach(ip.parse().unwrap()), Reach::Refused, "{ip}");
        }
    }

    #[test]
    fn six_to_four_addresses_are_refused() {
        for ip in ["2002:a9fe:a9fe::1", "2002:7f00:1::", "2002:0808:0808::1"] {
            assert_eq!(reach(ip.parse().unwrap()), Reach::Refused, "{ip}");
        }
    }

    #[test]
    fn other_reserved_ranges_are_refused() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::7f00:1",
            "2001::1",
            "2001:db8::1",
            "ff02::1",
            "fec0::1",
            "100::1",
        ] {
            assert_eq!(reach(ip.parse().unwrap()), Reach::Refused, "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_reached() {
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::1"] {
            assert_eq!(reach(ip.parse().unwrap()), Reach::Public, "{ip}");
        }
    }
}
