//! Strait's configuration: one TOML file, with an embedded default
//! ([`DEFAULT_TOML`]) that starts a working gateway on loopback.
//!
//! Every key is optional; what is absent takes the default. Every value is
//! checked at start-up and a bad one is refused with an error naming the key
//! and the reason ([`ConfigError`]); unknown keys are refused too, so a typo
//! never silently falls back to a default.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The embedded default configuration (also the reference for every key).
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// A configuration error: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key, e.g. `media.port_min`; empty when the file as a whole is
    /// unreadable.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "configuration: {}", self.reason)
        } else {
            write!(f, "configuration key {}: {}", self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

fn err(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// The whole configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// SIP listeners and identity.
    pub sip: Sip,
    /// TLS material for WSS and SIP over TLS.
    pub tls: Tls,
    /// Media (the data plane).
    pub media: Media,
    /// The registrar.
    pub registrar: Registrar,
    /// Who may register and call.
    pub auth: Auth,
    /// Where calls toward the legacy side go.
    pub routing: Routing,
    /// The rtpengine ng control protocol (Kamailio/OpenSIPS).
    pub ng: Ng,
    /// Where state (registrations, generated certificate) is kept.
    pub state_dir: PathBuf,
}

/// SIP listeners and identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Sip {
    /// SIP domain(s) Strait is the registrar for.
    pub domains: Vec<String>,
    /// SIP over WebSocket listener (RFC 7118), if any.
    pub ws: Option<SocketAddr>,
    /// SIP over secure WebSocket listener, if any (also serves the web phone).
    pub wss: Option<SocketAddr>,
    /// SIP over UDP listener, if any.
    pub udp: Option<SocketAddr>,
    /// SIP over TCP listener, if any.
    pub tcp: Option<SocketAddr>,
    /// SIP over TLS listener, if any.
    pub tls: Option<SocketAddr>,
    /// WebSocket Origin allow-list; empty allows every origin.
    pub ws_origins: Vec<String>,
    /// WebSocket idle timeout in seconds.
    pub ws_idle_timeout_s: u32,
    /// Serve the web phone page on the WS/WSS listeners.
    pub web_phone: bool,
}

/// TLS certificate and key.
#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    /// PEM certificate chain; `None`: a self-signed one is generated on first
    /// start and kept in the state directory.
    pub cert: Option<PathBuf>,
    /// PEM private key (with `cert`).
    pub key: Option<PathBuf>,
}

/// Media settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    /// Address media sockets bind to.
    pub bind: IpAddr,
    /// Address announced in SDP (for servers behind NAT); `None` = `bind`.
    pub public_address: Option<IpAddr>,
    /// Lowest media port (even).
    pub port_min: u16,
    /// Highest media port.
    pub port_max: u16,
    /// Cores to pin data-plane workers to; empty: one unpinned worker.
    pub cores: Vec<usize>,
    /// I/O backend: `auto`, `uring` or `mmsg`.
    pub io: String,
    /// Seconds without media after which a call is ended.
    pub media_timeout_s: u32,
    /// Opus encoder complexity when transcoding (0..=10).
    pub opus_complexity: u8,
    /// NACK tail buffer toward browsers, packets (min, max).
    pub nack_tail: (u16, u16),
    /// Shared-memory region of the data plane.
    pub shm: PathBuf,
}

/// Registrar settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Registrar {
    /// Smallest accepted Expires (423 Interval Too Brief below it).
    pub min_expires: u32,
    /// Largest granted Expires.
    pub max_expires: u32,
    /// Expires granted when the request has none.
    pub default_expires: u32,
    /// Keep registrations across restarts (in the state directory).
    pub persist: bool,
}

/// A user allowed to register and call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// SIP user name.
    pub name: String,
    /// Password for digest authentication.
    pub password: String,
}

