//! The resolution rules (docs/guide.md, Permissions). The first level with a live (unexpired)
//! override decides, and within a level `deny` beats `allow`:
//! 1. resource-specific override, 2. resource-type override, 3. role default, 4. deny.

/// Microseconds since the PostgreSQL epoch, as a `timestamptz` holds them.
pub type Timestamp = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn parse(s: &str) -> Option<Effect> {
        match s {
            "allow" => Some(Effect::Allow),
            "deny" => Some(Effect::Deny),
            _ => None,
        }
    }
}

/// One stored override, as far as resolution cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Override {
    /// The row's id; None in cached facts (core::cache keeps no resource-level grant ids:
    /// what explains a decision reads its own).
    pub grant_id: Option<i64>,
    pub effect: Effect,
    pub expires_at: Option<Timestamp>,
}

impl Override {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    Resource,
    ResourceType,
    Role,
    Default,
}

impl DecidedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Resource => "resource",
            DecidedBy::ResourceType => "resource_type",
            DecidedBy::Role => "role",
            DecidedBy::Default => "default",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub decided_by: DecidedBy,
    /// The override that decided, for the two override levels.
    pub grant: Option<Override>,
}

/// Decides one check from the overrides of the two levels and whether the user's role
/// (through the hierarchy) holds the permission.
pub fn resolve(
    resource_level: &[Override],
    type_level: &[Override],
    role_allows: bool,
    now: Timestamp,
) -> Decision {
    for (level, decided_by) in
        [(resource_level, DecidedBy::Resource), (type_level, DecidedBy::ResourceType)]
    {
        if let Some(grant) = decisive_override(level, now) {
            return Decision {
                allowed: grant.effect == Effect::Allow,
                decided_by,
                grant: Some(grant),
            };
        }
    }
    if role_allows {
        Decision { allowed: true, decided_by: DecidedBy::Role, grant: None }
    } else {
        Decision { allowed: false, decided_by: DecidedBy::Default, grant: None }
    }
}

/// The live override that decides a level: a deny if there is one, else an allow.
fn decisive_override(level: &[Override], now: Timestamp) -> Option<Override> {
    let mut live = level.iter().filter(|o| o.is_live(now));
    let first = *live.next()?;
    if first.effect == Effect::Deny {
        return Some(first);
    }
    Some(live.find(|o| o.effect == Effect::Deny).copied().unwrap_or(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: Timestamp = 1_000_000;

    fn o(grant_id: i64, effect: Effect, expires_at: Option<Timestamp>) -> Override {
        Override { grant_id: Some(grant_id), effect, expires_at }
    }

    #[test]
    fn levels_in_order() {
        let allow = [o(1, Effect::Allow, None)];
        let deny = [o(2, Effect::Deny, None)];
        let d = resolve(&allow, &deny, false, NOW);
        assert_eq!((d.allowed, d.decided_by), (true, DecidedBy::Resource));
        let d = resolve(&[], &deny, true, NOW);
        assert_eq!((d.allowed, d.decided_by, d.grant.unwrap().grant_id), (false, DecidedBy::ResourceType, Some(2)));
        let d = resolve(&[], &[], true, NOW);
        assert_eq!((d.allowed, d.decided_by), (true, DecidedBy::Role));
        let d = resolve(&[], &[], false, NOW);
        assert_eq!((d.allowed, d.decided_by), (false, DecidedBy::Default));
    }

    #[test]
    fn expired_overrides_are_ignored() {
        let expired_deny = [o(1, Effect::Deny, Some(NOW))];
        let d = resolve(&expired_deny, &[], true, NOW);
        assert_eq!((d.allowed, d.decided_by), (true, DecidedBy::Role));
        let live_allow = [o(2, Effect::Allow, Some(NOW + 1))];
        assert!(resolve(&live_allow, &[], false, NOW).allowed);
    }

    #[test]
    fn deny_beats_allow_within_a_level() {
        let both = [o(1, Effect::Allow, None), o(2, Effect::Deny, None), o(3, Effect::Allow, None)];
        let d = resolve(&[], &both, true, NOW);
        assert_eq!((d.allowed, d.grant.unwrap().grant_id), (false, Some(2)));
    }

    /// The rules written as plainly as possible, to compare `resolve` against.
    fn reference(resource: &[Override], type_level: &[Override], role: bool, now: Timestamp) -> bool {
        for level in [resource, type_level] {
            let live: Vec<&Override> = level.iter().filter(|g| g.expires_at.map_or(true, |t| t > now)).collect();
            if live.iter().any(|g| g.effect == Effect::Deny) {
                return false;
            }
            if !live.is_empty() {
                return true;
            }
        }
        role
    }

    fn arb_override() -> impl Strategy<Value = Override> {
        (0i64..1000, prop::bool::ANY, prop::option::of(NOW - 3..NOW + 3)).prop_map(|(id, deny, exp)| {
            o(id, if deny { Effect::Deny } else { Effect::Allow }, exp)
        })
    }

    proptest! {
        #[test]
        fn agrees_with_reference(
            resource in prop::collection::vec(arb_override(), 0..4),
            type_level in prop::collection::vec(arb_override(), 0..4),
            role in prop::bool::ANY,
        ) {
            let d = resolve(&resource, &type_level, role, NOW);
            prop_assert_eq!(d.allowed, reference(&resource, &type_level, role, NOW));
            // The override reported is live and has the decision's effect.
            if let Some(g) = d.grant {
                prop_assert!(g.is_live(NOW));
                prop_assert_eq!(g.effect == Effect::Allow, d.allowed);
            }
        }
    }
}
