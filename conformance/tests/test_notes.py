"""notes.toml and the rule that keeps it true: python3 -m unittest discover -s conformance/tests -t ."""
import os
import tempfile
import unittest

from conformance.cases import CASES, ORDER
from conformance.notes import NO_NOTE, Notes, NotesError

TABLE = {
    "hooks": {"runc*": "runc runs poststart at create.", "crun (unshared)": "crun gives bundle /.",
              "brig v2 rootless": "exact."},
    "namespace-user": {"* v2 rootless": "unprivileged mapping.", "*": "everyone else."},
    "ambiguous": {"runc*": "one", "* v2 root": "two"},
}


class LookupTests(unittest.TestCase):
    def setUp(self):
        self.notes = Notes(TABLE)

    def test_an_exact_label_selects_only_that_column(self):
        self.assertEqual(self.notes.note("crun (unshared)", "hooks"), "crun gives bundle /.")
        self.assertEqual(self.notes.note("crun", "hooks"), NO_NOTE)

    def test_a_pattern_selects_every_column_it_matches(self):
        for col in ("runc", "runc v2 root", "runc v2 rootless"):
            self.assertEqual(self.notes.note(col, "hooks"), "runc runs poststart at create.", col)
        self.assertEqual(self.notes.note("brig", "hooks"), NO_NOTE)

    def test_exact_beats_pattern_beats_star(self):
        self.assertEqual(self.notes.lookup("brig v2 rootless", "hooks"), ("brig v2 rootless", "exact."))
        self.assertEqual(self.notes.note("runc v2 rootless", "namespace-user"), "unprivileged mapping.")
        self.assertEqual(self.notes.note("brig", "namespace-user"), "everyone else.")

    def test_alternatives_separated_by_a_bar(self):
        notes = Notes({"c": {"brig|crun (unshared)": "host only."}})
        self.assertEqual(notes.note("crun (unshared)", "c"), "host only.")
        self.assertEqual(notes.note("brig", "c"), "host only.")
        self.assertEqual(notes.note("brig v2 root", "c"), NO_NOTE)

    def test_two_patterns_on_one_cell_are_an_error(self):
        self.assertEqual(self.notes.note("runc", "ambiguous"), "one")
        with self.assertRaisesRegex(NotesError, r"'runc\*' and '\* v2 root' both match column 'runc v2 root'"):
            self.notes.note("runc v2 root", "ambiguous")

    def test_an_entry_must_be_a_non_empty_string(self):
        with self.assertRaises(NotesError):
            Notes({"hooks": {"runc": ""}})
        with self.assertRaises(NotesError):
            Notes({"hooks": "runc"})


class StaleNoteTests(unittest.TestCase):
    CASE_NAMES = ["hooks", "namespace-user", "ambiguous"]

    def test_a_note_on_a_passing_cell_is_a_problem_naming_the_note(self):
        notes = Notes(TABLE)
        got = notes.problems({"runc v2 service": {"hooks": ("pass", "")}}, self.CASE_NAMES)
        self.assertEqual(len(got), 1)
        self.assertIn("[hooks] 'runc*'", got[0])
        self.assertIn("'runc v2 service'", got[0])

    def test_a_note_on_a_failing_or_skipped_or_absent_cell_is_fine(self):
        notes = Notes(TABLE)
        columns = {"runc": {"hooks": ("fail", "x"), "namespace-user": ("skip", "y")}, "crun (unshared)": {}}
        self.assertEqual(notes.problems(columns, self.CASE_NAMES), [])

    def test_a_passing_cell_without_a_note_is_fine(self):
        self.assertEqual(Notes(TABLE).problems({"brig": {"hooks": ("pass", "")}}, self.CASE_NAMES), [])

    def test_a_note_for_a_case_that_does_not_exist_is_a_problem(self):
        got = Notes(TABLE).problems({}, ["hooks", "namespace-user"])
        self.assertEqual(got, ["notes.toml [ambiguous]: no case is named 'ambiguous'"])


class RacyNoteTests(unittest.TestCase):
    TABLE = {"hooks-ignoring-stdin": {"crun*": {"racy": True, "note": "killed by SIGPIPE, by timing."},
                                      "runc": "not racy."}}

    def test_a_racy_note_explains_a_failure_and_a_pass_does_not_make_it_stale(self):
        notes = Notes(self.TABLE)
        self.assertEqual(notes.note("crun (unshared)", "hooks-ignoring-stdin"), "killed by SIGPIPE, by timing.")
        passing = {"hooks-ignoring-stdin": ("pass", "")}
        self.assertEqual(notes.problems({"crun (unshared)": passing}, ["hooks-ignoring-stdin"]), [])
        self.assertEqual(len(notes.problems({"runc": passing}, ["hooks-ignoring-stdin"])), 1)

    def test_a_table_entry_needs_a_note_and_only_known_keys(self):
        for bad in ({"racy": True}, {"note": "x", "racy": "yes"}, {"note": "x", "flaky": True}):
            with self.assertRaises(NotesError, msg=bad):
                Notes({"c": {"runc": bad}})


class NotesFileTests(unittest.TestCase):
    def test_the_file_loads_and_names_only_existing_cases(self):
        notes = Notes.load()
        self.assertEqual(notes.problems({}, [fn.case_name for fn in CASES]), [])
        self.assertIn("delete-created", notes.table)

    def test_a_malformed_file_is_an_error_naming_it(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write("[hooks\n")
        try:
            with self.assertRaisesRegex(NotesError, os.path.basename(f.name)):
                Notes.load(f.name)
        finally:
            os.unlink(f.name)


class RegistryTests(unittest.TestCase):
    def test_every_ordered_case_exists_once_and_comes_first(self):
        names = [fn.case_name for fn in CASES]
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual(names[:len(ORDER)], ORDER)
        for fn in CASES:
            self.assertTrue(fn.spec, fn.case_name)


if __name__ == "__main__":
    unittest.main()
