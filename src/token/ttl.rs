//! Vault's TTL arithmetic, shared by login, token create and renew (contract §3.5).

use crate::logical::field::pretty_duration;

/// Inputs of one TTL computation, all in seconds (0 = unset).
#[derive(Debug, Clone, Copy, Default)]
pub struct TtlInputs {
    /// Mount default TTL.
    pub mount_default: i64,
    /// Mount maximum TTL.
    pub mount_max: i64,
    /// TTL requested by the backend (role `token_ttl`, token create `ttl`, or the current TTL on renew).
    pub ttl: i64,
    /// Renewal increment.
    pub increment: i64,
    /// Period.
    pub period: i64,
    /// Backend maximum (role `token_max_ttl`).
    pub backend_max: i64,
    /// Explicit maximum carried by the token.
    pub explicit_max: i64,
    /// Seconds elapsed since the token was issued (0 for new tokens).
    pub elapsed: i64,
}

/// The effective TTL and any capping warnings, or the renewal error.
pub fn calculate_ttl(i: TtlInputs) -> Result<(i64, Vec<String>), String> {
    let mut warnings = Vec::new();
    let mut max_ttl = i.mount_max;
    if i.backend_max > 0 && i.backend_max < max_ttl {
        max_ttl = i.backend_max;
    }
    if i.explicit_max > 0 && i.explicit_max < max_ttl {
        max_ttl = i.explicit_max;
    }
    let (mut ttl, hard_limit) = if i.period > 0 {
        let mut p = i.period;
        if p > max_ttl {
            warnings.push(format!(
                "period of {:?} exceeded the effective max_ttl of {:?}; period value is capped accordingly",
                pretty_duration(p),
                pretty_duration(max_ttl)
            ));
            p = max_ttl;
        }
        (p, (i.explicit_max > 0).then_some(i.explicit_max))
    } else {
        let ttl = if i.increment > 0 {
            i.increment
        } else if i.ttl > 0 {
            i.ttl
        } else {
            i.mount_default
        };
        (ttl, Some(max_ttl))
    };
    if let Some(limit) = hard_limit {
        let remaining = limit - i.elapsed;
        if remaining <= 0 {
            return Err("past the max TTL, cannot renew".into());
        }
        if ttl > remaining {
            warnings.push(format!(
                "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
                pretty_duration(ttl),
                pretty_duration(remaining)
            ));
            ttl = remaining;
        }
    }
    Ok((ttl, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = 2_764_800;

    fn base() -> TtlInputs {
        TtlInputs {
            mount_default: D,
            mount_max: D,
            ..Default::default()
        }
    }

    #[test]
    fn ttl_rules_table() {
        let cases: Vec<(TtlInputs, Result<i64, ()>, usize)> = vec![
            (base(), Ok(D), 0),
            (
                TtlInputs {
                    ttl: 3600,
                    ..base()
                },
                Ok(3600),
                0,
            ),
            (
                TtlInputs {
                    ttl: 3600,
                    backend_max: 1800,
                    ..base()
                },
                Ok(1800),
                1,
            ),
            (
                TtlInputs {
                    ttl: 3600,
                    explicit_max: 600,
                    ..base()
                },
                Ok(600),
                1,
            ),
            (
                TtlInputs {
                    period: 7200,
                    ..base()
                },
                Ok(7200),
                0,
            ),
            (
                TtlInputs {
                    period: D * 2,
                    ..base()
                },
                Ok(D),
                1,
            ),
            (
                TtlInputs {
                    ttl: 3600,
                    increment: 28_800,
                    backend_max: 14_400,
                    elapsed: 60,
                    ..base()
                },
                Ok(14_340),
                1,
            ),
            (
                TtlInputs {
                    ttl: 3600,
                    backend_max: 14_400,
                    elapsed: 14_400,
                    ..base()
                },
                Err(()),
                0,
            ),
            (
                TtlInputs {
                    period: 3600,
                    explicit_max: 7200,
                    elapsed: 7000,
                    ..base()
                },
                Ok(200),
                1,
            ),
            (
                TtlInputs {
                    period: 3600,
                    elapsed: D * 5,
                    ..base()
                },
                Ok(3600),
                0,
            ),
        ];
        for (inputs, want, nwarn) in cases {
            match (calculate_ttl(inputs), want) {
                (Ok((ttl, w)), Ok(expect)) => {
                    assert_eq!(ttl, expect, "{inputs:?}");
                    assert_eq!(w.len(), nwarn, "{inputs:?} {w:?}");
                }
                (Err(e), Err(())) => assert_eq!(e, "past the max TTL, cannot renew"),
                (got, _) => panic!("{inputs:?}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn warning_text_matches_vault() {
        let (_, w) = calculate_ttl(TtlInputs {
            increment: 28_800,
            backend_max: 14_400,
            elapsed: 1,
            ..base()
        })
        .unwrap();
        assert_eq!(
            w[0],
            "TTL of \"8h\" exceeded the effective max_ttl of \"3h59m59s\"; TTL value is capped accordingly"
        );
    }
}
