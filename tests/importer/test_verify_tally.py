"""verify's Tally: what a pass's rows come to (counts, the first examples), without a database."""

from __future__ import annotations

from identity.importer.reconcile import BY_NAME
from identity.importer.verify import EXAMPLES, Tally


def test_counts_each_reason_and_keeps_the_first_examples_in_the_order_rows_come():
    tally = Tally(["hash_differs", "keycloak_differs", "missing_in_store"])
    for n in range(EXAMPLES + 3):
        held = tally.add(f"u{n}", {"hash_differs": True, "keycloak_differs": n % 2 == 0, "missing_in_store": False})
        assert held == (["hash_differs", "keycloak_differs"] if n % 2 == 0 else ["hash_differs"])
    entries = tally.entries()
    assert set(entries) == {"hash_differs", "keycloak_differs"}   # a reason that never held is left out
    assert entries["hash_differs"]["count"] == EXAMPLES + 3
    assert entries["hash_differs"]["examples"] == [f"u{n}" for n in range(EXAMPLES)]
    assert entries["keycloak_differs"]["count"] == 4
    assert entries["keycloak_differs"]["examples"] == ["u0", "u2", "u4", "u6"]


def test_an_entry_says_what_the_reason_means_and_what_to_do():
    tally = Tally(["deleted_still_enabled"])
    tally.add("kii-1", {"deleted_still_enabled": 1})
    entry = tally.entries()["deleted_still_enabled"]
    reason = BY_NAME["deleted_still_enabled"]
    assert (entry["action"], entry["what"], entry["do"]) == (reason.action, reason.what, reason.do)


def test_a_row_no_reason_holds_for_counts_nothing():
    tally = Tally(["signed_up_here"])
    assert tally.add("x", {"signed_up_here": False}) == []
    assert tally.entries() == {}


def test_tallies_of_consecutive_ranges_merge_into_the_tally_of_one_pass():
    names = ["hash_differs", "keycloak_differs"]
    rows = [(f"u{n}", {"hash_differs": n % 3 == 0, "keycloak_differs": n >= 9}) for n in range(20)]
    whole, first, second = Tally(names), Tally(names), Tally(names)
    for n, (example, row) in enumerate(rows):
        whole.add(example, row)
        (first if n < 10 else second).add(example, row)
    first.kinds["different"], second.kinds["different"] = 4, 7
    merged = Tally.merged([first, second])
    assert merged.entries() == whole.entries()
    assert merged.entries()["keycloak_differs"]["examples"] == ["u9", "u10", "u11", "u12", "u13"]
    assert merged.kinds["different"] == 11
