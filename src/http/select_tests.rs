use super::Availability::{Down, Ejected, Up};
use super::*;
use crate::plan::HttpBalance::{self, None as First, PrimaryBackup, Random, RoundRobin, Sticky};

const ALL: [HttpBalance; 5] = [First, RoundRobin, Random, Sticky, PrimaryBackup];

#[test]
fn no_upstreams_means_no_pick() {
    for p in ALL {
        assert_eq!(pick(p, &[], 3, 7, Some(0), &[]), None, "{p:?}");
    }
}

#[test]
fn none_and_primary_backup_take_the_first_up() {
    for p in [First, PrimaryBackup] {
        assert_eq!(pick(p, &[Up, Up, Up], 5, 9, None, &[]), Some(0));
        assert_eq!(pick(p, &[Down, Up, Up], 5, 9, None, &[]), Some(1));
        assert_eq!(pick(p, &[Ejected, Down, Up], 5, 9, None, &[]), Some(2));
        // Sticky cookies mean nothing to other policies.
        assert_eq!(pick(p, &[Up, Up], 0, 0, Some(1), &[]), Some(0));
    }
}

#[test]
fn round_robin_starts_at_round_and_wraps() {
    let all_up = [Up, Up, Up];
    let picks: Vec<_> = (0..6)
        .map(|r| pick(RoundRobin, &all_up, r, 0, None, &[]))
        .collect();
    assert_eq!(picks, [0, 1, 2, 0, 1, 2].map(Some));
    // Start at 2, which is down: wrap to 0.
    assert_eq!(pick(RoundRobin, &[Up, Up, Down], 2, 0, None, &[]), Some(0));
    assert_eq!(
        pick(RoundRobin, &[Down, Up, Down], 2, 0, None, &[]),
        Some(1)
    );
    assert_eq!(pick(RoundRobin, &all_up, usize::MAX, 0, None, &[]), Some(0));
}

#[test]
fn random_starts_at_random_and_wraps() {
    assert_eq!(pick(Random, &[Up, Up, Up], 0, 4, None, &[]), Some(1));
    assert_eq!(pick(Random, &[Up, Up, Down], 0, 5, None, &[]), Some(0));
    assert_eq!(pick(Random, &[Up; 4], 0, usize::MAX, None, &[]), Some(3));
}

#[test]
fn sticky_keeps_its_upstream_while_up() {
    assert_eq!(pick(Sticky, &[Up, Up, Up], 0, 0, Some(2), &[]), Some(2));
    assert_eq!(pick(Sticky, &[Up, Up, Up], 7, 0, Some(1), &[]), Some(1));
}

#[test]
fn sticky_without_cookie_is_round_robin() {
    for r in 0..6 {
        assert_eq!(
            pick(Sticky, &[Up, Up, Up], r, 0, None, &[]),
            pick(RoundRobin, &[Up, Up, Up], r, 0, None, &[])
        );
    }
}

#[test]
fn sticky_to_a_down_or_ejected_upstream_moves() {
    assert_eq!(pick(Sticky, &[Up, Down, Up], 1, 0, Some(1), &[]), Some(2));
    assert_eq!(
        pick(Sticky, &[Up, Ejected, Up], 0, 0, Some(1), &[]),
        Some(0)
    );
}

#[test]
fn sticky_out_of_range_is_ignored() {
    assert_eq!(pick(Sticky, &[Up, Up], 1, 0, Some(2), &[]), Some(1));
    assert_eq!(
        pick(Sticky, &[Up, Up], 0, 0, Some(usize::MAX), &[]),
        Some(0)
    );
}

#[test]
fn sticky_tried_moves_on() {
    assert_eq!(pick(Sticky, &[Up, Up, Up], 2, 0, Some(2), &[2]), Some(0));
}

#[test]
fn sticky_prefers_its_own_upstream_among_ejected_ones() {
    let avail = [Ejected, Ejected, Ejected];
    assert_eq!(pick(Sticky, &avail, 0, 0, Some(2), &[]), Some(2));
    assert_eq!(pick(Sticky, &avail, 0, 0, Some(2), &[2]), Some(0));
    // A Down sticky upstream is never used, even as a last resort.
    assert_eq!(pick(Sticky, &[Ejected, Down], 1, 0, Some(1), &[]), Some(0));
}

#[test]
fn tried_upstreams_are_never_picked() {
    for p in ALL {
        assert_eq!(
            pick(p, &[Up, Up, Up], 0, 0, Some(0), &[0]),
            Some(1),
            "{p:?}"
        );
        assert_eq!(
            pick(p, &[Up, Up, Up], 0, 0, Some(0), &[0, 1]),
            Some(2),
            "{p:?}"
        );
        assert_eq!(
            pick(p, &[Up, Up, Up], 0, 0, Some(0), &[2, 0, 1]),
            None,
            "{p:?}"
        );
    }
    // Tried indexes beyond the slice are harmless.
    assert_eq!(pick(First, &[Up], 0, 0, None, &[5, 9]), Some(0));
}

#[test]
fn ejected_upstreams_are_a_fallback_in_policy_order() {
    assert_eq!(pick(First, &[Ejected, Up], 0, 0, None, &[]), Some(1));
    assert_eq!(pick(First, &[Ejected, Ejected], 0, 0, None, &[]), Some(0));
    assert_eq!(
        pick(RoundRobin, &[Ejected, Down, Ejected], 1, 0, None, &[]),
        Some(2)
    );
    assert_eq!(
        pick(Random, &[Ejected, Ejected, Down], 0, 2, None, &[]),
        Some(0)
    );
    assert_eq!(pick(First, &[Ejected, Ejected], 0, 0, None, &[0]), Some(1));
}

#[test]
fn a_tried_up_upstream_loses_to_an_untried_ejected_one() {
    assert_eq!(pick(First, &[Up, Ejected], 0, 0, None, &[0]), Some(1));
}

#[test]
fn all_down_or_tried_means_no_pick() {
    for p in ALL {
        assert_eq!(pick(p, &[Down, Down], 0, 0, Some(0), &[]), None, "{p:?}");
        assert_eq!(
            pick(p, &[Down, Ejected], 0, 0, Some(0), &[1]),
            None,
            "{p:?}"
        );
    }
}

#[test]
fn availability_names() {
    assert_eq!(Up.name(), "up");
    assert_eq!(Ejected.name(), "ejected");
    assert_eq!(Down.name(), "down");
}