/// Authentication settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    /// Digest realm.
    pub realm: String,
    /// Users with passwords.
    pub users: Vec<User>,
    /// Shared secret for time-limited tokens (`expiry:user`, base64
    /// HMAC-SHA1); `None` disables them.
    pub ephemeral_secret: Option<String>,
    /// Seconds a digest nonce stays valid.
    pub nonce_lifetime_s: u32,
    /// Require authentication for requests from the legacy side too.
    pub legacy_requires_auth: bool,
}

/// One route toward the legacy side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Match on the request-URI user's prefix (e.g. `+44`), if set.
    pub prefix: Option<String>,
    /// Match on the request-URI domain, if set.
    pub domain: Option<String>,
    /// Next hop, a SIP URI (`sip:host:port;transport=udp`).
    pub next_hop: String,
}

/// Routing toward the legacy side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// Next hop when no route matches; `None`: unknown targets get 404.
    pub default_next_hop: Option<String>,
    /// Routes, first match wins.
    pub routes: Vec<Route>,
    /// A call not answered within this many seconds is cancelled toward the
    /// callee and the caller gets 408.
    pub no_answer_timeout_s: u32,
}

// ---- raw (as written) -------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<String>,
    sip: Option<RawSip>,
    tls: Option<RawTls>,
    media: Option<RawMedia>,
    registrar: Option<RawRegistrar>,
    auth: Option<RawAuth>,
    routing: Option<RawRouting>,
    ng: Option<RawNg>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSip {
    domains: Option<Vec<String>>,
    ws: Option<String>,
    wss: Option<String>,
    udp: Option<String>,
    tcp: Option<String>,
    tls: Option<String>,
    ws_origins: Option<Vec<String>>,
    ws_idle_timeout_s: Option<i64>,
    web_phone: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMedia {
    bind: Option<String>,
    public_address: Option<String>,
    port_min: Option<i64>,
    port_max: Option<i64>,
    cores: Option<Vec<i64>>,
    io: Option<String>,
    media_timeout_s: Option<i64>,
    opus_complexity: Option<i64>,
    nack_tail: Option<Vec<i64>>,
    shm: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRegistrar {
    min_expires: Option<i64>,
    max_expires: Option<i64>,
    default_expires: Option<i64>,
    persist: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    password: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    realm: Option<String>,
    users: Option<Vec<RawUser>>,
    ephemeral_secret: Option<String>,
    nonce_lifetime_s: Option<i64>,
    legacy_requires_auth: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: Option<String>,
    domain: Option<String>,
    next_hop: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRouting {
    default_next_hop: Option<String>,
    routes: Option<Vec<RawRoute>>,
    no_answer_timeout_s: Option<i64>,
}

// ---- validation -------------------------------------------------------------

fn listener(
    key: &str,
    v: Option<String>,
    default: Option<&str>,
) -> Result<Option<SocketAddr>, ConfigError> {
    let v = v
        .or_else(|| default.map(str::to_string))
        .unwrap_or_default();
    if v.is_empty() || v == "off" {
        return Ok(None);
    }
    v.parse::<SocketAddr>().map(Some).map_err(|_| {
        err(
            key,
            format!("`{v}` is not an address:port (use \"\" or \"off\" to disable)"),
        )
    })
}

fn ip(key: &str, v: &str) -> Result<IpAddr, ConfigError> {
    v.parse()
        .map_err(|_| err(key, format!("`{v}` is not an IP address")))
}

fn int<T: TryFrom<i64>>(key: &str, v: i64, lo: i64, hi: i64) -> Result<T, ConfigError> {
    if v < lo || v > hi {
        return Err(err(key, format!("{v} is out of range {lo}..={hi}")));
    }
    T::try_from(v).map_err(|_| err(key, format!("{v} is out of range")))
}

fn sip_uri(key: &str, v: &str) -> Result<String, ConfigError> {
    let rest = v
        .strip_prefix("sip:")
        .or_else(|| v.strip_prefix("sips:"))
        .ok_or_else(|| err(key, format!("`{v}` is not a sip: or sips: URI")))?;
    let host = rest.split([';', '?']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    if host.is_empty() {
        return Err(err(key, format!("`{v}` has no host")));
    }
    Ok(v.to_string())
}

impl Config {
    /// The embedded default.
    pub fn default_config() -> Self {
        Self::from_toml(DEFAULT_TOML).expect("the embedded default configuration is valid")
    }

    /// Reads and validates a file; keys it lacks come from the embedded
    /// default.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("", format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text)
    }

    /// Parses and validates TOML text; absent keys take the embedded
    /// default's values.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            // Point at the key when the parser can tell which.
            let key = msg
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
                .unwrap_or("")
                .to_string();
            err(&key, msg.replace('\n', " "))
        })?;
        let defaults: RawConfig = if text == DEFAULT_TOML {
            RawConfig::default()
        } else {
            toml::from_str(DEFAULT_TOML).expect("the embedded default configuration parses")
        };
        Self::validate(raw, defaults)
    }

    fn validate(raw: RawConfig, d: RawConfig) -> Result<Self, ConfigError> {
        let (s, ds) = (raw.sip.unwrap_or_default(), d.sip.unwrap_or_default());
        let domains = s
            .domains
            .or(ds.domains)
            .unwrap_or_else(|| vec!["localhost".into()]);
        if domains.is_empty() {
            return Err(err("sip.domains", "at least one domain is needed"));
        }
        for dom in &domains {
            if dom.is_empty() || dom.contains(|c: char| c.is_whitespace() || c == '@' || c == ':') {
                return Err(err("sip.domains", format!("`{dom}` is not a domain name")));
            }
        }
        let sip = Sip {
            domains,
            ws: listener("sip.ws", s.ws, ds.ws.as_deref())?,
            wss: listener("sip.wss", s.wss, ds.wss.as_deref())?,
            udp: listener("sip.udp", s.udp, ds.udp.as_deref())?,
            tcp: listener("sip.tcp", s.tcp, ds.tcp.as_deref())?,
            tls: listener("sip.tls", s.tls, ds.tls.as_deref())?,
            ws_origins: s.ws_origins.or(ds.ws_origins).unwrap_or_default(),
            ws_idle_timeout_s: int(
                "sip.ws_idle_timeout_s",
                s.ws_idle_timeout_s.or(ds.ws_idle_timeout_s).unwrap_or(600),
                10,
                86_400,
            )?,
            web_phone: s.web_phone.or(ds.web_phone).unwrap_or(true),
        };
        if [sip.ws, sip.wss, sip.udp, sip.tcp, sip.tls]
            .iter()
            .all(Option::is_none)
        {
            return Err(err("sip", "every listener is disabled"));
        }
        for o in &sip.ws_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(err(
                    "sip.ws_origins",
                    format!("`{o}` is not an http(s) origin"),
                ));
            }
        }

        let (t, dt) = (raw.tls.unwrap_or_default(), d.tls.unwrap_or_default());
        let cert = t
            .cert
            .or(dt.cert)
            .filter(|c| !c.is_empty())
            .map(PathBuf::from);
        let key = t
            .key
            .or(dt.key)
            .filter(|c| !c.is_empty())
            .map(PathBuf::from);
        if cert.is_some() != key.is_some() {
            return Err(err(
                if cert.is_some() { "tls.key" } else { "tls.cert" },
                "tls.cert and tls.key go together (leave both empty for a generated self-signed certificate)",
            ));
        }
        let tls = Tls { cert, key };

        let (m, dm) = (raw.media.unwrap_or_default(), d.media.unwrap_or_default());
        let bind = ip(
            "media.bind",
            &m.bind.or(dm.bind).unwrap_or_else(|| "127.0.0.1".into()),
        )?;
        let public_address = match m
            .public_address
            .or(dm.public_address)
            .filter(|a| !a.is_empty())
        {
            Some(a) => Some(ip("media.public_address", &a)?),
            None => None,
        };
        let port_min: u16 = int(
            "media.port_min",
            m.port_min.or(dm.port_min).unwrap_or(20000),
            1024,
            65534,
        )?;
        let port_max: u16 = int(
            "media.port_max",
            m.port_max.or(dm.port_max).unwrap_or(29999),
            1025,
            65535,
        )?;
        if !port_min.is_multiple_of(2) {
            return Err(err(
                "media.port_min",
                format!("{port_min} must be even (RTP ports are even, RTCP = RTP + 1)"),
            ));
        }
        if port_max < port_min + 3 {
            return Err(err(
                "media.port_max",
                format!("{port_max} leaves no room above media.port_min {port_min}"),
            ));
        }
        let cores = m
            .cores
            .or(dm.cores)
            .unwrap_or_default()
            .into_iter()
            .map(|c| int::<usize>("media.cores", c, 0, 4095))
            .collect::<Result<Vec<_>, _>>()?;
        let io = m.io.or(dm.io).unwrap_or_else(|| "auto".into());
        if !["auto", "uring", "mmsg"].contains(&io.as_str()) {
            return Err(err(
                "media.io",
                format!("`{io}` is not one of auto, uring, mmsg"),
            ));
        }
        let nack = m
            .nack_tail
            .or(dm.nack_tail)
            .unwrap_or_else(|| vec![100, 400]);
        let nack_tail = match nack.as_slice() {
            [lo, hi] => (
                int("media.nack_tail", *lo, 1, 32_768)?,
                int("media.nack_tail", *hi, 1, 32_768)?,
            ),
            _ => return Err(err("media.nack_tail", "expected [min, max]")),
        };
        if nack_tail.0 > nack_tail.1 {
            return Err(err("media.nack_tail", "min is above max"));
        }
        let media = Media {
            bind,
            public_address,
            port_min,
            port_max,
            cores,
            io,
            media_timeout_s: int(
                "media.media_timeout_s",
                m.media_timeout_s.or(dm.media_timeout_s).unwrap_or(60),
                0,
                86_400,
            )?,
            opus_complexity: int(
                "media.opus_complexity",
                m.opus_complexity.or(dm.opus_complexity).unwrap_or(5),
                0,
                10,
            )?,
            nack_tail,
            shm: PathBuf::from(
                m.shm
                    .or(dm.shm)
                    .unwrap_or_else(|| "/dev/shm/strait-dataplane".into()),
            ),
        };

        let (r, dr) = (
            raw.registrar.unwrap_or_default(),
            d.registrar.unwrap_or_default(),
        );
        let registrar = Registrar {
            min_expires: int(
                "registrar.min_expires",
                r.min_expires.or(dr.min_expires).unwrap_or(60),
                1,
                86_400,
            )?,
            max_expires: int(
                "registrar.max_expires",
                r.max_expires.or(dr.max_expires).unwrap_or(3600),
                1,
                604_800,
            )?,
            default_expires: int(
                "registrar.default_expires",
                r.default_expires.or(dr.default_expires).unwrap_or(600),
                1,
                604_800,
            )?,
            persist: r.persist.or(dr.persist).unwrap_or(true),
        };
        if registrar.min_expires > registrar.max_expires {
            return Err(err(
                "registrar.min_expires",
                "is above registrar.max_expires",
            ));
        }
        if !(registrar.min_expires..=registrar.max_expires).contains(&registrar.default_expires) {
            return Err(err(
                "registrar.default_expires",
                "must lie between min_expires and max_expires",
            ));
        }

        let (a, da) = (raw.auth.unwrap_or_default(), d.auth.unwrap_or_default());
        let users = a
            .users
            .or(da.users)
            .unwrap_or_default()
            .into_iter()
            .map(|u| {
                if u.name.is_empty()
                    || u.name
                        .contains(|c: char| c.is_whitespace() || c == '@' || c == ':')
                {
                    return Err(err(
                        "auth.users",
                        format!("`{}` is not a valid user name", u.name),
                    ));
                }
                if u.password.is_empty() {
                    return Err(err(
                        "auth.users",
                        format!("user `{}` has an empty password", u.name),
                    ));
                }
                Ok(User {
                    name: u.name,
                    password: u.password,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen = std::collections::HashSet::new();
        for u in &users {
            if !seen.insert(&u.name) {
                return Err(err(
                    "auth.users",
                    format!("user `{}` is listed twice", u.name),
                ));
            }
        }
        let ephemeral_secret = a
            .ephemeral_secret
            .or(da.ephemeral_secret)
            .filter(|s| !s.is_empty());
        if let Some(s) = &ephemeral_secret {
            if s.len() < 16 {
                return Err(err(
                    "auth.ephemeral_secret",
                    "must be at least 16 characters",
                ));
            }
        }
        let auth = Auth {
            realm: a.realm.or(da.realm).unwrap_or_else(|| "strait".into()),
            users,
            ephemeral_secret,
            nonce_lifetime_s: int(
                "auth.nonce_lifetime_s",
                a.nonce_lifetime_s.or(da.nonce_lifetime_s).unwrap_or(300),
                10,
                86_400,
            )?,
            legacy_requires_auth: a
                .legacy_requires_auth
                .or(da.legacy_requires_auth)
                .unwrap_or(false),
        };
        if auth.realm.is_empty() || auth.realm.contains('"') {
            return Err(err("auth.realm", "must be non-empty and contain no quote"));
        }

        let (g, dg) = (
            raw.routing.unwrap_or_default(),
            d.routing.unwrap_or_default(),
        );
        let default_next_hop = match g
            .default_next_hop
            .or(dg.default_next_hop)
            .filter(|h| !h.is_empty())
        {
            Some(h) => Some(sip_uri("routing.default_next_hop", &h)?),
            None => None,
        };
        let routes = g
            .routes
            .or(dg.routes)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let key = format!("routing.routes[{i}]");
                if r.prefix.is_none() && r.domain.is_none() {
                    return Err(err(&key, "needs a prefix or a domain to match"));
                }
                Ok(Route {
                    prefix: r.prefix,
                    domain: r.domain,
                    next_hop: sip_uri(&format!("{key}.next_hop"), &r.next_hop)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let no_answer_timeout_s = int(
            "routing.no_answer_timeout_s",
            g.no_answer_timeout_s
                .or(dg.no_answer_timeout_s)
                .unwrap_or(60),
            2,
            3600,
        )?;
        let routing = Routing {
            default_next_hop,
            routes,
            no_answer_timeout_s,
        };

        let state_dir = PathBuf::from(
            raw.state_dir
                .or(d.state_dir)
                .unwrap_or_else(|| "/var/lib/strait".into()),
        );
        if state_dir.as_os_str().is_empty() {
            return Err(err("state_dir", "must not be empty"));
        }
        let ng = Ng::validate(raw.ng.unwrap_or_default(), d.ng.unwrap_or_default())?;
        Ok(Config {
            ng,
            sip,
            tls,
            media,
            registrar,
            auth,
            routing,
            state_dir,
        })
    }
}

// ---- [ng] -------------------------------------------------------------------

/// The rtpengine ng control protocol listener, for Kamailio's or OpenSIPS's
/// `rtpengine` module (see [`crate::ng`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Ng {
    /// UDP and TCP listen address; `None` disables ng.
    pub listen: Option<SocketAddr>,
    /// Proxies allowed to send commands; empty allows any (accepted only
    /// when `listen` is on loopback).
    pub allow: Vec<crate::ng::IpNet>,
    /// Longest command accepted, bytes.
    pub max_message_bytes: usize,
    /// Seconds a reply is kept to answer a retransmission; 0 disables.
    pub reply_cache_s: u32,
    /// Most ng sessions at once (0: as many as there are ports); further
    /// offers get rtpengine's load-limit error, on which SBCs fail over.
    pub max_sessions: usize,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNg {
    listen: Option<String>,
    allow: Option<Vec<String>>,
    max_message_bytes: Option<i64>,
    reply_cache_s: Option<i64>,
    max_sessions: Option<i64>,
}

impl Ng {
    fn validate(n: RawNg, dn: RawNg) -> Result<Ng, ConfigError> {
        let listen = listener("ng.listen", n.listen, dn.listen.as_deref())?;
        let allow = n
            .allow
            .or(dn.allow)
            .unwrap_or_default()
            .iter()
            .map(|a| {
                a.trim()
                    .parse()
                    .map_err(|e| err("ng.allow", format!("{e}")))
            })
            .collect::<Result<Vec<crate::ng::IpNet>, _>>()?;
        if let Some(l) = listen {
            crate::ng::check_listen(l, &crate::ng::AllowList::new(allow.clone()))
                .map_err(|e| err("ng.allow", e))?;
        }
        Ok(Ng {
            listen,
            allow,
            max_message_bytes: int(
                "ng.max_message_bytes",
                n.max_message_bytes
                    .or(dn.max_message_bytes)
                    .unwrap_or(65_536),
                1024,
                1 << 20,
            )?,
            reply_cache_s: int(
                "ng.reply_cache_s",
                n.reply_cache_s.or(dn.reply_cache_s).unwrap_or(30),
                0,
                3600,
            )?,
            max_sessions: int(
                "ng.max_sessions",
                n.max_sessions.or(dn.max_sessions).unwrap_or(0),
                0,
                1_000_000,
            )?,
        })
    }
}

#[cfg(test)]
mod ng_tests {
    use super::*;

    #[test]
    fn ng_defaults_to_loopback_and_refuses_open_listening_without_allow_list() {
        let c = Config::default_config();
        assert_eq!(c.ng.listen, Some("127.0.0.1:2223".parse().unwrap()));
        assert!(c.ng.allow.is_empty());
        assert_eq!((c.ng.max_message_bytes, c.ng.reply_cache_s), (65_536, 30));
        let off = Config::from_toml("[ng]\nlisten = \"\"\n").unwrap();
        assert_eq!(off.ng.listen, None);
        let open = Config::from_toml(
            "[ng]\nlisten = \"0.0.0.0:2223\"\nallow = [\"10.0.0.5\", \"10.0.1.0/24\"]\n",
        )
        .unwrap();
        assert_eq!(open.ng.allow.len(), 2);
        let cases = [
            (
                "[ng]\nlisten = \"0.0.0.0:2223\"\n",
                "ng.allow",
                "allow-list",
            ),
            ("[ng]\nallow = [\"10.0.0.0/33\"]\n", "ng.allow", "not an IP"),
            ("[ng]\nlisten = \"nowhere\"\n", "ng.listen", "address:port"),
            (
                "[ng]\nmax_message_bytes = 10\n",
                "ng.max_message_bytes",
                "out of range",
            ),
            (
                "[ng]\nreply_cache_s = -1\n",
                "ng.reply_cache_s",
                "out of range",
            ),
            ("[ng]\nlisten_tcp = \"x\"\n", "listen_tcp", "unknown field"),
        ];
        for (toml, key, why) in cases {
            let e = Config::from_toml(toml).expect_err(toml);
            assert_eq!(e.key, key, "{toml}: {e}");
            assert!(e.reason.contains(why), "{toml}: {e}");
        }
    }
}

impl Routing {
    /// The next hop for a request-URI `user@domain`: the first route whose
    /// prefix and domain both match, else the default.
    pub fn next_hop(&self, user: &str, domain: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|r| {
                r.prefix.as_deref().is_none_or(|p| user.starts_with(p))
                    && r.domain
                        .as_deref()
                        .is_none_or(|d| d.eq_ignore_ascii_case(domain))
            })
            .map(|r| r.next_hop.as_str())
            .or(self.default_next_hop.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid_and_on_loopback() {
        let c = Config::default_config();
        assert!(c.sip.ws.unwrap().ip().is_loopback());
        assert!(c.sip.wss.unwrap().ip().is_loopback());
        assert!(c.media.bind.is_loopback());
        assert_eq!(c.media.port_min % 2, 0);
        assert!(c.tls.cert.is_none(), "self-signed by default");
    }

    #[test]
    fn partial_file_takes_defaults_for_the_rest() {
        let c = Config::from_toml("[media]\nport_min = 40000\nport_max = 40999\n").unwrap();
        assert_eq!((c.media.port_min, c.media.port_max), (40000, 40999));
        assert_eq!(c.sip, Config::default_config().sip);
    }

    fn refused(toml: &str) -> ConfigError {
        Config::from_toml(toml).expect_err(toml)
    }

    #[test]
    fn bad_values_name_the_key_and_the_reason() {
        let cases = [
            ("[media]\nport_min = 20001\n", "media.port_min", "even"),
            ("[media]\nport_min = 70000\n", "media.port_min", "out of range"),
            ("[media]\nport_min = 30000\nport_max = 30001\n", "media.port_max", "no room"),
            ("[media]\nbind = \"nowhere\"\n", "media.bind", "not an IP"),
            ("[media]\nio = \"epoll\"\n", "media.io", "not one of"),
            ("[media]\nnack_tail = [400, 100]\n", "media.nack_tail", "above max"),
            ("[media]\nopus_complexity = 11\n", "media.opus_complexity", "out of range"),
            ("[sip]\nwss = \"localhost\"\n", "sip.wss", "address:port"),
            ("[sip]\nws = \"\"\nwss = \"\"\nudp = \"\"\ntcp = \"\"\ntls = \"\"\n", "sip", "disabled"),
            ("[sip]\nws_origins = [\"example.com\"]\n", "sip.ws_origins", "origin"),
            ("[tls]\ncert = \"/x.pem\"\n", "tls.key", "go together"),
            ("[registrar]\nmin_expires = 500\nmax_expires = 100\n", "registrar.min_expires", "above"),
            ("[auth]\nusers = [{ name = \"a b\", password = \"x\" }]\n", "auth.users", "not a valid"),
            ("[auth]\nusers = [{ name = \"a\", password = \"\" }]\n", "auth.users", "empty password"),
            ("[auth]\nusers = [{ name = \"a\", password = \"x\" }, { name = \"a\", password = \"y\" }]\n", "auth.users", "twice"),
            ("[auth]\nephemeral_secret = \"short\"\n", "auth.ephemeral_secret", "16"),
            ("[routing]\ndefault_next_hop = \"127.0.0.1:5060\"\n", "routing.default_next_hop", "sip:"),
            ("[routing]\nroutes = [{ next_hop = \"sip:a\" }]\n", "routing.routes[0]", "prefix or a domain"),
            ("[media]\nport_mni = 1\n", "port_mni", "unknown field"),
        ];
        for (toml, key, why) in cases {
            let e = refused(toml);
            assert_eq!(e.key, key, "{toml}: {e}");
            assert!(e.reason.contains(why), "{toml}: {e}");
            assert!(e.to_string().contains(key));
        }
        let e = refused("[media\n");
        assert!(e.to_string().starts_with("configuration"), "{e}");
    }

    #[test]
    fn routes_match_prefix_and_domain_then_default() {
        let c = Config::from_toml(
            "[routing]\ndefault_next_hop = \"sip:127.0.0.1:5080\"\nroutes = [\n  { prefix = \"+44\", next_hop = \"sip:10.0.0.1\" },\n  { domain = \"carrier.example\", next_hop = \"sip:carrier.example;transport=tcp\" },\n]\n",
        )
        .unwrap();
        assert_eq!(c.routing.next_hop("+4420", "x"), Some("sip:10.0.0.1"));
        assert_eq!(
            c.routing.next_hop("100", "CARRIER.example"),
            Some("sip:carrier.example;transport=tcp")
        );
        assert_eq!(
            c.routing.next_hop("100", "other"),
            Some("sip:127.0.0.1:5080")
        );
        let none = Config::from_toml("[routing]\ndefault_next_hop = \"\"\n").unwrap();
        assert_eq!(none.routing.next_hop("100", "other"), None);
    }
}
