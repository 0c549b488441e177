//! Pure helpers of the AppRole backend: keyed HMACs of secret material, CIDR parsing and subset
//! checks, and the secret-id `metadata` parser. Nothing here touches storage, so every rule is
//! unit-tested beside the code.
//!
//! The wording of every error mirrors Vault's helpers (`createHMAC`, `cidrutil`, `parseutil`,
//! `strutil.ParseArbitraryKeyValues`) because clients print these texts verbatim.

use base64::Engine;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Largest input Vault accepts for an HMAC (role names, secret ids).
pub const MAX_HMAC_INPUT: usize = 4096;

/// Hex HMAC-SHA256 of `value` under `key`, with Vault's limits and messages.
pub fn create_hmac(key: &str, value: &str) -> Result<String, String> {
    if value.len() > MAX_HMAC_INPUT {
        return Err(format!(
            "value is longer than maximum of {MAX_HMAC_INPUT} bytes"
        ));
    }
    salted_id(key, value)
}

/// Hex HMAC-SHA256 of `value` under `key` without a length limit: the storage index of a
/// role_id or an accessor, as Vault's `SaltID`, which takes any length (a role_id too long to
/// exist is simply not found).
pub fn salted_id(key: &str, value: &str) -> Result<String, String> {
    if key.is_empty() {
        return Err("invalid HMAC key".into());
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .map_err(|_| "invalid HMAC key".to_string())?;
    mac.update(value.as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", inner.join(" "))
}

/// Parses a strict CIDR block (`a.b.c.d/n`); a bare address is rejected, as Go's `ParseCIDR` does.
pub fn parse_cidr(block: &str) -> Result<IpNet, String> {
    let b = block.trim();
    if !b.contains('/') {
        return Err(format!("invalid CIDR address: {b}"));
    }
    b.parse::<IpNet>()
        .map_err(|_| format!("invalid CIDR address: {b}"))
}

/// Validates every block of a CIDR list (`cidrutil.ValidateCIDRListSlice`).
pub fn validate_cidr_list(blocks: &[String]) -> Result<(), String> {
    blocks.iter().try_for_each(|b| parse_cidr(b).map(drop))
}

/// Parses token-bound addresses: IPs or CIDRs, printed back the way Vault's sockaddr prints them
/// (a host-length prefix is dropped: `10.0.0.1/32` reads back as `10.0.0.1`).
pub fn parse_addrs(items: &[String]) -> Result<Vec<String>, String> {
    items
        .iter()
        .map(|raw| {
            let s = raw.trim();
            let bad = || {
                format!(
                    "error parsing address {s:?}: Unable to convert {s:?} to an IPv4 or IPv6 address, or a UNIX Socket"
                )
            };
            if let Ok(ip) = s.parse::<IpAddr>() {
                return Ok(ip.to_string());
            }
            let (addr, len) = s.split_once('/').ok_or_else(bad)?;
            let ip: IpAddr = addr.parse().map_err(|_| bad())?;
            let len: u8 = len.parse().map_err(|_| bad())?;
            let host_len = if ip.is_ipv4() { 32 } else { 128 };
            if len > host_len {
                return Err(bad());
            }
            Ok(if len == host_len {
                ip.to_string()
            } else {
                format!("{ip}/{len}")
            })
        })
        .collect()
}

/// True when every block of `inner` lies inside some block of `outer`
/// (`cidrutil.SubsetBlocks`). Blocks of `outer` without a prefix count as host routes.
pub fn cidr_subset(outer: &[String], inner: &[String]) -> Result<bool, String> {
    let outer: Vec<IpNet> = outer
        .iter()
        .map(|b| {
            if b.contains('/') {
                parse_cidr(b)
            } else {
                let ip: IpAddr = b
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid CIDR address: {b}"))?;
                Ok(IpNet::from(ip))
            }
        })
        .collect::<Result<_, _>>()?;
    for b in inner {
        let net = parse_cidr(b)?;
        if !outer.iter().any(|o| o.contains(&net)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// True when `addr` lies in one of the (already validated) blocks.
pub fn ip_in_blocks(addr: IpAddr, blocks: &[String]) -> bool {
    blocks.iter().any(|b| {
        b.trim()
            .parse::<IpNet>()
            .map(|n| n.contains(&addr))
            .or_else(|_| b.trim().parse::<IpAddr>().map(|a| a == addr))
            .unwrap_or(false)
    })
}

/// Parses secret-id metadata the way `strutil.ParseArbitraryKeyValues` does: optional base64,
/// then a JSON object of strings, else comma-separated `k=v` pairs (lower-cased, as Vault does).
pub fn parse_metadata(input: &str) -> Result<BTreeMap<String, String>, String> {
    let mut text = input.trim().to_string();
    let mut out = BTreeMap::new();
    if text.is_empty() {
        return Ok(out);
    }
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text.as_bytes())
        && let Ok(decoded) = String::from_utf8(bytes)
    {
        text = decoded;
    }
    match serde_json::from_str::<BTreeMap<String, String>>(&text) {
        Ok(map) => out = map,
        Err(_) => parse_key_values(&text, &mut out)
            .map_err(|e| format!("failed to parse the input: {e}"))?,
    }
    if let Some((k, _)) = out.iter().find(|(k, v)| !k.is_empty() && v.is_empty()) {
        return Err(format!("invalid value for key {k:?}"));
    }
    Ok(out)
}

fn parse_key_values(input: &str, out: &mut BTreeMap<String, String>) -> Result<(), String> {
    let mut items: Vec<String> = input
        .split(',')
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    items.sort();
    items.dedup();
    for item in items {
        let shards: Vec<&str> = item.split('=').collect();
        let [k, v] = shards.as_slice() else {
            return Err("invalid <key,value> format".into());
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.is_empty() {
            return Err(format!("invalid <key,value> pair: key: {k:?} value: {v:?}"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn hmac_is_keyed_hex_and_bounded() {
        let a = create_hmac("k1", "secret").unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, create_hmac("k2", "secret").unwrap());
        assert_eq!(a, create_hmac("k1", "secret").unwrap());
        assert_eq!(create_hmac("", "x").unwrap_err(), "invalid HMAC key");
        assert_eq!(
            create_hmac("k", &"x".repeat(4097)).unwrap_err(),
            "value is longer than maximum of 4096 bytes"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            create_hmac("Jefe", "what do ya want for nothing?").unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn cidr_rules() {
        assert!(validate_cidr_list(&s(&["10.0.0.0/8", " 192.168.1.0/24"])).is_ok());
        assert_eq!(
            validate_cidr_list(&s(&["10.0.0.1"])).unwrap_err(),
            "invalid CIDR address: 10.0.0.1"
        );
        assert!(validate_cidr_list(&s(&["bogus/8"])).is_err());
        assert!(cidr_subset(&s(&["10.0.0.0/8"]), &s(&["10.1.0.0/16"])).unwrap());
        assert!(!cidr_subset(&s(&["10.0.0.0/8"]), &s(&["192.168.0.0/16"])).unwrap());
        assert!(!cidr_subset(&s(&["10.1.0.0/16"]), &s(&["10.0.0.0/8"])).unwrap());
        assert!(cidr_subset(&s(&["10.0.0.5"]), &s(&["10.0.0.5/32"])).unwrap());
        assert!(cidr_subset(&[], &[]).unwrap());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(ip_in_blocks(ip, &s(&["127.0.0.0/8"])));
        assert!(!ip_in_blocks(ip, &s(&["10.0.0.0/8"])));
        assert_eq!(
            go_quote_list(&s(&["10.0.0.0/8", "1.2.3.4/32"])),
            r#"["10.0.0.0/8" "1.2.3.4/32"]"#
        );
    }

    #[test]
    fn token_addresses_print_like_sockaddr() {
        assert_eq!(
            parse_addrs(&s(&["10.0.0.1", "10.1.2.3/8", "10.0.0.9/32", "::1"])).unwrap(),
            s(&["10.0.0.1", "10.1.2.3/8", "10.0.0.9", "::1"])
        );
        assert_eq!(
            parse_addrs(&s(&["bogus"])).unwrap_err(),
            "error parsing address \"bogus\": Unable to convert \"bogus\" to an IPv4 or IPv6 address, or a UNIX Socket"
        );
        assert!(parse_addrs(&s(&["10.0.0.0/33"])).is_err());
    }

    #[test]
    fn metadata_forms() {
        let m = parse_metadata(r#"{"env":"prod","team":"ci"}"#).unwrap();
        assert_eq!(m.get("env").unwrap(), "prod");
        let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"a":"b"}"#);
        assert_eq!(parse_metadata(&b64).unwrap().get("a").unwrap(), "b");
        let kv = parse_metadata("Env=Prod, team=ci").unwrap();
        assert_eq!(kv.get("env").unwrap(), "prod");
        assert_eq!(kv.get("team").unwrap(), "ci");
        assert!(parse_metadata("  ").unwrap().is_empty());
        assert_eq!(
            parse_metadata("notjson").unwrap_err(),
            "failed to parse the input: invalid <key,value> format"
        );
        assert_eq!(
            parse_metadata(r#"{"a":""}"#).unwrap_err(),
            "invalid value for key \"a\""
        );
        assert!(parse_metadata(r#"{"a":1}"#).is_err());
    }
}
